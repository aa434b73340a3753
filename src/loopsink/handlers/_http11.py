"""A small blocking HTTP/1.1 client: what ``HTTPHandler`` needs and nothing more.

``HTTPHandler`` sends one kind of request to one server, over and over: a POST or GET with
a few headers, no redirects, no cookies, no proxies (the stdlib's handler uses none of
them either). A general-purpose client spends most of a millisecond of CPU per request on
models, URL parsing and a protocol state machine (httpx: about 0.66 ms on loopback).
Writing the request head and parsing the answer by hand costs a fraction of that.

It is blocking on purpose: the sink runs it in a thread of its own (see ``_http``), where
waiting on the network never wakes the event loop. What it speaks: HTTP/1.1 with
keep-alive (one idle connection kept, checked before reuse), ``Content-Length``, chunked
and until-close answers, 1xx answers skipped, TLS verified by the ``ssl`` module, one
timeout for the connection and one for the exchange. Errors are translated into the
exceptions below, all ``OSError`` subclasses, so a sink reports them like any I/O failure.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "HTTPConnectionPool",
    "HTTPResponse",
    "NetworkError",
    "ReadTimeout",
    "RemoteProtocolError",
    "TransportError",
    "check_header",
    "check_target",
    "split_host",
]

#: How much one read asks of the socket.
_READ_SIZE = 64 * 1024

#: Linux tells a peer's close apart from data waiting; elsewhere POLLIN says either.
_POLLRDHUP: int = getattr(select, "POLLRDHUP", 0)

#: The longest status line plus headers accepted, and the most header lines.
_MAX_HEAD = 64 * 1024
_MAX_HEADERS = 100

#: The largest answer body read (collectors answer with a few bytes or a bulk summary).
_MAX_BODY = 64 * 1024 * 1024


class TransportError(OSError):
    """A request could not be completed; the message says why."""


class ConnectError(TransportError):
    """No connection (refused, unreachable, TLS handshake or certificate refused)."""


class ConnectTimeout(TransportError):
    """The connection (with its TLS handshake) took longer than the timeout."""


class ReadTimeout(TransportError):
    """Sending the request or waiting for the answer took longer than the timeout."""


class NetworkError(TransportError):
    """The connection broke while the request was sent or the answer read."""


class RemoteProtocolError(TransportError):
    """The server closed the connection early or answered something that is not HTTP."""


@dataclass(frozen=True)
class HTTPResponse:
    """An answer: status, reason, headers (in order, as sent) and the whole body."""

    status_code: int
    reason_phrase: str
    headers: tuple[tuple[str, str], ...]
    content: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or ``None``."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def split_host(host: str, default_port: int) -> tuple[str, int]:
    """``"name"``, ``"name:port"``, ``"[::1]:port"`` into (name, port), as ``http.client``."""
    name, port = host, default_port
    colon, bracket = host.rfind(":"), host.rfind("]")
    if colon > bracket:
        port_text = host[colon + 1 :]
        name = host[:colon]
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ValueError(
                    f"the port in host {host!r} must be a number from 1 to 65535, "
                    f"e.g. 'localhost:8080'"
                )
            port = int(port_text)
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if not name:
        raise ValueError(f"host {host!r} names no server; use e.g. 'localhost:8080'")
    return name, port


class _Connection:
    """One open connection and the bytes read past the last answer."""

    __slots__ = ("answering", "buffer", "deadline", "socket")

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.buffer = b""
        self.answering = False  # the head of the current answer has arrived
        self.deadline: float | None = None  # when the current exchange times out

    def looks_alive(self, tls: bool) -> bool:
        """False if the server closed the connection while it was idle (or wrote to it).

        Asks ``poll`` about the socket without reading from it. Over TLS a waiting byte may
        be a session ticket, harmless: the connection is tried, and if it was a farewell
        after all, the request goes out once more on a new connection (see ``request``).
        """
        fd = self.socket.fileno()
        if self.buffer or fd < 0:
            return False
        poller = select.poll()
        poller.register(fd, select.POLLIN | _POLLRDHUP)
        try:
            events = poller.poll(0)
        except OSError:
            return False
        if not events:
            return True  # nothing to read: idle, as it should be
        flags = events[0][1]
        if flags & (select.POLLHUP | select.POLLERR | select.POLLNVAL | _POLLRDHUP):
            return False  # the server closed it (or it broke)
        return tls

    def _arm(self) -> None:
        """Give the next socket call what is left of the exchange's time."""
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.socket.settimeout(left)

    def send(self, data: bytes) -> None:
        self._arm()
        self.socket.sendall(data)

    def receive(self) -> bytes:
        self._arm()
        try:
            return self.socket.recv(_READ_SIZE)
        except TimeoutError:
            raise
        except ssl.SSLZeroReturnError:
            return b""  # a TLS farewell: the end of the stream
        except (OSError, ssl.SSLError) as exc:
            raise NetworkError(f"the connection broke while reading the answer: {exc!r}") from exc

    def close(self) -> None:
        try:
            self.socket.close()
        except OSError:
            pass


