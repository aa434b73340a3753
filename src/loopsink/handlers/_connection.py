"""A connection to a log server: has the peer hung up, what to send again, when to retry.

Shared by the sinks that keep a connection open: :class:`SysLogHandler` over TCP and unix
stream sockets, :class:`SocketHandler`, and the HTTP transport's kept-alive connection.
A log server never writes to its senders (an HTTP server answers only what was asked), so
anything to read on an idle connection means it is over, and the question before each
write is only *how* it ended:

* a clean close (FIN): the peer read what it got; the connection is replaced;
* a reset (the peer's kernel refused our bytes: the server was killed, or closed with our
  bytes unread, or they arrived after it closed): the last writes may never have been read,
  so an at-least-once sink sends them again first on the next connection
  (:class:`ResendLedger`).

Two ways to ask, for two kinds of socket: :func:`peek_peer` reads without waiting from a
socket this code may read from (a plain socket, or an ``ssl.SSLSocket`` it owns);
:class:`HangupWatch` polls a socket that an anyio stream reads (TLS included), through the
portable probe of :mod:`loopsink._platform`. Neither ever blocks.
"""

from __future__ import annotations

import enum
import errno
import select
import socket
import ssl
from collections.abc import Sequence

from .._platform import peer_hangup_probe

__all__ = [
    "RESETS",
    "HangupWatch",
    "PeerState",
    "ResendLedger",
    "next_delay",
    "peek_peer",
]

#: Socket errors that mean the peer's kernel refused our bytes (a reset).
RESETS = frozenset({errno.ECONNRESET, errno.EPIPE})

#: The most writes kept for sending again after a reset: the last write, and what it carried
#: again from the connection before (older writes are taken as read).
UNCONFIRMED_WRITES = 2

#: One write the peer may not have read: its bytes and the records they carry.
Write = tuple[bytes, int]


class PeerState(enum.Enum):
    """What an idle connection's peer has done, as far as a non-blocking look can tell."""

    ALIVE = "alive"  # nothing to read: idle, as it should be
    CLOSED = "closed"  # a clean close (FIN): it read what it got
    RESET = "reset"  # its kernel refused our bytes: the last writes may be unread
    DATA = "data"  # it sent bytes: a TLS record (a session ticket?), or an unasked answer


def peek_peer(sock: socket.socket, *, tls: bool = False) -> PeerState:
    """Look at ``sock`` (non-blocking) without waiting: has its peer closed, reset or written?

    A plain socket is peeked at (nothing is consumed). An ``ssl.SSLSocket`` cannot peek, so
    ``tls=True`` reads one byte: on an idle connection the read only processes TLS records
    that carry no application data (session tickets) and wants more, which is ``ALIVE``.
    """
    try:
        if tls:
            data = sock.recv(1)
        else:
            # MSG_DONTWAIT where it exists (not on Windows): the socket is non-blocking anyway
            data = sock.recv(1, socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0))
    except (ssl.SSLWantReadError, BlockingIOError):
        return PeerState.ALIVE
    except OSError as exc:
        return PeerState.RESET if exc.errno in RESETS else PeerState.CLOSED
    except ValueError:  # closed meanwhile
        return PeerState.CLOSED
    return PeerState.DATA if data else PeerState.CLOSED


class HangupWatch:
    """Polls a stream's socket for the peer's hang-up, without reading from it.

    For a socket that an anyio stream owns (and over TLS decrypts): the bytes stay for the
    stream. Built on :func:`loopsink._platform.peer_hangup_probe`, so what counts as a
    hang-up follows the platform (at once on Linux; once both directions closed on macOS;
    through ``select()`` on Windows; not before the next write for TLS where there is no
    ``poll()``). :meth:`state` never answers ``DATA``.
    """

    __slots__ = ("_probe", "_sock")

    def __init__(self, sock: socket.socket, *, tls: bool) -> None:
        self._sock = sock
        self._probe = peer_hangup_probe(sock, tls=tls)

    def state(self) -> PeerState:
        probe = self._probe
        if probe is None:
            return PeerState.ALIVE
        try:
            events = probe.poll(0)
        except OSError:
            return PeerState.RESET
        if not events:
            return PeerState.ALIVE
        # poll() answers (fd, events) pairs; the select() probe answers the socket itself
        first = events[0]
        errored = isinstance(first, tuple) and bool(first[1] & getattr(select, "POLLERR", 0))
        if errored or self._socket_error() in RESETS:
            return PeerState.RESET
        return PeerState.CLOSED

    def _socket_error(self) -> int:
        try:
            return int(self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
        except OSError:
            return 0


class ResendLedger:
    """The last writes on the current connection, kept until the peer can no longer lose them.

    At-least-once over a protocol without acknowledgements: after each write the ledger
    keeps that write, with the writes it carried again (at most :data:`UNCONFIRMED_WRITES`
    in all, the newest); when the connection ends in a reset, :meth:`lost` hands them back
    to be sent again, first, on the next connection (some records may then arrive twice).
    A clean close forgets them: the peer read them.
    """

    __slots__ = ("keep", "unconfirmed")

    def __init__(self, keep: int = UNCONFIRMED_WRITES) -> None:
        self.keep = keep
        self.unconfirmed: list[Write] = []

    def lost(self, *, reset: bool) -> list[Write]:
        """The connection ended: the writes to send again (none after a clean close)."""
        again = self.unconfirmed if reset else []
        self.unconfirmed = []
        return again

    def forget(self) -> None:
        """The connection was let go of on purpose: its writes are not sent again."""
        self.unconfirmed = []

    def sent(self, data: bytes, records: int, again: Sequence[Write] = ()) -> None:
        """``again`` and then ``data`` (carrying ``records``) went out in one write; the
        writes before it are taken as read."""
        self.unconfirmed = [*again, (data, records)][-self.keep :]

    @staticmethod
    def payload(again: Sequence[Write], data: bytes) -> bytes:
        """The bytes of one write: what is sent again, then ``data``."""
        if not again:
            return data
        return b"".join([chunk for chunk, _ in again] + [data])

    @staticmethod
    def records(again: Sequence[Write]) -> int:
        """How many records the writes in ``again`` carry."""
        return sum(count for _, count in again)


def next_delay(previous: float | None, start: float, factor: float, maximum: float) -> float:
    """The next wait of an exponential back-off: ``start``, then ``factor`` times longer each
    time, never more than ``maximum``; ``previous`` is ``None`` for the first wait."""
    if previous is None:
        return start
    return min(previous * factor, maximum)
