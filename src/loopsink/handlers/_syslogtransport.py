"""The transports of :class:`~loopsink.handlers.SysLogHandler`: UDP, TCP (with TLS) and unix
sockets, opened, written and closed without blocking the loop.

Each ``connect_*`` function opens one :class:`Connection`; the handler decides when (first
record, reconnection with back-off) and what to send (framed bytes from
:mod:`._syslogformat`). Whether a stream's peer hung up, and what to send again after a
reset, is the shared :mod:`._connection` helper's.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.abc

__all__ = [
    "Connection",
    "TLSVerificationError",
    "close_connection",
    "connect_tcp",
    "connect_udp",
    "connect_unix",
    "send_datagram",
]

#: How long closing a TLS connection may wait for the peer before it is cut.
_CLOSE_TIMEOUT = 1.0

_T = TypeVar("_T")


class TLSVerificationError(ConnectionError):
    """The server's certificate did not verify; retrying cannot help."""


@dataclass
class Connection:
    """One open syslog socket.

    ``sock`` is the raw socket (the stdlib handler's ``socket`` attribute). A stream has
    its anyio ``stream`` (which does the writing, and TLS) and a ``probe``: asyncio hands
    out a restricted socket without ``recv()``, so a duplicate of the descriptor peeks for
    the peer's hang-up; it is closed before the stream, so that our FIN is not held back by
    it. A UDP socket has its resolved destination ``dest``.
    """

    sock: socket.socket
    socktype: int
    stream: anyio.abc.ByteStream | None = None
    probe: socket.socket | None = None
    dest: Any = None


async def _stream_connection(stream: anyio.abc.ByteStream) -> Connection:
    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    try:
        probe = socket.fromfd(raw.fileno(), raw.family, raw.type)
    except OSError:  # out of descriptors: the caller's retry opens a new connection
        await anyio.aclose_forcefully(stream)
        raise
    probe.setblocking(False)  # already so: the flag belongs to the shared file
    return Connection(raw, socket.SOCK_STREAM, stream=stream, probe=probe)


async def _within(opening: Awaitable[_T], seconds: float | None) -> _T:
    if seconds is None:
        return await opening
    with anyio.fail_after(seconds):
        return await opening


async def connect_unix(
    path: str, socktype: int | None, *, connect_timeout: float | None
) -> Connection:
    """A unix socket at ``path``: ``socktype`` ``None`` tries a datagram socket first and
    falls back to a stream one, as the stdlib does."""
    if socktype in (None, socket.SOCK_DGRAM):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect(path)  # a unix datagram connect never waits
        except OSError:
            sock.close()
            if socktype is not None:
                raise
        else:
            return Connection(sock, socket.SOCK_DGRAM)
    return await _stream_connection(await _within(anyio.connect_unix(path), connect_timeout))


async def connect_tcp(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
    connect_timeout: float | None,
) -> Connection:
    """A TCP connection, with TLS when ``ssl_context`` is given.

    Raises:
        TLSVerificationError: the server's certificate did not verify (the message says
            how to trust a private CA).
    """
    try:
        opening: Any
        if ssl_context is None:
            opening = anyio.connect_tcp(host, port)
        else:
            opening = anyio.connect_tcp(
                host,
                port,
                ssl_context=ssl_context,
                tls_hostname=server_hostname,
                tls_standard_compatible=False,
            )
        stream: anyio.abc.ByteStream = await _within(opening, connect_timeout)
    except ssl.SSLCertVerificationError as exc:
        raise TLSVerificationError(
            f"TLS verification of the syslog server {host}:{port} failed "
            f"({exc.verify_message}); if it uses a private CA, pass "
            f"ssl_context=ssl.create_default_context(cafile='ca.pem') (and "
            f"server_hostname= if the certificate names another host)"
        ) from exc
    return await _stream_connection(stream)


async def connect_udp(host: str, port: int) -> Connection:
    """An unconnected, non-blocking UDP socket for the first address ``host`` resolves to."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"getaddrinfo({host!r}, {port}) returned no address")
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            error = exc
            continue
        sock.setblocking(False)
        return Connection(sock, socket.SOCK_DGRAM, dest=sockaddr)
    assert error is not None
    raise error


async def send_datagram(sock: socket.socket, dest: Any, frame: bytes) -> None:
    """Send one datagram (to ``dest``, or on a connected socket), awaiting room if needed."""
    while True:
        try:
            if dest is None:
                sock.send(frame)
            else:
                sock.sendto(frame, dest)
        except BlockingIOError:
            await anyio.wait_writable(sock)
            continue
        return


async def close_connection(
    stream: anyio.abc.ByteStream | None, sock: socket.socket | None, probe: socket.socket | None
) -> None:
    """Close what a connection left open: a TLS stream may say goodbye, for a short while."""
    if probe is not None:
        probe.close()
    if stream is not None:
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True) as scope:
            await stream.aclose()
        if scope.cancelled_caught:
            await anyio.aclose_forcefully(stream)
    elif sock is not None:
        sock.close()
