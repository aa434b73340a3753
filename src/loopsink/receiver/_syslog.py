"""SyslogReceiver: a small pure-Python syslog server for demos, tests and benchmarks.

It listens on UDP and TCP (optionally TLS) on loopback, splits TCP streams into messages
whatever the sender's framing (RFC 6587 octet counting when a frame starts with a digit,
otherwise LF or NUL delimited, as rsyslog does with ``AddtlFrameDelimiter="0"``), parses the
``<PRI>`` into facility and severity, and counts what arrived. It is not a syslog daemon: it
stores nothing on disk and parses no further than the PRI (the rest is the ``body``).
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from anyio.streams.tls import TLSListener

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["SyslogMessage", "SyslogReceiver", "parse_syslog_frame", "split_syslog_stream"]

_log = logging.getLogger("loopsink.receiver")

#: Octet-counted frames longer than this are refused (the connection is closed).
MAX_FRAME = 1 << 20


@dataclass(frozen=True)
class SyslogMessage:
    """One received message. ``pri``, ``facility`` and ``severity`` are ``None`` without a PRI."""

    pri: int | None
    facility: int | None
    severity: int | None
    #: Everything after the ``<PRI>``, decoded as UTF-8 (invalid bytes replaced), without
    #: the trailing NUL a stdlib datagram carries.
    body: str
    #: The frame as received (without the framing: no length prefix, no delimiter).
    raw: bytes
    #: ``"udp"``, ``"tcp"`` or ``"tls"``.
    transport: str


def parse_syslog_frame(frame: bytes, transport: str = "udp") -> SyslogMessage:
    """Split ``<PRI>`` off one frame; a frame without a valid PRI keeps ``pri=None``."""
    pri: int | None = None
    rest = frame
    if frame[:1] == b"<":
        end = frame.find(b">", 1, 5)
        digits = frame[1:end] if end > 0 else b""
        if digits.isdigit() and int(digits) <= 191:
            pri = int(digits)
            rest = frame[end + 1 :]
    if rest.endswith(b"\x00"):
        rest = rest[:-1]
    return SyslogMessage(
        pri=pri,
        facility=None if pri is None else pri >> 3,
        severity=None if pri is None else pri & 7,
        body=rest.decode("utf-8", errors="replace"),
        raw=frame,
        transport=transport,
    )


def split_syslog_stream(buffer: bytearray) -> list[bytes]:
    """Take every complete frame out of ``buffer`` (which keeps the incomplete tail).

    A frame that starts with a digit is octet-counted (``LEN SP MSG``, RFC 6587); any
    other ends at the first LF or NUL (non-transparent framing, or the stdlib's NUL).

    Raises:
        ValueError: an octet count that is not a number or exceeds :data:`MAX_FRAME`.
    """
    frames: list[bytes] = []
    pos = 0
    size = len(buffer)
    while pos < size:
        first = buffer[pos]
        if first in (0x0A, 0x00, 0x0D):  # stray delimiters between frames
            pos += 1
            continue
        if 0x30 <= first <= 0x39:
            space = buffer.find(b" ", pos, pos + 12)
            if space < 0:
                if size - pos >= 12:
                    raise ValueError(f"bad octet count in {bytes(buffer[pos : pos + 12])!r}")
                break
            count = int(buffer[pos:space])
            if count > MAX_FRAME:
                raise ValueError(f"octet-counted frame of {count} bytes exceeds {MAX_FRAME}")
            end = space + 1 + count
            if end > size:
                break
            frames.append(bytes(buffer[space + 1 : end]))
            pos = end
            continue
        lf = buffer.find(b"\n", pos)
        nul = buffer.find(b"\x00", pos)
        ends = [i for i in (lf, nul) if i >= 0]
        if not ends:
            if size - pos > MAX_FRAME:
                raise ValueError(f"unterminated frame exceeds {MAX_FRAME} bytes")
            break
        end = min(ends)
        frames.append(bytes(buffer[pos:end]))
        pos = end + 1
    del buffer[:pos]
    return frames


class SyslogReceiver:
    """Receives syslog messages on loopback UDP and TCP; counts and keeps the latest ones.

    ::

        async with SyslogReceiver() as receiver:
            handler = loopsink.SysLogHandler(receiver.udp_address)
            ...
            await receiver.wait_count(100)
            receiver.messages[-1].severity

    Args:
        host: the address to listen on.
        udp_port: UDP port (0: any free one; ``None``: no UDP).
        tcp_port: TCP port (0: any free one; ``None``: no TCP).
        ssl_context: serve TLS (RFC 5425) on the TCP port with this server context.
        keep: how many of the latest messages :attr:`messages` keeps (0: none, count only).
        on_message: called with each message, on the event loop.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        udp_port: int | None = 0,
        tcp_port: int | None = 0,
        ssl_context: ssl.SSLContext | None = None,
        keep: int = 10_000,
        on_message: Callable[[SyslogMessage], object] | None = None,
    ) -> None:
        if udp_port is None and tcp_port is None:
            raise ValueError("SyslogReceiver needs udp_port or tcp_port (or both), got neither")
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        self.host = host
        self._udp_port = udp_port
        self._tcp_port = tcp_port
        self.ssl_context = ssl_context
        self.on_message = on_message
        #: The latest messages, oldest first (at most ``keep``).
        self.messages: deque[SyslogMessage] = deque(maxlen=keep)
        #: How many messages arrived, in all.
        self.count = 0
        #: How many TCP connections were accepted, in all.
        self.connections = 0
        self._keep = keep
        self._changed: anyio.Event | None = None  # created by the first waiter, on the loop
        self._task_group: anyio.abc.TaskGroup | None = None
        self._scope: anyio.CancelScope | None = None
        self._stopped: anyio.Event
        self.udp_address: tuple[str, int] | None = None
        self.tcp_address: tuple[str, int] | None = None

    def _received(self, frame: bytes, transport: str) -> None:
        self.count += 1
        if self._keep or self.on_message is not None:
            message = parse_syslog_frame(frame, transport)
            if self._keep:
                self.messages.append(message)
            if self.on_message is not None:
                self.on_message(message)
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def wait_count(self, count: int) -> None:
        """Return once at least ``count`` messages have arrived (bound it with ``fail_after``)."""
        while self.count < count:
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    async def _serve_udp(self, sock: anyio.abc.UDPSocket) -> None:
        async with sock:
            async for data, _ in sock:
                self._received(data, "udp")

    async def _serve_tcp(self, stream: anyio.abc.ByteStream) -> None:
        transport = "tls" if self.ssl_context is not None else "tcp"
        self.connections += 1
        buffer = bytearray()
        async with stream:
            try:
                async for chunk in stream:
                    buffer += chunk
                    for frame in split_syslog_stream(buffer):
                        self._received(frame, transport)
            except (anyio.BrokenResourceError, ssl.SSLError, OSError):
                return
            except ValueError as exc:
                _log.warning("closing a syslog connection with bad framing: %s", exc)
                return
        tail = bytes(buffer).strip(b"\r\n\x00")
        if tail:  # a last frame without a delimiter (the stdlib with append_nul=False)
            self._received(tail, transport)

    async def _run(
        self,
        udp: anyio.abc.UDPSocket | None,
        listener: anyio.abc.Listener[anyio.abc.ByteStream] | None,
        scope: anyio.CancelScope,
    ) -> None:
        try:
            with scope:
                async with anyio.create_task_group() as task_group:
                    if udp is not None:
                        task_group.start_soon(self._serve_udp, udp)
                    if listener is not None:
                        task_group.start_soon(listener.serve, self._serve_tcp)
        finally:
            with anyio.CancelScope(shield=True):
                for resource in (udp, listener):
                    if resource is not None:
                        await resource.aclose()
            self._stopped.set()

    async def __aenter__(self) -> Self:
        udp: anyio.abc.UDPSocket | None = None
        listener: anyio.abc.Listener[anyio.abc.ByteStream] | None = None
        try:
            if self._udp_port is not None:
                udp = await anyio.create_udp_socket(
                    family=socket.AF_INET, local_host=self.host, local_port=self._udp_port
                )
                raw = udp.extra(anyio.abc.SocketAttribute.raw_socket)
                try:
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                except OSError:  # the kernel caps it; the default still works
                    pass
                self.udp_address = (self.host, udp.extra(anyio.abc.SocketAttribute.local_port))
            if self._tcp_port is not None:
                tcp = await anyio.create_tcp_listener(
                    local_host=self.host, local_port=self._tcp_port
                )
                self.tcp_address = (self.host, tcp.extra(anyio.abc.SocketAttribute.local_port))
                listener = tcp
                if self.ssl_context is not None:
                    listener = TLSListener(tcp, self.ssl_context, standard_compatible=False)
        except BaseException:
            for resource in (udp, listener):
                if resource is not None:
                    await anyio.aclose_forcefully(resource)
            raise
        self._stopped = anyio.Event()
        self._scope = anyio.CancelScope()
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(self._run, udp, listener, self._scope)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        task_group, self._task_group = self._task_group, None
        if task_group is None:
            return None
        await self.aclose()
        return await task_group.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Stop listening and close every connection; callable inside the ``async with``."""
        if self._scope is None:
            return
        self._scope.cancel()
        await self._stopped.wait()
