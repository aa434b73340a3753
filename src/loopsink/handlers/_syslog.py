"""SysLogHandler: the stdlib's syslog handler as an async sink, plus RFC 5424, RFC 6587 and TLS.

What goes on the wire, by socket (see ``docs/sinks/syslog.md``)::

    UDP, unix datagram, unix stream   the stdlib's bytes: <PRI> ident message NUL
    TCP (host, port)                  RFC 6587 framing so that rsyslog and other line-based
                                      receivers split the stream into the right messages:
                                      "lf" (default): <PRI> ident message, inner LFs as #012, LF
                                      "octet" (default with RFC 5424 and with TLS): LEN SP <PRI>…
                                      "stdlib": the stdlib's NUL-terminated bytes, unchanged

A batch of records costs one write on a stream socket and one ``sendto`` per record on a
datagram socket, all without a worker thread: sockets are non-blocking and the sink awaits
writability. When a stream connection or a unix socket breaks (the daemon restarted), the
batch in hand waits while the sink reconnects with backoff, for up to ``retry_timeout``
seconds; the records behind it wait in the queue's bounded backlog meanwhile.

This module decides when and what to send. What a record becomes on the wire is
:mod:`._syslogformat`'s (pure functions), how a socket is opened and closed
:mod:`._syslogtransport`'s, and whether the daemon hung up, what to send again after a reset
and how long to back off the shared :mod:`._connection` helper's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, overload

import anyio
import anyio.abc

from .. import _fork
from .._handler import FORMATTER_ONLY_SINKS
from .._platform import require_unix_sockets
from .._turns import formatting_steps
from ._connection import RESETS, PeerState, ResendLedger, next_delay, peek_peer
from ._heldframes import FramesHoldingSink
from ._syslogformat import (
    FORMATS,
    FRAMINGS,
    Framing,
    RFC5424Formatter,
    SyslogFormat,
    check_facility,
    check_ident,
    choose_framing,
    format_structured_data,
    frame_message,
    header_field,
    stdlib_encoder,
    stdlib_framer,
)
from ._syslogtransport import (
    Connection,
    TLSVerificationError,
    close_connection,
    connect_tcp,
    connect_udp,
    connect_unix,
    send_datagram,
)

__all__ = [
    "SYSLOG_TCP_PORT",
    "SYSLOG_UDP_PORT",
    "RFC5424Formatter",
    "SysLogHandler",
    "format_structured_data",
]

SYSLOG_UDP_PORT = 514
SYSLOG_TCP_PORT = 514


#: Where the local syslog daemon listens, by ``sys.platform`` prefix, most likely first.
_PLATFORM_ADDRESSES: dict[str, tuple[str, ...]] = {
    "linux": ("/dev/log",),
    "darwin": ("/var/run/syslog",),
    "freebsd": ("/var/run/log",),
    "openbsd": ("/dev/log",),
    "netbsd": ("/var/run/log",),
}


#: How long a liveness check may wait for a TLS peer's pending bytes (session tickets or a
#: close_notify) to be processed; paid about once per connection.
_TLS_PROBE = 0.01


# -- the sink -------------------------------------------------------------------------------


_T = TypeVar("_T")


class _Checked(Generic[_T]):
    """An instance attribute with a class-level default, validated each time it is set.

    The stdlib's SysLogHandler exposes ``ident`` and ``facility`` as plain attributes that
    users assign after construction, so the check has to run on assignment too.
    """

    def __init__(self, default: _T, check: Callable[[Any, Any], _T]) -> None:
        self.default = default
        self.check = check
        self.slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_checked_" + name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _T: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> _T:
        if obj is None:
            return self.default
        value: _T = obj.__dict__.get(self.slot, self.default)
        return value

    def __set__(self, obj: object, value: _T) -> None:
        obj.__dict__[self.slot] = self.check(obj, value)


class SysLogHandler(FramesHoldingSink):
    """Sends records to a syslog daemon, as ``logging.handlers.SysLogHandler`` does.

    Same constructor, constants, attributes and bytes as the stdlib for UDP and unix
    sockets: ``<PRI>`` + :attr:`ident` + the formatted record + NUL (:attr:`append_nul`).
    As in CPython (whatever its docstring says), the default formatter appends the
    traceback of ``exc_info``, and it is sent.

    Unlike the stdlib, nothing is connected at construction: the socket is opened by the
    first record (or ``await handler.createSocket()``), so a name lookup or a TCP connect
    never blocks the caller. TCP to a ``(host, port)`` is framed per RFC 6587 (see
    ``framing``), because rsyslog glues the stdlib's NUL-terminated stream into one message.

    Args:
        address: ``(host, port)`` for UDP/TCP, or a unix socket path such as ``"/dev/log"``
            (see :meth:`platform_address`).
        facility: a ``LOG_*`` facility number or a name from :attr:`facility_names`.
        socktype: ``socket.SOCK_DGRAM`` (UDP, the default for ``(host, port)``),
            ``socket.SOCK_STREAM`` (TCP), or ``None``; for a unix path ``None`` tries a
            datagram socket first and falls back to a stream one, as the stdlib does.
        format: keyword-only. ``"stdlib"`` (default) or ``"rfc5424"`` (an internal
            :class:`RFC5424Formatter` builds the header; the handler's formatter still
            shapes MSG). Setting an :class:`RFC5424Formatter` as formatter does the same.
        framing: keyword-only, stream sockets only. ``"lf"``: RFC 6587 non-transparent
            framing, one LF after each message and inner line breaks written as ``#012``
            (rsyslog's own escape); the default for TCP. ``"octet"``: RFC 6587 octet
            counting; the default with RFC 5424 and with TLS (RFC 5425 requires it).
            ``"stdlib"``: the stdlib's bytes (NUL-terminated if :attr:`append_nul`); the
            default for unix stream sockets.
        tls: keyword-only; TLS (RFC 5425) over TCP with certificate and host name checks,
            using ``ssl.create_default_context()`` unless ``ssl_context`` is given.
        ssl_context: keyword-only; an ``ssl.SSLContext`` (implies ``tls``): a private CA,
            a client certificate, or, explicitly, no verification.
        server_hostname: keyword-only; the name the server certificate must carry
            (default: the host of ``address``).
        timeout: keyword-only; seconds a connection attempt may take (default: no limit).
        retry_timeout: keyword-only; how long a batch waits for a broken TCP or unix
            connection to come back before its records are reported lost (0: one retry,
            at once, as the stdlib does for unix sockets).

    ``app_name``, ``hostname``, ``procid``, ``msgid``, ``structured_data_attr`` and ``utc``
    (keyword-only) are the RFC 5424 header fields (see :class:`RFC5424Formatter`), used
    only with ``format="rfc5424"``; ``app_name`` defaults to :attr:`ident` without its
    trailing ``": "``.
    """

    LOG_EMERG = 0
    LOG_ALERT = 1
    LOG_CRIT = 2
    LOG_ERR = 3
    LOG_WARNING = 4
    LOG_NOTICE = 5
    LOG_INFO = 6
    LOG_DEBUG = 7

    LOG_KERN = 0
    LOG_USER = 1
    LOG_MAIL = 2
    LOG_DAEMON = 3
    LOG_AUTH = 4
    LOG_SYSLOG = 5
    LOG_LPR = 6
    LOG_NEWS = 7
    LOG_UUCP = 8
    LOG_CRON = 9
    LOG_AUTHPRIV = 10
    LOG_FTP = 11
    LOG_NTP = 12
    LOG_SECURITY = 13
    LOG_CONSOLE = 14
    LOG_SOLCRON = 15
    LOG_LOCAL0 = 16
    LOG_LOCAL1 = 17
    LOG_LOCAL2 = 18
    LOG_LOCAL3 = 19
    LOG_LOCAL4 = 20
    LOG_LOCAL5 = 21
    LOG_LOCAL6 = 22
    LOG_LOCAL7 = 23

    priority_names: dict[str, int] = {  # noqa: RUF012 - the stdlib's public, mutable mapping
        "alert": LOG_ALERT,
        "crit": LOG_CRIT,
        "critical": LOG_CRIT,
        "debug": LOG_DEBUG,
        "emerg": LOG_EMERG,
        "err": LOG_ERR,
        "error": LOG_ERR,
        "info": LOG_INFO,
        "notice": LOG_NOTICE,
        "panic": LOG_EMERG,
        "warn": LOG_WARNING,
        "warning": LOG_WARNING,
    }

    facility_names: dict[str, int] = {  # noqa: RUF012 - the stdlib's public, mutable mapping
        "auth": LOG_AUTH,
        "authpriv": LOG_AUTHPRIV,
        "console": LOG_CONSOLE,
        "cron": LOG_CRON,
        "daemon": LOG_DAEMON,
        "ftp": LOG_FTP,
        "kern": LOG_KERN,
        "lpr": LOG_LPR,
        "mail": LOG_MAIL,
        "news": LOG_NEWS,
        "ntp": LOG_NTP,
        "security": LOG_SECURITY,
        "solaris-cron": LOG_SOLCRON,
        "syslog": LOG_SYSLOG,
        "user": LOG_USER,
        "uucp": LOG_UUCP,
        "local0": LOG_LOCAL0,
        "local1": LOG_LOCAL1,
        "local2": LOG_LOCAL2,
        "local3": LOG_LOCAL3,
        "local4": LOG_LOCAL4,
        "local5": LOG_LOCAL5,
        "local6": LOG_LOCAL6,
        "local7": LOG_LOCAL7,
    }

    priority_map: dict[str, str] = {  # noqa: RUF012 - the stdlib's public, mutable mapping
        "DEBUG": "debug",
        "INFO": "info",
        "WARNING": "warning",
        "ERROR": "error",
        "CRITICAL": "critical",
    }

    #: Prepended to every message as is (stdlib format only), e.g. ``"myapp: "``. Checked
    #: when set: a control character (a line feed starts a second, forged message) is a
    #: ValueError.
    ident: _Checked[str] = _Checked("", lambda self, value: check_ident(self, value))
    #: A ``LOG_*`` number (0-23) or a name from :attr:`facility_names`; checked when set.
    facility: _Checked[int | str] = _Checked(1, lambda self, value: check_facility(self, value))
    #: Append a NUL to each message (stdlib format on datagrams, and ``framing="stdlib"``).
    append_nul = True

    #: Reconnection backoff: the first retry is immediate, then waits start here, grow by
    #: ``retry_factor`` and stop growing at ``retry_max`` (seconds).
    retry_start = 0.05
    retry_factor = 2.0
    retry_max = 2.0

    def __init__(
        self,
        address: tuple[str, int] | str | os.PathLike[str] = ("localhost", SYSLOG_UDP_PORT),
        facility: int | str = LOG_USER,
        socktype: int | None = None,
        *,
        format: SyslogFormat = "stdlib",
        framing: Framing | None = None,
        tls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        timeout: float | None = None,
        retry_timeout: float = 30.0,
        app_name: str | None = None,
        hostname: str | None = None,
        procid: str | int | None = None,
        msgid: str | None = None,
        structured_data_attr: str | None = None,
        utc: bool | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if isinstance(address, os.PathLike):
            address = os.fspath(address)
        if isinstance(address, str):
            if not address:
                raise ValueError(
                    f"{name} address must be a unix socket path or (host, port), got ''"
                )
            require_unix_sockets(f"{name} with a socket path address ({address!r})")
            self.unixsocket = True
        elif isinstance(address, tuple) and len(address) == 2:
            host, port = address
            if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
                raise TypeError(
                    f"{name} address must be (host: str, port: int) or a unix socket path, "
                    f"got {address!r}"
                )
            self.unixsocket = False
        else:
            raise TypeError(
                f"{name} address must be (host, port) such as ('localhost', 514) or a unix "
                f"socket path such as '/dev/log', got {address!r}"
            )
        if socktype not in (None, socket.SOCK_DGRAM, socket.SOCK_STREAM):
            raise ValueError(
                f"{name} socktype must be None, socket.SOCK_DGRAM or socket.SOCK_STREAM, "
                f"got {socktype!r}"
            )
        check_facility(self, facility)
        check_ident(self, self.ident)  # a subclass may set it as a plain class attribute
        if format not in FORMATS:
            raise ValueError(f"{name} format must be 'stdlib' or 'rfc5424', got {format!r}")
        if framing is not None and framing not in FRAMINGS:
            raise ValueError(
                f"{name} framing must be 'lf', 'octet' or 'stdlib' (or None for the default), "
                f"got {framing!r}"
            )
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError(f"{name} ssl_context must be an ssl.SSLContext, got {ssl_context!r}")
        tls = tls or ssl_context is not None
        if tls:
            if self.unixsocket:
                raise ValueError(
                    f"{name} TLS needs a (host, port) address, not the unix socket {address!r}"
                )
            if socktype == socket.SOCK_DGRAM:
                raise ValueError(
                    f"{name} TLS runs over TCP (RFC 5425): use socktype=socket.SOCK_STREAM or "
                    f"leave it None, not SOCK_DGRAM"
                )
            socktype = socket.SOCK_STREAM
            if ssl_context is None:
                ssl_context = ssl.create_default_context()
        elif server_hostname is not None:
            raise ValueError(f"{name} server_hostname only applies with tls=True or ssl_context=")
        if framing is not None and socktype == socket.SOCK_DGRAM:
            raise ValueError(
                f"{name} framing={framing!r} applies to stream sockets; a datagram carries one "
                f"message as is. Use socktype=socket.SOCK_STREAM or drop framing="
            )
        for label, value in (("timeout", timeout), ("retry_timeout", retry_timeout)):
            if value is None and label == "timeout":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} {label} must be a number of seconds >= 0, got {value!r}")
        rfc_options = {
            "app_name": app_name,
            "hostname": hostname,
            "procid": procid,
            "msgid": msgid,
            "structured_data_attr": structured_data_attr,
            "utc": utc,
        }
        given = [key for key, value in rfc_options.items() if value is not None]
        if given and format != "rfc5424":
            raise ValueError(
                f"{name} {', '.join(given)} only apply to RFC 5424 output: add format='rfc5424'"
            )

        self.address: tuple[str, int] | str = address
        self.facility = facility
        self.socktype: int | None = socktype
        #: The connected socket (the raw ``socket.socket``), or ``None`` until the first send.
        self.socket: socket.socket | None = None
        self.syslog_format: SyslogFormat = format
        self.framing: Framing | None = framing
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.timeout = timeout
        self.retry_timeout = float(retry_timeout)
        self._rfc5424: RFC5424Formatter | None = None
        if format == "rfc5424":
            self._rfc5424 = RFC5424Formatter(
                app_name=app_name,
                hostname=hostname,
                procid=procid,
                msgid=msgid,
                structured_data_attr=structured_data_attr or "structured_data",
                utc=bool(utc),
            )
            self._app_name_given = app_name is not None
        self._stream: anyio.abc.ByteStream | None = None
        self._probe: socket.socket | None = None
        self._dest: Any = None  # resolved UDP destination
        self._prio_cache: dict[str, str] = {}
        self._progress = 0  # datagrams of the current batch already sent
        #: Records sent again after the daemon reset a stream connection that may not have
        #: read them (at-least-once: some may arrive twice).
        self.resent = 0
        # the last writes on the current stream connection the daemon may not have read
        self._ledger = ResendLedger()
        # writes a reset left unread, sent again first on the next connection
        self._resend: list[tuple[bytes, int]] = []

    # -- the stdlib's pure methods ------------------------------------------------------------

    def encodePriority(self, facility: int | str, priority: int | str) -> int:
        """Encode a facility and a priority, each a number or a name, into a PRI value."""
        if isinstance(facility, str):
            facility = self.facility_names[facility]
        if isinstance(priority, str):
            priority = self.priority_names[priority]
        return (facility << 3) | priority

    def mapPriority(self, levelName: str) -> str:
        """Map a logging level name to a syslog priority name; unknown levels are ``warning``."""
        return self.priority_map.get(levelName, "warning")

    @staticmethod
    def platform_address() -> str:
        """The local syslog daemon's socket on this platform, for ``SysLogHandler(address=…)``.

        ``/dev/log`` on Linux, ``/var/run/syslog`` on macOS, ``/var/run/log`` on FreeBSD.

        Raises:
            FileNotFoundError: no such socket exists here (no local daemon, or a platform
                without one, such as Windows).
        """
        candidates = next(
            (
                paths
                for prefix, paths in _PLATFORM_ADDRESSES.items()
                if sys.platform.startswith(prefix)
            ),
            (),
        )
        for path in candidates:
            if os.path.exists(path):
                return path
        looked = ", ".join(candidates) if candidates else "no known path for this platform"
        raise FileNotFoundError(
            f"no local syslog socket on {sys.platform!r} (looked for: {looked}); start a syslog "
            f"daemon (rsyslog, syslog-ng, systemd-journald) or log over the network with "
            f"SysLogHandler(address=('host', 514))"
        )

    # -- encoding -------------------------------------------------------------------------------

    @property
    def uses_rfc5424(self) -> bool:
        """True when messages are RFC 5424 (``format="rfc5424"`` or an RFC5424Formatter)."""
        return self._rfc5424 is not None or isinstance(self.formatter, RFC5424Formatter)

    def effective_framing(self) -> Framing | None:
        """The framing used on the current socket type; ``None`` for datagrams."""
        return choose_framing(
            self.framing,
            stream=self.socktype == socket.SOCK_STREAM,
            unix=self.unixsocket,
            rfc5424=self.uses_rfc5424,
            tls=self.ssl_context is not None,
        )

    def _prio(self, levelname: str) -> str:
        prio = self._prio_cache.get(levelname)
        if prio is None:
            prio = f"<{self.encodePriority(self.facility, self.mapPriority(levelname))}>"
            self._prio_cache[levelname] = prio
        return prio

    def _message(self, record: logging.LogRecord) -> str:
        """``<PRI>`` and the message, without any terminator."""
        prio = self._prio(record.levelname)
        if self._rfc5424 is not None and not isinstance(self.formatter, RFC5424Formatter):
            rfc = self._rfc5424
            if not self._app_name_given and self.ident:
                rfc.app_name = header_field(self.ident.strip().rstrip(":"), 48)
            return f"{prio}{rfc.format_header(record)} {self.format(record)}"
        if isinstance(self.formatter, RFC5424Formatter):
            return prio + self.format(record)
        return prio + self.ident + self.format(record)

    def encode(self, record: logging.LogRecord) -> bytes:
        """The bytes sent for ``record`` on the current socket type, framing included."""
        return frame_message(
            self._message(record),
            self.effective_framing(),
            nul=self.append_nul and not self.uses_rfc5424,
        )

    def _batch_encoder(self) -> Callable[[logging.LogRecord], bytes] | None:
        """A per-batch encoder: the same bytes as :meth:`encode`, with the lookups (framing,
        hooks, for the stdlib format the ident and the formatter) done once per batch instead
        of once per record; ``None`` for a subclass that overrides :meth:`encode`."""
        cls = type(self)
        if cls.encode is not SysLogHandler.encode:
            return None
        framing = self.effective_framing()
        rfc = self.uses_rfc5424
        if (
            not rfc
            and cls.mapPriority is SysLogHandler.mapPriority
            and cls.encodePriority is SysLogHandler.encodePriority
        ):
            fast = stdlib_encoder(self._prio, self.format, self.ident, framing, nul=self.append_nul)
            if fast is not None:  # the common case; octet counting has no shortcut
                return fast
        if cls.effective_framing is not SysLogHandler.effective_framing:
            return None
        message, nul = self._message, self.append_nul and not rfc

        def encode(record: logging.LogRecord) -> bytes:
            return frame_message(message(record), framing, nul=nul)

        return encode

    def _text_framer(self) -> Callable[[logging.LogRecord, str], bytes] | None:
        """For the stdlib's message format (what :meth:`_batch_encoder` would make of
        ``self.format``): the framer of formatted texts, so that a batch is formatted with
        :meth:`format_many`; ``None`` otherwise."""
        cls = type(self)
        if (
            cls.encode is not SysLogHandler.encode
            or self.uses_rfc5424
            or cls.mapPriority is not SysLogHandler.mapPriority
            or cls.encodePriority is not SysLogHandler.encodePriority
        ):
            return None
        return stdlib_framer(self._prio, self.ident, self.effective_framing(), nul=self.append_nul)

    async def _encode_batch(
        self, records: Sequence[logging.LogRecord]
    ) -> tuple[list[bytes], list[logging.LogRecord]]:
        frames: list[bytes] = []
        done: list[logging.LogRecord] = []
        self._prio_cache = {}  # per batch: priority_map or facility may change between batches
        frame = self._text_framer()
        encode = self._batch_encoder() or self.encode
        add_frame, add_done = frames.append, done.append
        async for _, chunk in formatting_steps(records):
            if frame is not None:
                try:  # most chunks never raise
                    texts = self.format_many(chunk)
                    frames.extend(map(frame, chunk, texts))
                except Exception:
                    del frames[len(done) :]  # again one by one, to find the records that raise
                else:
                    done.extend(chunk)
                    continue
            for record in chunk:
                try:
                    add_frame(encode(record))
                except Exception:
                    self.handleError(record)
                    continue
                add_done(record)
        return frames, done

    # -- sockets --------------------------------------------------------------------------------

    async def createSocket(self) -> None:
        """Open the socket now rather than with the first record.

        As in the stdlib, a unix socket that cannot be reached yet is not an error here (the
        next record tries again); for ``(host, port)`` the ``OSError`` is raised.
        """
        if self.socket is not None:
            return
        try:
            await self._open()
        except OSError:
            if not self.unixsocket:
                raise

    async def _open(self) -> None:
        if self.unixsocket:
            await self._open_unix()
        elif self.socktype == socket.SOCK_STREAM:
            await self._open_tcp()
        else:
            await self._open_udp()

    async def _open_unix(self) -> None:
        assert isinstance(self.address, str)
        self._adopt(await connect_unix(self.address, self.socktype, connect_timeout=self.timeout))

    async def _open_tcp(self) -> None:
        assert isinstance(self.address, tuple)
        host, port = self.address
        self._adopt(
            await connect_tcp(
                host,
                port,
                ssl_context=self.ssl_context,
                server_hostname=self.server_hostname,
                connect_timeout=self.timeout,
            )
        )

    async def _open_udp(self) -> None:
        assert isinstance(self.address, tuple)
        self._adopt(await connect_udp(*self.address))

    def _adopt(self, connection: Connection) -> None:
        self.socket, self.socktype = connection.sock, connection.socktype
        self._stream, self._probe = connection.stream, connection.probe
        self._dest = connection.dest

    def _after_fork(self) -> None:
        # The parent's connection is the parent's: the child opens its own at its first
        # record (over TCP, bytes written here would be spliced into the parent's stream).
        super()._after_fork()
        stream, sock, probe = self._stream, self.socket, self._probe
        self._stream = self.socket = self._probe = None
        self._dest = None
        if probe is not None:
            probe.close()  # a duplicate descriptor of the child's own: closing sends nothing
        if sock is not None:
            _fork.release_inherited(sock.fileno(), stream, sock)
        self._ledger.forget()  # the parent's writes: the parent's to send again
        self._resend = []

    async def _drop_socket(self) -> None:
        stream, sock, probe = self._stream, self.socket, self._probe
        self._stream = self.socket = self._probe = None
        self._dest = None
        await close_connection(stream, sock, probe)

    async def _peer_closed(self) -> bool:
        """Whether the stream's peer has hung up (a syslog server never sends data).

        Checked before each write, so that a daemon restart is noticed *before* a batch is
        written into a socket that nobody reads any more.
        """
        sock = self._probe
        if sock is None:
            return True
        state = peek_peer(sock)
        if state is PeerState.ALIVE:
            return False
        if state is not PeerState.DATA:
            # A reset: the daemon was killed or closed with our bytes unread (or they came
            # after it closed), so the last writes may never have been read: send them again
            # on the next connection. A clean close (FIN) means it read what it got.
            lost = self._ledger.lost(reset=state is PeerState.RESET)
            if state is PeerState.RESET:
                self._resend = lost
            return True
        if self.ssl_context is None or self._stream is None:
            return False
        # TLS: the bytes may be session tickets (harmless) or a close_notify before the FIN.
        with anyio.move_on_after(_TLS_PROBE):
            try:
                await self._stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                return True
        return False

    async def _send_frames(self, frames: list[bytes]) -> None:
        """Send ``frames``: one write on a stream, one datagram each otherwise.

        :attr:`_progress` counts the datagrams that went, so that a failure part-way through
        resends nothing twice. A stream write is all or nothing as far as we can tell.
        """
        if self._stream is not None:
            data = b"".join(frames)
            again = self._resend
            await self._stream.send(ResendLedger.payload(again, data))
            self._progress = len(frames)
            if again:
                count = ResendLedger.records(again)
                self._resend = []
                self.resent += count
                self._notice(
                    f"the daemon reset the connection; {count} records it may not have read "
                    f"were sent again (some may arrive twice)"
                )
            self._ledger.sent(data, len(frames), again)
            return
        sock = self.socket
        assert sock is not None
        dest = self._dest
        for frame in frames:
            await send_datagram(sock, dest, frame)
            self._progress += 1

    # -- the async surface ----------------------------------------------------------------------

    async def emit(self, record: logging.LogRecord) -> None:
        """Send one record, after any frames held; failures go to :meth:`handleError`."""
        await self._emit([record], hold=False)

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        """Send a batch: one write on a stream socket, one datagram per record otherwise.

        If the connection breaks (TCP, unix), the sink reconnects with backoff for up to
        :attr:`retry_timeout` seconds and sends what was not sent; only then are the
        remaining records reported to :meth:`handleError`. A record may be sent twice when a
        stream broke in the middle of a write; none is dropped without a report.

        While a queue drives the sink (:attr:`linger_watched`) and its socket is open, the
        frames are held for a linger, as a file sink holds its text: on a stream the
        batches of that window go out in one write; on a datagram socket each record is
        still one datagram, and the window's datagrams go out together (sooner once 48
        wait), which wakes the daemon once rather than once per batch. The queue sends them
        when the linger is over (:meth:`linger_deadline`, :meth:`write_held`),
        :meth:`flush` and :meth:`close` at once. Records whose send then fails are reported
        with :meth:`report_late_failure`.
        """
        await self._emit(records, hold=self.linger_watched)

    async def _emit(self, records: Sequence[logging.LogRecord], *, hold: bool) -> None:
        if self.socket is None and self.unixsocket and self.socktype is None:
            # the bytes depend on the socket type the stdlib's fallback ends up with
            with contextlib.suppress(OSError):
                await self._open()
        frames, records_ok = await self._encode_batch(records)
        if not frames:
            return
        await self._hand_over(frames, records_ok, hold=hold and self.socket is not None)

    def _frames_are_datagrams(self) -> bool:
        return self._stream is None

    async def _deliver(
        self, frames: list[bytes], records_ok: list[logging.LogRecord], *, late: bool = False
    ) -> None:
        """Send ``frames`` (of ``records_ok``), reconnecting as :meth:`emit_batch` says;
        report what fails for good as a failed batch, or ``late`` as records the queue
        already counted as emitted."""
        deadline = time.monotonic() + self.retry_timeout
        delay = 0.0
        announced = False
        while frames:
            self._progress = 0
            try:
                if self.socket is None:
                    await self._open()
                elif self._stream is not None and await self._peer_closed():
                    await self._drop_socket()
                    await self._open()
                await self._send_frames(frames)
                return
            except TLSVerificationError as exc:
                await self._drop_socket()
                self._report_unsent(exc, records_ok, late=late)
                return
            except (
                OSError,
                anyio.BrokenResourceError,
                anyio.ClosedResourceError,
                anyio.EndOfStream,
            ) as exc:
                sent = self._progress
                frames, records_ok = frames[sent:], records_ok[sent:]
                if not self.unixsocket and self.socktype == socket.SOCK_DGRAM:
                    # UDP: no connection to repair; this datagram failed (e.g. too large),
                    # the next ones may not.
                    if self.socket is None:  # the lookup or the socket itself failed
                        self._report_unsent(exc, records_ok, late=late)
                        return
                    self._report_unsent(exc, records_ok[:1], late=late)
                    frames, records_ok = frames[1:], records_ok[1:]
                    continue
                lost = self._ledger.lost(reset=getattr(exc, "errno", None) in RESETS)
                if not self._resend:
                    self._resend = lost  # the batch in hand is retried anyway
                await self._drop_socket()
                if isinstance(exc, ssl.SSLError) or (delay and time.monotonic() + delay > deadline):
                    self._report_unsent(exc, records_ok, late=late)
                    return
                if delay and not announced:
                    announced = True
                    self._notice(
                        f"cannot send to the syslog daemon at {self.address!r} ({exc!r}); "
                        f"holding {len(frames)} records and retrying for up to "
                        f"{self.retry_timeout:g} s"
                    )
                await anyio.sleep(delay)
                delay = next_delay(
                    delay or None, self.retry_start, self.retry_factor, self.retry_max
                )

    def _notice(self, text: str) -> None:
        """One line on stderr (when ``logging.raiseExceptions``) for a transient problem."""
        if logging.raiseExceptions and sys.stderr:
            try:
                sys.stderr.write(f"loopsink: {self.describe()}: {text}\n")
            except (OSError, ValueError):
                pass

    async def close(self) -> None:
        """Send the frames held for the linger, then close the socket. A record handled
        after this reopens it, as in the stdlib."""
        try:
            await self._send_held()
        finally:
            await self._drop_socket()
            await super().close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address!r} ({logging.getLevelName(self.level)})>"


# Per record it runs its formatter and its own fixed framing, which reads no context.
FORMATTER_ONLY_SINKS.update({SysLogHandler})
