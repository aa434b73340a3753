"""A small HTTP proxy on 127.0.0.1 for the tests of ``HTTPHandler(client=httpx.Client(...))``.

It speaks the two ways a client uses a proxy: an absolute-form request (``POST http://host/
path HTTP/1.1``) for plain HTTP, which it forwards to the origin and whose answer it relays,
and ``CONNECT host:port`` for HTTPS, after which it pipes bytes both ways without looking.
Each request line it was given is recorded, so a test sees that traffic went through it.
One thread per connection; every forwarded exchange closes its connection, which keeps the
relay simple (a client opens a new connection per request through it).
"""

from __future__ import annotations

import socket
import threading
import urllib.parse


class ProxyServer:
    """Forwarding and CONNECT proxy in daemon threads. Use it as a context manager."""

    def __init__(self) -> None:
        self.requests: list[str] = []  # request lines as received
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True, name="http-proxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ProxyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        except OSError:
            pass
        self._listener.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            head, rest = _read_head(conn)
            if not head:
                return
            line, *header_lines = head.decode("latin-1").split("\r\n")
            with self._lock:
                self.requests.append(line)
            method, target, _version = line.split(" ", 2)
            if method == "CONNECT":
                self._tunnel(conn, target, rest)
            else:
                self._forward(conn, method, target, header_lines, rest)
        except OSError:
            pass
        finally:
            conn.close()

    def _tunnel(self, conn: socket.socket, target: str, rest: bytes) -> None:
        host, _, port = target.rpartition(":")
        upstream = socket.create_connection((host, int(port)))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
        relay = threading.Thread(target=_pipe, args=(upstream, conn), daemon=True)
        relay.start()
        _pipe(conn, upstream)
        relay.join(5)
        upstream.close()

    def _forward(
        self, conn: socket.socket, method: str, target: str, header_lines: list[str], rest: bytes
    ) -> None:
        url = urllib.parse.urlsplit(target)
        length = 0
        kept = []
        for header in header_lines:
            name, _, value = header.partition(":")
            lowered = name.strip().lower()
            if lowered == "content-length":
                length = int(value)
            if lowered in ("connection", "proxy-connection", "keep-alive", "proxy-authorization"):
                continue
            kept.append(header)
        body = rest
        while len(body) < length:
            data = conn.recv(65536)
            if not data:
                return
            body += data
        path = url.path + (f"?{url.query}" if url.query else "")
        request = "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""])
        with socket.create_connection((url.hostname or "", url.port or 80)) as upstream:
            upstream.sendall(request.encode("latin-1") + body[:length])
            while data := upstream.recv(65536):  # the origin closes after its answer
                conn.sendall(data)


def _read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return b"", b""
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return head, rest


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