class HTTPConnectionPool:
    """Blocking requests to one server, over one kept-alive connection.

    Not thread-safe: one thread makes the requests (the sink's own).

    Args:
        host: ``"name"`` or ``"name:port"``, as ``http.client`` takes it.
        ssl_context: TLS with this context, or ``None`` for plain HTTP.
        timeout: seconds to connect (with the TLS handshake), then seconds to send the
            request and read the whole answer; ``None`` waits forever.
    """

    def __init__(
        self, host: str, *, ssl_context: ssl.SSLContext | None, timeout: float | None
    ) -> None:
        default_port = 443 if ssl_context is not None else 80
        self.name, self.port = split_host(host, default_port)
        self.ssl_context = ssl_context
        self.timeout = timeout
        shown = f"[{self.name}]" if ":" in self.name else self.name
        #: the Host header, as http.client writes it: the port only when not the default
        self.host_header = shown if self.port == default_port else f"{shown}:{self.port}"
        self._idle: list[_Connection] = []
        #: connections opened so far (a kept-alive one serves many requests)
        self.connections_opened = 0

    def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | Sequence[bytes] | None = None,
    ) -> HTTPResponse:
        """Send one request and read its whole answer.

        ``body`` may come in pieces: they are written one after the other, never joined.

        A kept-alive connection that the server closed just as the request went out (no
        byte of an answer came back) is replaced once by a new one, as browsers and
        urllib3 do; any other failure raises a :class:`TransportError`.
        """
        pieces = _pieces(body)
        head = self._head(method, target, headers, pieces)
        while self._idle:
            connection = self._idle.pop()
            if not connection.looks_alive(self.ssl_context is not None):
                connection.close()
                continue
            try:
                return self._exchange(connection, method, head, pieces)
            except _StaleConnection:
                break  # the server dropped it meanwhile: one more try on a new connection
        connection = self._connect()
        try:
            return self._exchange(connection, method, head, pieces)
        except _StaleConnection as exc:
            cause = exc.__cause__
            raise RemoteProtocolError(
                f"the connection to {self.host_header} ended before an answer"
                + (f": {cause!r}" if cause is not None else "")
            ) from cause

    def close(self) -> None:
        """Close the idle connection."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    # -- inside ------------------------------------------------------------------------------

    def _head(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        pieces: list[bytes] | None,
    ) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        has_length = False
        for name, value in headers:
            if name.lower() == "content-length":
                has_length = True
            lines.append(f"{name}: {value}")
        if pieces is not None and not has_length:
            lines.append(f"Content-Length: {sum(map(len, pieces))}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("latin-1")

    def _connect(self) -> _Connection:
        sock: socket.socket | None = None
        try:
            sock = socket.create_connection((self.name, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self.name)
        except TimeoutError as exc:
            if sock is not None:
                sock.close()
            raise ConnectTimeout(
                f"no connection to {self.host_header} within {self.timeout} s"
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            if sock is not None:
                sock.close()
            raise ConnectError(f"cannot connect to {self.host_header}: {exc}") from exc
        self.connections_opened += 1
        return _Connection(sock)

    def _exchange(
        self,
        connection: _Connection,
        method: str,
        head: bytes,
        pieces: list[bytes] | None,
    ) -> HTTPResponse:
        connection.answering = False
        connection.deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            self._send(connection, head, pieces)
            response, reusable = self._read_answer(connection, method)
        except TimeoutError as exc:
            connection.close()
            raise ReadTimeout(
                f"{self.host_header} did not "
                f"{'finish its answer' if connection.answering else 'answer'} "
                f"within {self.timeout} s"
            ) from exc
        except BaseException:
            connection.close()
            raise
        if reusable:
            self._idle.append(connection)
        else:
            connection.close()
        return response

    def _send(self, connection: _Connection, head: bytes, pieces: list[bytes] | None) -> None:
        try:
            if not pieces:
                connection.send(head)
                return
            # The head goes with the first piece: on loopback each write also wakes the
            # server, and a write of the head alone cost as much as a 16 KiB piece.
            connection.send(head + pieces[0])
            for piece in pieces[1:]:
                connection.send(piece)
        except TimeoutError:
            raise
        except (OSError, ssl.SSLError) as exc:
            raise _StaleConnection from exc

    def _read_answer(self, connection: _Connection, method: str) -> tuple[HTTPResponse, bool]:
        """Read one final answer; return it and whether the connection may be kept."""
        while True:
            status, reason, version, headers = self._read_head(connection)
            connection.answering = True
            if status >= 200:
                break  # 1xx answers are interim (100 Continue, 103 Early Hints): skip them
        values = {name.lower(): value for name, value in headers}
        close = values.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        if method == "HEAD" or status in (204, 304):
            content = b""
        elif "chunked" in values.get("transfer-encoding", "").lower():
            content = self._read_chunked(connection)
        elif "content-length" in values:
            try:
                length = int(values["content-length"])
            except ValueError:
                raise RemoteProtocolError(
                    f"the answer's Content-Length is not a number: {values['content-length']!r}"
                ) from None
            content = self._read_exactly(connection, length)
        else:
            content = self._read_to_end(connection)
            close = True
        response = HTTPResponse(status, reason, tuple(headers), content)
        return response, not close and not connection.buffer

    def _read_head(self, connection: _Connection) -> tuple[int, str, str, list[tuple[str, str]]]:
        buffer = connection.buffer
        first = not buffer and not connection.answering  # not a byte of an answer yet
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buffer) > _MAX_HEAD:
                raise RemoteProtocolError("the answer's headers are longer than 64 KiB")
            try:
                data = connection.receive()
            except NetworkError as exc:
                if first:  # reset before a byte of an answer: as below
                    raise _StaleConnection from exc
                raise
            if not data:
                if first:
                    # not a byte of an answer: on a reused connection the server had
                    # closed it; the caller may try once more on a new one
                    raise _StaleConnection
                raise RemoteProtocolError("the server closed the connection inside its answer")
            first = False
            buffer += data
        head, connection.buffer = buffer[:end], buffer[end + 4 :]
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise RemoteProtocolError(f"the server's answer is not HTTP/1.x: {lines[0][:80]!r}")
        if len(lines) > _MAX_HEADERS + 1:
            raise RemoteProtocolError(f"the answer has more than {_MAX_HEADERS} headers")
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise RemoteProtocolError(
                    f"a header line of the answer is malformed: {line[:80]!r}"
                )
            headers.append((name, value.strip()))
        return int(parts[1]), parts[2] if len(parts) > 2 else "", parts[0], headers

    def _read_exactly(self, connection: _Connection, length: int) -> bytes:
        if length > _MAX_BODY:
            raise RemoteProtocolError(f"the answer's body is too large ({length} bytes)")
        chunks = [connection.buffer]
        have = len(connection.buffer)
        while have < length:
            data = connection.receive()
            if not data:
                raise RemoteProtocolError(
                    f"the server closed the connection after {have} of {length} bytes"
                )
            chunks.append(data)
            have += len(data)
        content = b"".join(chunks)
        connection.buffer = content[length:]
        return content[:length]

    def _read_line(self, connection: _Connection) -> bytes:
        while True:
            end = connection.buffer.find(b"\r\n")
            if end >= 0:
                line, connection.buffer = connection.buffer[:end], connection.buffer[end + 2 :]
                return line
            if len(connection.buffer) > _MAX_HEAD:
                raise RemoteProtocolError("a chunk header of the answer is too long")
            data = connection.receive()
            if not data:
                raise RemoteProtocolError("the server closed the connection inside a chunk")
            connection.buffer += data

    def _read_chunked(self, connection: _Connection) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_text = (self._read_line(connection)).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise RemoteProtocolError(
                    f"a chunk size of the answer is not hex: {size_text!r}"
                ) from None
            if size == 0:
                while self._read_line(connection):  # trailers, up to the empty line
                    pass
                return b"".join(chunks)
            total += size
            chunks.append(self._read_exactly(connection, size))
            if self._read_line(connection):
                raise RemoteProtocolError("a chunk of the answer is longer than it said")
            if total > _MAX_BODY:
                raise RemoteProtocolError("the answer's body is too large")

    def _read_to_end(self, connection: _Connection) -> bytes:
        chunks = [connection.buffer]
        connection.buffer = b""
        total = len(chunks[0])
        while data := connection.receive():
            chunks.append(data)
            total += len(data)
            if total > _MAX_BODY:
                raise RemoteProtocolError("the answer's body is too large")
        return b"".join(chunks)


def _pieces(body: bytes | Sequence[bytes] | None) -> list[bytes] | None:
    """The body as the list of pieces it is written in (one piece for plain bytes)."""
    if body is None:
        return None
    return [body] if isinstance(body, bytes) else list(body)


class _StaleConnection(Exception):
    """The connection ended before any byte of an answer (internal: maybe retried)."""


def check_header(name: str, value: str) -> None:
    """Refuse header names and values that would break the request head (CR, LF, NUL)."""
    if not name or any(c in name for c in "\r\n\0: \t") or any(c in value for c in "\r\n\0"):
        raise ValueError(
            f"header {name!r}: {value!r} cannot be sent: names need letters without spaces "
            f"or ':', and neither may contain a line break"
        )


def check_target(target: str) -> None:
    """Refuse a request target that is not printable ASCII (as http.client does)."""
    if not target.isascii() or any(c <= " " or c == "\x7f" for c in target):
        raise ValueError(
            f"url {target!r} must be printable ASCII without spaces; quote it first "
            f"(urllib.parse.quote)"
        )
