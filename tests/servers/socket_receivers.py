"""Receivers written the stdlib way (struct + pickle + logging.makeLogRecord), in threads.

They are the reference the loopsink sinks must satisfy: what the logging cookbook's
"sending and receiving logging events across a network" server does, without any loopsink
code. Tests await records with ``await receiver.get()`` (bounded), never by sleeping.
"""

from __future__ import annotations

import logging
import pickle
import queue
import socket
import socketserver
import struct
import threading
from typing import Any

import anyio.to_thread


class _StreamRequestHandler(socketserver.StreamRequestHandler):
    server: _ThreadingStreamServer

    def handle(self) -> None:
        while True:
            header = self.connection.recv(4, socket.MSG_WAITALL)
            if len(header) < 4:
                return
            (size,) = struct.unpack(">L", header)
            chunk = b""
            while len(chunk) < size:
                part = self.connection.recv(size - len(chunk))
                if not part:
                    return
                chunk += part
            self.server.frames.put(header + chunk)
            self.server.records.put(logging.makeLogRecord(pickle.loads(chunk)))


class _ThreadingStreamServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Any, family: int) -> None:
        self.address_family = family
        self.records: queue.Queue[logging.LogRecord] = queue.Queue()
        self.frames: queue.Queue[bytes] = queue.Queue()
        super().__init__(address, _StreamRequestHandler)


class StdlibReceiver:
    """A stdlib-style receiver for TCP (``path=None``) or a unix socket, or datagrams.

    ``kind`` is ``"tcp"``, ``"unix"``, ``"udp"`` or ``"unix_dgram"``. ``address`` is what a
    handler connects to: ``(host, port)`` or a path.
    """

    def __init__(self, kind: str, path: str | None = None) -> None:
        self.kind = kind
        self.records: queue.Queue[logging.LogRecord] = queue.Queue()
        self.frames: queue.Queue[bytes] = queue.Queue()
        self._server: _ThreadingStreamServer | None = None
        self._dgram: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.address: Any
        if kind in ("tcp", "unix"):
            family = socket.AF_INET if kind == "tcp" else socket.AF_UNIX
            server = _ThreadingStreamServer(("127.0.0.1", 0) if kind == "tcp" else path, family)
            self.records, self.frames = server.records, server.frames
            self._server = server
            self.address = server.server_address
            self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        else:
            family = socket.AF_INET if kind == "udp" else socket.AF_UNIX
            sock = socket.socket(family, socket.SOCK_DGRAM)
            if kind == "udp":
                sock.bind(("127.0.0.1", 0))
            else:
                assert path is not None, "a unix datagram receiver needs a path"
                sock.bind(path)
            self._dgram = sock
            self.address = sock.getsockname()
            self._thread = threading.Thread(target=self._receive_datagrams, daemon=True)
        self._thread.start()

    def _receive_datagrams(self) -> None:
        assert self._dgram is not None
        while True:
            try:
                packet = self._dgram.recv(1 << 20)
            except OSError:
                return
            if not packet:
                return
            (size,) = struct.unpack(">L", packet[:4])
            self.frames.put(packet)
            self.records.put(logging.makeLogRecord(pickle.loads(packet[4 : 4 + size])))

    @property
    def host(self) -> str:
        return str(self.address[0])

    @property
    def port(self) -> int:
        return int(self.address[1])

    async def get(self, timeout: float = 5.0) -> logging.LogRecord:
        """The next record received; raises ``queue.Empty`` after ``timeout`` seconds."""
        return await anyio.to_thread.run_sync(lambda: self.records.get(timeout=timeout))

    async def get_frame(self, timeout: float = 5.0) -> bytes:
        return await anyio.to_thread.run_sync(lambda: self.frames.get(timeout=timeout))

    async def aclose(self) -> None:
        """:meth:`close` from async code: it waits for the server thread, off the loop."""
        await anyio.to_thread.run_sync(self.close)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._dgram is not None:
            try:
                self._dgram.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._dgram.close()
        if self._thread is not None:
            self._thread.join(5)
