"""What the running platform can do, asked when a feature is used, never at import time.

``import loopsink`` must work on Linux, macOS and Windows alike, so no module reads a
platform-only attribute (``select.POLLHUP``, ``socket.AF_UNIX``, ``socket.MSG_DONTWAIT``,
``fcntl``) at import. A feature that a platform cannot have fails where it is asked for, with
a message that names what is missing and what to use instead; checks that merely help
(noticing a peer's hang-up early) fall back to a portable way.
"""

from __future__ import annotations

import select
import socket
import sys
from typing import Any

__all__ = ["peer_hangup_probe", "require_unix_sockets"]


def require_unix_sockets(what: str) -> None:
    """Raise ``NotImplementedError`` naming ``what`` when this platform has no unix sockets."""
    if not hasattr(socket, "AF_UNIX"):
        raise NotImplementedError(
            f"{what} needs unix domain sockets (socket.AF_UNIX), which this platform "
            f"({sys.platform}) lacks: use a (host, port) address instead"
        )


class _SelectProbe:
    """A hang-up check through ``select()``, for platforms without ``poll()`` (Windows).

    The peer of a log sender never sends data, so a readable (or errored) socket means the
    peer closed or reset the connection. Only used for plain TCP: a TLS server may send
    session tickets, which would look like a hang-up here.
    """

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def poll(self, timeout: float = 0) -> list[Any]:
        readable, _, errored = select.select([self._sock], [], [self._sock], timeout)
        return readable + errored


def peer_hangup_probe(sock: socket.socket, *, tls: bool) -> Any:
    """An object whose ``poll(0)`` is non-empty once the peer of ``sock`` hung up, or None.

    Linux's ``poll()`` reports the peer's FIN as ``POLLRDHUP`` at once. Elsewhere ``poll()``
    (macOS) raises ``POLLHUP`` only once both directions are closed, and Windows has no
    ``poll()``, so a plain TCP socket is checked with ``select()`` instead. A TLS socket
    there keeps ``POLLHUP | POLLERR`` where ``poll()`` exists, and no early check otherwise
    (the next write finds out).
    """
    has_poll = hasattr(select, "poll")
    if has_poll and hasattr(select, "POLLRDHUP"):
        flags = select.POLLRDHUP | select.POLLHUP | select.POLLERR
    elif not tls:
        return _SelectProbe(sock)
    elif has_poll:
        flags = select.POLLHUP | select.POLLERR
    else:
        return None
    poll = select.poll()
    poll.register(sock.fileno(), flags)
    return poll
