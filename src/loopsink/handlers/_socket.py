"""SocketHandler and DatagramHandler: the stdlib's pickle-over-a-socket handlers as async sinks.

The bytes on the wire are the stdlib's (a 4-byte big-endian length, then protocol-1 pickle of
the record's prepared attribute dict), so an existing log server keeps working. What differs
is what happens while that server is down: the stdlib drops every record until its back-off
timer allows a new attempt; here the sink's worker *waits* (sleeping on the same back-off
schedule) and the records wait in the sink's bounded backlog of the :class:`~loopsink.LogQueue`,
then go out in order once the connection is back. Records that overflow the backlog are
counted as dropped by the queue.

Opt-in, keyword-only extras: ``serializer="json"`` (length-prefixed UTF-8 JSON objects that
any language can read), ``hmac_key=`` (an HMAC-SHA256 digest before each payload, checked by
:mod:`loopsink.receiver`) and ``ssl_context=`` (TLS over TCP, through anyio).
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import json
import logging
import os
import pickle
import socket
import ssl
import struct
import sys
import time
from collections.abc import Sequence
from typing import Any, Literal

import anyio
import anyio.abc
import anyio.lowlevel

from .. import _fork
from .._handler import FORMATTER_ONLY_SINKS
from .._platform import require_unix_sockets
from .._tuning import SERIALIZE_SLICE, SERIALIZE_SLICE_MAX, SERIALIZE_YIELD_FIRST
from .._turns import Turns
from ._connection import HangupWatch, PeerState, ResendLedger, next_delay
from ._heldframes import FramesHoldingSink

__all__ = ["DatagramHandler", "SocketHandler"]

Serializer = Literal["pickle", "json"]
_SERIALIZERS: tuple[str, ...] = ("pickle", "json")

#: Length of the HMAC-SHA256 digest that precedes a signed payload.
DIGEST_SIZE = 32

#: The largest UDP payload over IPv4 (65,535 - 8-byte UDP header - 20-byte IP header) and IPv6.
UDP_IPV4_LIMIT = 65_507
UDP_IPV6_LIMIT = 65_527

_CONNECTION_ERRORS = (
    OSError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)
_prefix = struct.Struct(">L").pack


class SocketHandler(FramesHoldingSink):
    """Sends each record as a length-prefixed pickle over TCP, or a unix stream socket.

    Keeps the stdlib's constructor, attributes (``host``, ``port``, ``address``, ``sock``,
    ``closeOnError``, ``retryTime``, ``retryStart``, ``retryFactor``, ``retryMax``) and wire
    format. ``makePickle`` stays a plain method you may override; ``makeSocket``,
    ``createSocket``, ``send`` and ``close`` are coroutines.

    Unlike the stdlib, a record is never dropped because the peer is down: ``send`` waits,
    reconnecting on the stdlib's back-off schedule (``retryStart``, times ``retryFactor`` after
    each failure, at most ``retryMax`` seconds apart), and a queue batch goes out in one write
    (of at most :attr:`max_write_size` bytes).
    Before each write the sink checks whether the peer has closed the connection, so records
    written after a clean server shutdown are resent on the next connection, not lost in a dead
    socket. Bytes the kernel accepted just before the peer crashed cannot be recovered without
    acknowledgements, which the stdlib protocol lacks.

    Args:
        host: the host name or address; with ``port=None``, the path of a unix socket.
        port: the TCP port, or ``None`` for a unix stream socket at ``host``.
        serializer: keyword-only; ``"pickle"`` (the stdlib's format) or ``"json"``.
        hmac_key: keyword-only; sign each payload with HMAC-SHA256 under this key.
        ssl_context: keyword-only; speak TLS to a TCP peer, verified as the context says.
        connect_timeout: keyword-only; how long one connection attempt may take (seconds).
    """

    #: The most bytes one write carries. A batch is one write up to this size; a bigger one is
    #: split between frames, so that the loop never spends long inside one send (over
    #: loopback the kernel hands the data to the receiving socket within the sender's call).
    max_write_size = 65_536

    def __init__(
        self,
        host: str | os.PathLike[str],
        port: int | None,
        *,
        serializer: Serializer = "pickle",
        hmac_key: bytes | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 1.0,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        if port is None:
            host = os.fspath(host)
            require_unix_sockets(f"{owner} with port=None")
        if not isinstance(host, str) or not host:
            raise TypeError(
                f"{owner} host must be a non-empty str (or a path when port=None), got {host!r}"
            )
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536
        ):
            raise ValueError(
                f"{owner} port must be an int from 1 to 65535, or None for a unix socket, "
                f"got {port!r}"
            )
        if serializer not in _SERIALIZERS:
            raise ValueError(f"{owner} serializer must be 'pickle' or 'json', got {serializer!r}")
        if hmac_key is not None and (not isinstance(hmac_key, bytes) or not hmac_key):
            raise TypeError(
                f"{owner} hmac_key must be non-empty bytes, got {type(hmac_key).__name__}"
            )
        if ssl_context is not None:
            if not isinstance(ssl_context, ssl.SSLContext):
                raise TypeError(
                    f"{owner} ssl_context must be an ssl.SSLContext, got {ssl_context!r}"
                )
            if port is None:
                raise ValueError(
                    f"{owner} ssl_context needs a TCP peer; port=None means a unix socket"
                )
        if not connect_timeout > 0:
            raise ValueError(
                f"{owner} connect_timeout must be positive seconds, got {connect_timeout!r}"
            )
        self.host: str = host
        self.port = port
        self.address: str | tuple[str, int] = host if port is None else (host, port)
        self.sock: Any = None
        self.closeOnError = False
        self.retryTime: float | None = None
        self.retryPeriod = 0.0
        self.retryStart = 1.0
        self.retryMax = 30.0
        self.retryFactor = 2.0
        self.serializer: Serializer = serializer
        self.hmac_key = hmac_key
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        #: Connections made so far, and attempts that failed (both only grow).
        self.connections = 0
        self.connect_failures = 0
        self._connect_error: BaseException | None = None
        self._watch: HangupWatch | None = None
        self._fresh = False
        #: Connections closeOnError let go of, whose streams still need an ``aclose``.
        self._discarded: list[Any] = []
        self._outage_reported = False
        #: Records sent again after the peer reset a connection that may not have read them
        #: (at-least-once: some may arrive twice).
        self.resent = 0
        # writes made on this connection that the peer may not have read (each at most
        # max_write_size bytes)
        self._ledger = ResendLedger()
        self._peer_reset = False
        self._records_in_write = 0

    # -- framing (sync, overridable) ----------------------------------------------------------

    def prepare_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        """The attribute dict that goes on the wire, prepared as the stdlib prepares it.

        The message is merged with its arguments (the receiver may lack the argument types),
        ``args`` and ``exc_info`` become ``None``, and the traceback travels as ``exc_text``.
        """
        if record.exc_info:
            self.format(record)  # the stdlib's way of caching the traceback text in exc_text
        data = dict(record.__dict__)
        data["msg"] = record.getMessage()
        data["args"] = None
        data["exc_info"] = None
        data.pop("message", None)
        return data

    def makePickle(self, record: logging.LogRecord) -> bytes:
        """Serialise ``record`` into one frame: 4-byte big-endian length, then the payload.

        With the defaults the bytes equal the stdlib's. ``serializer="json"`` makes the payload
        a UTF-8 JSON object; ``hmac_key`` puts a 32-byte HMAC-SHA256 digest of the payload
        before it (the length counts both).
        """
        data = self.prepare_dict(record)
        if self.serializer == "json":
            payload = json.dumps(
                data, default=str, ensure_ascii=False, separators=(",", ":")
            ).encode()
        else:
            payload = pickle.dumps(data, 1)
        if self.hmac_key is not None:
            payload = hmac.digest(self.hmac_key, payload, "sha256") + payload
        return _prefix(len(payload)) + payload

    async def make_frames(
        self, records: Sequence[logging.LogRecord]
    ) -> tuple[list[bytes], list[logging.LogRecord]]:
        """Serialise a batch on the loop, in slices that take turns with the other tasks
        (see :class:`~loopsink._turns.Turns`).

        A record whose ``makePickle`` raises goes to :meth:`handleError` and is left out.
        """
        frames: list[bytes] = []
        done: list[logging.LogRecord] = []
        make = self.makePickle
        if len(records) > SERIALIZE_YIELD_FIRST:
            await anyio.lowlevel.checkpoint()
        turns = Turns(records, SERIALIZE_SLICE, SERIALIZE_SLICE_MAX)
        for index, record in enumerate(records):
            if index & 7 == 7 and turns.due():
                await turns.pause()
            try:
                frames.append(make(record))
            except Exception:
                self.handleError(record)
                continue
            done.append(record)
        return frames, done

    # -- connection -------------------------------------------------------------------------

    async def makeSocket(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - the stdlib's signature has it
    ) -> anyio.abc.ByteStream:
        """Open a connection to :attr:`address` (TLS when ``ssl_context`` was given)."""
        with anyio.fail_after(self.connect_timeout if timeout is None else timeout):
            if self.port is None:
                return await anyio.connect_unix(self.host)
            if self.ssl_context is not None:
                return await anyio.connect_tcp(
                    self.host,
                    self.port,
                    ssl_context=self.ssl_context,
                    tls_standard_compatible=False,
                )
            return await anyio.connect_tcp(self.host, self.port)

    async def createSocket(self) -> None:
        """Try to connect, unless the back-off says it is too early; never raises.

        As in the stdlib: the first failure waits ``retryStart`` seconds, each further one
        ``retryFactor`` times longer, at most ``retryMax``; a success resets the schedule.
        """
        now = time.time()
        if self.retryTime is not None and now < self.retryTime:
            return
        try:
            sock = await self.makeSocket()
        except (*_CONNECTION_ERRORS, TimeoutError) as exc:
            self._connect_failed(exc, now)
            return
        self._adopt(sock)
        self.retryTime = None

    def _connect_failed(self, exc: BaseException, now: float) -> None:
        self.connect_failures += 1
        self._connect_error = exc
        self.retryPeriod = next_delay(
            None if self.retryTime is None else self.retryPeriod,
            self.retryStart,
            self.retryFactor,
            self.retryMax,
        )
        self.retryTime = now + self.retryPeriod
        if not self._outage_reported:
            self._outage_reported = True
            _note(
                f"loopsink {type(self).__name__}: cannot reach {self._where()} ({exc!r}); records "
                f"wait in the backlog and are sent when it is back (retrying from "
                f"{self.retryPeriod:g}s up to every {self.retryMax:g}s)\n"
            )

    def _adopt(self, sock: Any) -> None:
        self.sock = sock
        self.connections += 1
        self._fresh = True
        self._outage_reported = False
        self._connect_error = None
        self._watch = None
        raw = _raw_socket(sock)
        if raw is not None and raw.type == socket.SOCK_STREAM:
            self._watch = HangupWatch(raw, tls=self.ssl_context is not None)

    def _where(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def _peer_gone(self) -> bool:
        """True when the peer has closed or reset the connection (checked before writing).

        A reset (the peer's kernel refused data: it was killed or closed with our bytes
        unread, or they arrived after it closed) sets ``_peer_reset``: the unconfirmed
        writes are then sent again on the next connection. A clean close (FIN) means the
        peer read what it got.
        """
        watch = self._watch
        if watch is None:
            return False
        state = watch.state()
        if state is PeerState.ALIVE:
            return False
        self._peer_reset = state is PeerState.RESET
        return True

    async def _drop_connection(self) -> None:
        sock, self.sock, self._watch = self.sock, None, None
        if sock is not None:
            await anyio.aclose_forcefully(sock)
        await self._release_discarded()

    async def _release_discarded(self) -> None:
        while self._discarded:
            await anyio.aclose_forcefully(self._discarded.pop())

    async def _connect_with_backoff(self) -> None:
        """Wait until connected, sleeping on the back-off schedule between attempts."""
        await self._release_discarded()
        while self.sock is None:
            if self.retryTime is not None:
                delay = self.retryTime - time.time()
                if delay > 0:
                    await anyio.sleep(delay)
            await self.createSocket()
            error = self._connect_error
            if self.sock is None and isinstance(error, ssl.SSLError):
                self._raise_for_tls(error)

    def _raise_for_tls(self, error: ssl.SSLError) -> None:
        """A TLS failure that waiting will not cure fails the batch, with the fix in the message.

        A peer that closes during the handshake (it may be restarting) is waited for instead.
        """
        if isinstance(error, ssl.SSLCertVerificationError):
            raise ConnectionError(
                f"{type(self).__name__} could not verify the TLS certificate of "
                f"{self._where()}: {error.verify_message}; pass ssl_context= an "
                f"ssl.SSLContext that trusts its CA (ctx.load_verify_locations(cafile)) "
                f"and whose check_hostname matches how you name the host"
            ) from error
        if not isinstance(error, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)):
            raise ConnectionError(
                f"{type(self).__name__}: the TLS handshake with {self._where()} failed: "
                f"{error.reason or error}; check that the peer speaks TLS on that port and "
                f"that ssl_context= allows its protocol version and ciphers"
            ) from error

    async def send(self, s: bytes) -> None:
        """Send bytes on the connection, waiting (with back-off) while the peer is down.

        Returns once the kernel has accepted every byte. A connection that turns out to be
        closed is replaced and the whole of ``s`` is sent again on the new one.
        """
        records, self._records_in_write = self._records_in_write, 0
        again: list[tuple[bytes, int]] = []
        while True:
            if self.sock is None:
                await self._connect_with_backoff()
            if self._peer_gone():
                lost = self._ledger.lost(reset=self._peer_reset)
                if lost:
                    again = lost  # resent first, on the next connection
                self._peer_reset = False
                await self._drop_connection()
                continue
            sock = self.sock
            data = ResendLedger.payload(again, s)
            try:
                await sock.send(data)
            except BaseException as exc:
                await self._drop_connection()
                if not isinstance(exc, _CONNECTION_ERRORS):
                    raise
                if self._fresh:  # a peer that accepts then drops us: back off, do not spin
                    self._connect_failed(exc, time.time())
                continue
            self._fresh = False
            if again:
                count = ResendLedger.records(again)
                self.resent += count
                _note(
                    f"loopsink {type(self).__name__}: {self._where()} reset the connection; "
                    f"{count} records it may not have read were sent again (some may arrive "
                    f"twice)\n"
                )
            self._ledger.sent(s, records, again)
            return

    # -- the sink ---------------------------------------------------------------------------

    async def emit(self, record: logging.LogRecord) -> None:
        await self._send_held()  # frames held from earlier batches go first
        await self.send(self.makePickle(record))

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        """Serialise the batch (yielding to the loop as it goes) and send it.

        While a queue drives the sink (:attr:`linger_watched`), the frames are held for a
        linger, as a file sink holds its text: the batches of that window go out in one
        write, not one each, which is what a send costs (waking the receiver) when records
        trickle in. The queue sends them when the linger is over (:meth:`linger_deadline`,
        :meth:`write_held`), :meth:`flush` and :meth:`close` at once, and a batch that
        fills a write sends them with it. A send that fails then reports its records with
        :meth:`report_late_failure`. Called directly, the batch is sent before this returns.

        A send larger than :attr:`max_write_size` bytes (a backlog being caught up) goes out
        in several writes of at most that size, split between frames.
        """
        frames, done = await self.make_frames(records)
        if not frames:
            return
        await self._hand_over(frames, done, hold=self.linger_watched)

    def _held_frames_limit(self) -> int:
        return self.max_write_size  # held frames go once they fill one write

    async def _deliver(
        self, frames: list[bytes], done: list[logging.LogRecord], *, late: bool = False
    ) -> None:
        """Send ``frames`` (of ``done``) in writes of at most :attr:`max_write_size` bytes;
        report what a failure leaves unsent: as a failed batch, or ``late`` as records the
        queue already counted as emitted."""
        limit = self.max_write_size
        start = 0
        try:
            while start < len(frames):
                end, size = start, 0
                while end < len(frames) and (end == start or size + len(frames[end]) <= limit):
                    size += len(frames[end])
                    end += 1
                self._records_in_write = end - start  # for send(): what a resend counts
                await self.send(b"".join(frames[start:end]))
                start = end
        except Exception as exc:
            self._report_unsent(exc, done[start:], late=late)

    def _after_fork(self) -> None:
        # The parent's connection is the parent's: the child connects on its own at its
        # first record (bytes written here would be spliced into the parent's stream).
        super()._after_fork()
        sock, self.sock, self._poll = self.sock, None, None
        inherited, self._discarded = self._discarded, []
        if sock is not None:
            raw = getattr(sock, "raw", None) or _raw_socket(sock)
            _fork.release_inherited(None if raw is None else raw.fileno(), sock, *inherited)
        self._ledger.forget()  # the parent's writes: the parent's to send again
        self._peer_reset = False
        self._records_in_write = 0

    def handleError(self, record: logging.LogRecord) -> None:
        """Report a failed record; with ``closeOnError`` drop the connection quietly instead.

        Either way the failure is counted in the sink's errors.
        """
        if self.closeOnError and self.sock is not None:
            # As the stdlib does, at once: the connection ends here and ``sock`` is None, so
            # the next record connects afresh. Closing the stream itself needs an await, so
            # the kernel socket is shut down now (the peer sees the end) and the stream's
            # resources are released before the next connection, or at close().
            doomed, self.sock, self._watch = self.sock, None, None
            raw = _raw_socket(doomed)
            if raw is not None:
                with contextlib.suppress(OSError):
                    raw.shutdown(socket.SHUT_RDWR)
            self._discarded.append(doomed)
            self._ledger.forget()  # that connection's writes are not resent on the next one
            self._error_count += 1
            self._last_error = repr(sys.exc_info()[1])
            return
        super().handleError(record)

    async def close(self) -> None:
        """Send the frames held for the linger, then close the connection."""
        try:
            await self._send_held()
        finally:
            await self._drop_connection()
            await super().close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._where()} ({logging.getLevelName(self.level)})>"


class DatagramHandler(SocketHandler):
    """Sends each record as one datagram over UDP, or a unix datagram socket (``port=None``).

    Each datagram holds one frame exactly as the stdlib's ``DatagramHandler`` sends it: CPython
    keeps the 4-byte length prefix of ``makePickle`` in datagrams too (its docs do not say so).
    UDP is sent with ``sendto`` from an unconnected socket, as in the stdlib, so nobody
    listening is silent; a unix datagram socket whose receiver is missing makes the sink wait
    and retry with the back-off, like :class:`SocketHandler`.

    A frame larger than one datagram can carry (65,507 bytes over IPv4, 65,527 over IPv6, the
    socket's send buffer for unix sockets) is **truncated with a marker**: the longest of
    ``msg``, ``exc_text`` and ``stack_info`` is cut and ends with
    ``[... N bytes cut by loopsink to fit a datagram]``, and :attr:`truncated` counts it. A
    record still too large after that (huge extra attributes) goes to :meth:`handleError`.
    """

    def __init__(
        self,
        host: str | os.PathLike[str],
        port: int | None,
        *,
        serializer: Serializer = "pickle",
        hmac_key: bytes | None = None,
    ) -> None:
        super().__init__(host, port, serializer=serializer, hmac_key=hmac_key)
        self.closeOnError = False
        #: Records cut to fit one datagram.
        self.truncated = 0
        #: The largest frame one datagram can carry; known once the socket exists.
        self.max_datagram_size: int | None = None

    async def makeSocket(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Create the datagram socket (connected for unix sockets, so a missing peer shows).

        A plain non-blocking socket: sending a datagram never blocks unless the receiver's
        buffer is full, and then the sink awaits writability like any other I/O.
        """
        with anyio.fail_after(self.connect_timeout if timeout is None else timeout):
            if self.port is None:
                raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                try:
                    raw.setblocking(False)
                    raw.connect(self.host)  # immediate for unix datagram sockets
                    limit = raw.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) - 32
                except BaseException:
                    raw.close()
                    raise
                self.max_datagram_size = limit if limit > 0 else UDP_IPV4_LIMIT
                return _DatagramSocket(raw, None)
            infos = await anyio.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
            family, kind, proto, _, sockaddr = infos[0]
            self.max_datagram_size = UDP_IPV6_LIMIT if family == socket.AF_INET6 else UDP_IPV4_LIMIT
            raw = socket.socket(family, kind, proto)
            raw.setblocking(False)
            return _DatagramSocket(raw, sockaddr)

    def fit(self, record: logging.LogRecord, frame: bytes) -> bytes:
        """Return ``frame``, or a frame of a truncated copy of ``record`` that fits a datagram.

        Raises:
            ValueError: the record does not fit even with its text fields cut.
        """
        limit = self.max_datagram_size or UDP_IPV4_LIMIT
        if len(frame) <= limit:
            return frame
        copy = logging.makeLogRecord(self.prepare_dict(record))
        for _ in range(4):
            over = len(frame) - limit
            texts = [
                (len(value.encode("utf-8", "surrogatepass")), name)
                for name in ("msg", "exc_text", "stack_info")
                if isinstance(value := getattr(copy, name, None), str)
            ]
            if not texts:
                break
            size, name = max(texts)
            marker = f" [... {over + 64} bytes cut by loopsink to fit a {limit}-byte datagram]"
            keep = size - over - len(marker.encode()) - 64
            if keep < 0:
                keep = 0
            value = getattr(copy, name).encode("utf-8", "surrogatepass")[:keep]
            setattr(copy, name, value.decode("utf-8", "ignore") + marker)
            frame = self.makePickle(copy)
            if len(frame) <= limit:
                self.truncated += 1
                return frame
        raise ValueError(
            f"record too large for one datagram: {len(frame)} bytes > {limit} even after "
            f"truncating msg, exc_text and stack_info; its extra attributes are too big "
            f"(use SocketHandler over TCP for records this large)"
        )

    async def send(self, s: bytes) -> None:
        """Send one datagram, waiting (with back-off) while a unix peer is missing."""
        while True:
            if self.sock is None:
                await self._connect_with_backoff()
            sock = self.sock
            try:
                await sock.send(s)
            except BaseException as exc:
                if isinstance(exc, OSError) and exc.errno == errno.EMSGSIZE:
                    raise
                await self._drop_connection()
                if not isinstance(exc, _CONNECTION_ERRORS):
                    raise
                self._connect_failed(exc, time.time())
                continue
            return

    async def emit(self, record: logging.LogRecord) -> None:
        await self._send_held()  # datagrams held from earlier batches go first
        frame = self.makePickle(record)
        if self.sock is None:
            await self._connect_with_backoff()
        await self.send(self.fit(record, frame))

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        """Send one datagram per record, in order; a record that fails is reported alone.

        While a queue drives the sink (:attr:`linger_watched`), the datagrams are held for
        a linger, as :class:`SocketHandler` holds its frames: the window's datagrams go out
        together (sooner once 48 wait), which wakes the receiver once rather than once per
        batch. The queue sends them when the linger is over, :meth:`flush` and
        :meth:`close` at once; a datagram whose send then fails is reported with
        :meth:`report_late_failure`. Called directly, the batch is sent before this returns.
        """
        frames, done = await self.make_frames(records)
        if not frames:
            return
        if self.sock is None:
            try:
                await self._connect_with_backoff()
            except Exception:
                self.report_batch_failure(done)
                return
        fitted: list[bytes] = []
        kept: list[logging.LogRecord] = []
        for record, frame in zip(done, frames, strict=True):
            try:
                fitted.append(self.fit(record, frame))
            except Exception:
                self.handleError(record)
                continue
            kept.append(record)
        if fitted:
            await self._hand_over(fitted, kept, hold=self.linger_watched)

    def _frames_are_datagrams(self) -> bool:
        return True

    async def _deliver(
        self, frames: list[bytes], done: list[logging.LogRecord], *, late: bool = False
    ) -> None:
        """Send each frame as a datagram, taking turns with the loop's other tasks; a
        datagram that fails is reported alone (``late``: as a record already counted)."""
        turns = Turns(done, SERIALIZE_SLICE, SERIALIZE_SLICE_MAX)
        for record, frame in zip(done, frames, strict=True):
            if turns.due():
                await turns.pause()
            try:
                await self.send(frame)
            except Exception as exc:
                self._report_unsent(exc, (record,), late=late)


class _DatagramSocket:
    """A non-blocking datagram socket driven by anyio's readiness waits (any backend)."""

    def __init__(self, raw: socket.socket, target: Any) -> None:
        self.raw = raw
        self.target = target

    async def send(self, data: bytes) -> None:
        raw, target = self.raw, self.target
        while True:
            try:
                if target is None:
                    raw.send(data)
                else:
                    raw.sendto(data, target)
            except BlockingIOError:
                await anyio.wait_writable(raw)
                continue
            return

    async def aclose(self) -> None:
        self.raw.close()


def _raw_socket(stream: Any) -> socket.socket | None:
    try:
        raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    except (anyio.TypedAttributeLookupError, AttributeError):
        return None
    return raw  # type: ignore[no-any-return]


def _note(text: str) -> None:
    """A one-line notice on stderr (not an error: nothing is lost), gated like handleError."""
    if logging.raiseExceptions and sys.stderr:
        try:
            sys.stderr.write(text)
        except (OSError, ValueError):
            pass


# Per record they run their formatter and their own fixed encoding, which reads no context.
FORMATTER_ONLY_SINKS.update({SocketHandler, DatagramHandler})
