"""How ``HTTPHandler`` gets a request to the server and its answer back: the transports.

The handler builds a :class:`Request` (method, target, its own headers, a body in pieces)
and hands it to a :class:`Transport` in the sink's thread; the transport frames it, sends
it and reads the answer into a :class:`Response`. Two transports implement that interface:

- :class:`H11Transport`, the default: h11, the sans-I/O HTTP/1.1 engine under httpx, driven
  over one blocking socket that is kept alive between requests. h11 writes the request head
  and parses the answer (status line, headers, ``Content-Length``, chunked and until-close
  bodies, interim 1xx answers); this module only moves bytes, keeps time and decides when a
  connection may be reused. A full client costs each request several times the CPU of h11
  alone, and that CPU competes with the event loop for the GIL.
- :class:`ClientTransport`: a user's ``httpx.Client``, for what only a full client does
  (proxies, HTTP/2, auth flows, mTLS, event hooks, ``MockTransport`` in tests).

Both are blocking: the sink runs them in a thread of its own, where waiting on a server
never wakes the loop. Both bound what an answer may cost: a transport keeps at most
``limit`` bytes of a body and closes a connection rather than drain more, so a hostile
server answering with an endless body costs a fixed amount of memory. Failures are the
:class:`TransportError` family (``OSError`` subclasses), so the sink reports them like any
I/O failure.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ._connection import PeerState, peek_peer

if TYPE_CHECKING:
    import h11
    import httpx

__all__ = [
    "ClientTransport",
    "ConnectError",
    "ConnectTimeout",
    "H11Transport",
    "NetworkError",
    "ReadTimeout",
    "RemoteProtocolError",
    "Request",
    "Response",
    "Transport",
    "TransportError",
    "check_header",
    "check_target",
    "split_host",
]

#: How much one read asks of the socket.
_READ_SIZE = 64 * 1024

#: Whether this platform's sockets write several buffers in one call (not Windows'): a
#: request's pieces then go out in one ``sendmsg`` (bench row: the HTTP sink's CPU per
#: record, and the test at 10,000 records/s in a busy app).
_GATHER = hasattr(socket.socket, "sendmsg")
#: The most buffers in one ``sendmsg``: below every platform's IOV_MAX.
_GATHER_MAX = 512

#: The most bytes of an answer other than 2xx kept (its start is for an error message).
FAILURE_LIMIT = 64 * 1024


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
class Request:
    """One request as the handler sees it.

    ``headers`` are the handler's (content type, authorization, the user's own); the
    transport adds the framing ones. ``body`` is a sequence of pieces, written one after
    the other and never joined; a sequence rather than an iterator so that a request the
    server dropped unanswered can go out once more.
    """

    method: str
    target: str
    headers: Sequence[tuple[str, str]]
    body: Sequence[bytes] | None = None

    @property
    def length(self) -> int:
        """The body's length in bytes."""
        return sum(map(len, self.body)) if self.body is not None else 0


@dataclass(frozen=True)
class Response:
    """An answer: status, reason, headers (in order, as sent) and at most ``limit`` bytes
    of its body (``truncated`` says there was more)."""

    status_code: int
    reason_phrase: str
    headers: tuple[tuple[str, str], ...]
    content: bytes
    truncated: bool = False

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


class Transport(Protocol):
    """What the handler needs of a transport. Called from one thread at a time."""

    @property
    def connections_opened(self) -> int:
        """Connections opened so far (``0`` when a client's pool hides them)."""
        ...

    def send(self, request: Request, *, limit: int) -> Response:
        """Send ``request``, read its answer keeping at most ``limit`` bytes of the body.

        A 2xx answer with a longer body raises :class:`RemoteProtocolError`; any other
        answer is returned with at most :data:`FAILURE_LIMIT` bytes of its body
        (``truncated`` when there was more). Failures raise :class:`TransportError`.
        """
        ...

    def close(self) -> None:
        """Let go of the connections this transport opened."""
        ...


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


#: RFC 9110's token (a header name) and field-value: what h11 will put on the wire.
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")


def check_header(name: str, value: str) -> None:
    """Refuse header names and values that h11 would refuse to send (a line break, a
    control character, a name that is not a token): at construction, not at each request."""
    try:
        value.encode("latin-1")  # as http.client encodes header values
        latin = True
    except UnicodeEncodeError:
        latin = False
    if (
        not _TOKEN.fullmatch(name)
        or not _FIELD_VALUE.fullmatch(value)
        or value != value.strip(" \t")
        or not latin
    ):
        raise ValueError(
            f"header {name!r}: {value!r} cannot be sent: a name is letters, digits and "
            f"!#$%&'*+-.^_`|~ only (no spaces or ':'); a value is Latin-1 text without line "
            f"breaks, other control characters, or spaces at either end"
        )


def check_target(target: str) -> None:
    """Refuse a request target that is not printable ASCII (as http.client does)."""
    if not target.isascii() or any(c <= " " or c == "\x7f" for c in target):
        raise ValueError(
            f"url {target!r} must be printable ASCII without spaces; quote it first "
            f"(urllib.parse.quote)"
        )


class _Stale(Exception):
    """The connection ended before any byte of an answer (internal: maybe retried)."""


def _send_gathered(connection: _Connection, buffers: list[bytes]) -> None:
    """Write every buffer, in order, with as few ``sendmsg`` calls as the socket takes."""
    sock = connection.socket
    views = [memoryview(buffer) for buffer in buffers if buffer]
    start = 0
    while start < len(views):
        connection.arm()
        sent = sock.sendmsg(views[start : start + _GATHER_MAX])
        while sent:  # skip what went out; cut the buffer it stopped inside
            size = len(views[start])
            if sent < size:
                views[start] = views[start][sent:]
                break
            sent -= size
            start += 1


class _Connection:
    """One open socket, its h11 state machine, and the current exchange's deadline."""

    __slots__ = ("answered", "deadline", "h11", "socket")

    def __init__(self, sock: socket.socket, machine: h11.Connection) -> None:
        self.socket = sock
        self.h11 = machine
        self.deadline: float | None = None
        self.answered = False  # a byte of the current answer has arrived

    def arm(self) -> None:
        """Give the next socket call what is left of the exchange's time."""
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.socket.settimeout(left)
        else:
            self.socket.settimeout(None)

    def looks_alive(self, tls: bool) -> bool:
        """False if the server closed the idle connection, reset it, or wrote to it.

        A non-blocking look, portable to every platform (no ``poll``): a plain socket is
        peeked at; over TLS the read consumes what arrived, which on an idle connection may
        only be a TLS 1.3 session ticket (no application data: the read wants more) and is
        otherwise a farewell or bytes nobody asked for (see :func:`peek_peer`).
        """
        sock = self.socket
        if sock.fileno() < 0:
            return False
        try:
            sock.setblocking(False)
            return peek_peer(sock, tls=tls) is PeerState.ALIVE
        except (OSError, ValueError):
            return False
        finally:
            if sock.fileno() >= 0:
                sock.setblocking(True)

    def close(self) -> None:
        try:
            self.socket.close()
        except OSError:
            pass


class H11Transport:
    """HTTP/1.1 with h11 over one kept-alive connection to one server.

    The request head carries ``Host`` (as ``http.client`` writes it: the port only when it
    is not the default), then ``extra_headers``, then the request's own headers, and
    ``Content-Length`` must be among them when there is a body (the handler computes it).

    A kept-alive connection that the server closed or reset just as the request went out
    (no byte of an answer came back) is replaced once by a new one, as browsers and urllib3
    do. Once any byte of an answer arrived (an interim ``100 Continue`` included), the
    server has the request: a close is then an error, never a reason to send it again.

    Args:
        host: ``"name"`` or ``"name:port"``.
        ssl_context: TLS with this context (it verifies the server as configured), or
            ``None`` for plain HTTP.
        timeout: seconds to connect (with the TLS handshake), then seconds to send the
            request and read the whole answer; ``None`` waits forever.
        extra_headers: sent with every request, right after ``Host``.
    """

    def __init__(
        self,
        host: str,
        *,
        ssl_context: ssl.SSLContext | None,
        timeout: float | None,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        import h11  # the http extra's; checked by the handler at construction

        self._h11 = h11
        default_port = 443 if ssl_context is not None else 80
        self.name, self.port = split_host(host, default_port)
        self.ssl_context = ssl_context
        self.timeout = timeout
        shown = f"[{self.name}]" if ":" in self.name else self.name
        #: the Host header, as http.client writes it
        self.host_header = shown if self.port == default_port else f"{shown}:{self.port}"
        self._head = (("Host", self.host_header), *extra_headers)
        self._idle: _Connection | None = None
        self._opened = 0

    @property
    def connections_opened(self) -> int:
        return self._opened

    def send(self, request: Request, *, limit: int) -> Response:
        connection, self._idle = self._idle, None
        if connection is not None:
            if connection.looks_alive(self.ssl_context is not None):
                try:
                    return self._exchange(connection, request, limit)
                except _Stale:
                    pass  # the server dropped it meanwhile: one more try on a new connection
            else:
                connection.close()
        connection = self._connect()
        try:
            return self._exchange(connection, request, limit)
        except _Stale as exc:
            cause = exc.__cause__
            raise RemoteProtocolError(
                f"the connection to {self.host_header} ended before an answer"
                + (f": {cause!r}" if cause is not None else "")
            ) from cause

    def close(self) -> None:
        connection, self._idle = self._idle, None
        if connection is not None:
            connection.close()

    # -- inside ------------------------------------------------------------------------------

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
        self._opened += 1
        return _Connection(sock, self._h11.Connection(self._h11.CLIENT))

    def _exchange(self, connection: _Connection, request: Request, limit: int) -> Response:
        h11 = self._h11
        connection.answered = False
        connection.deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            self._write(connection, request)
            response, reusable = self._read(connection, limit)
        except TimeoutError as exc:
            connection.close()
            raise ReadTimeout(
                f"{self.host_header} did not "
                f"{'finish its answer' if connection.answered else 'answer'} "
                f"within {self.timeout} s"
            ) from exc
        except h11.RemoteProtocolError as exc:
            connection.close()
            raise RemoteProtocolError(
                f"the answer of {self.host_header} is not valid HTTP/1.1: {exc}"
            ) from None  # h11's traceback says nothing more, and holds its buffers
        except h11.LocalProtocolError as exc:
            connection.close()
            raise TransportError(f"the request could not be framed: {exc}") from None
        except BaseException:
            connection.close()
            raise
        if reusable:
            connection.h11.start_next_cycle()
            self._idle = connection
        else:
            connection.close()
        return response

    def _write(self, connection: _Connection, request: Request) -> None:
        h11 = self._h11
        machine = connection.h11
        head = machine.send(
            h11.Request(
                method=request.method,
                target=request.target,
                headers=[
                    (name.encode("latin-1"), value.encode("latin-1"))  # as http.client does
                    for name, value in (*self._head, *request.headers)
                ],
            )
        )
        assert head is not None
        pieces = request.body or ()
        try:
            sock = connection.socket
            if not pieces:
                connection.arm()
                sock.sendall(head)
            elif _GATHER and not isinstance(sock, ssl.SSLSocket):
                # The head and every piece in one gathering write: the pieces stay apart
                # (never joined into one buffer), and the thread lets go of the GIL and
                # takes it back once per request instead of once per piece, which on a
                # busy loop's process costs up to a switch interval each time.
                out = [head]
                for piece in pieces:
                    out.extend(machine.send_with_data_passthrough(h11.Data(data=piece)) or ())
                _send_gathered(connection, out)
            else:
                for index, piece in enumerate(pieces):
                    data = machine.send_with_data_passthrough(h11.Data(data=piece)) or []
                    connection.arm()
                    if index == 0:
                        # The head goes with the first piece: on loopback each write also
                        # wakes the server, and a write of the head alone costs as much as
                        # a piece.
                        sock.sendall(b"".join([head, *data]))
                    else:
                        for chunk in data:
                            sock.sendall(chunk)
            machine.send(h11.EndOfMessage())
        except TimeoutError:
            raise
        except (OSError, ssl.SSLError) as exc:
            raise _Stale from exc

    def _receive(self, connection: _Connection) -> bytes:
        connection.arm()
        try:
            data = connection.socket.recv(_READ_SIZE)
        except TimeoutError:
            raise
        except ssl.SSLZeroReturnError:
            data = b""  # a TLS farewell: the end of the stream
        except (OSError, ssl.SSLError) as exc:
            if not connection.answered:
                raise _Stale from exc  # reset before a byte of an answer
            raise NetworkError(f"the connection broke while reading the answer: {exc!r}") from None
        if not connection.answered:
            if not data:
                raise _Stale  # closed before a byte of an answer
            connection.answered = True
        elif not data and connection.h11.their_state is self._h11.SEND_RESPONSE:
            # after an interim answer, or inside a head: the request arrived, so no retry
            raise RemoteProtocolError(f"{self.host_header} closed the connection inside its answer")
        return data

    def _next_event(self, connection: _Connection) -> Any:
        h11 = self._h11
        machine = connection.h11
        while True:
            event = machine.next_event()
            if event is not h11.NEED_DATA:
                return event
            machine.receive_data(self._receive(connection))

    def _read(self, connection: _Connection, limit: int) -> tuple[Response, bool]:
        """Read one final answer; return it and whether the connection may be kept."""
        h11 = self._h11
        while True:
            event = self._next_event(connection)
            if isinstance(event, h11.Response):
                break
            if not isinstance(event, h11.InformationalResponse):  # 100, 103: interim
                raise RemoteProtocolError(
                    f"{self.host_header} ended the connection inside its answer"
                )
        status = event.status_code
        headers = tuple(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in event.headers.raw_items()
        )
        reason = event.reason.decode("latin-1")
        if not 200 <= status < 300:
            limit = min(limit, FAILURE_LIMIT)
        chunks: list[bytes] = []
        size = 0
        truncated = False
        while True:
            event = self._next_event(connection)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    chunks.clear()  # free it now, not when the exception is collected
                    if 200 <= status < 300:
                        raise RemoteProtocolError(
                            f"the answer of {self.host_header} ({status}) has a body longer "
                            f"than {limit} bytes; the connection was closed"
                        )
                    truncated = True
                    break
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise RemoteProtocolError(
                    f"{self.host_header} closed the connection inside its answer"
                )
        reusable = (
            not truncated
            and connection.h11.our_state is h11.DONE
            and connection.h11.their_state is h11.DONE
        )
        content = b"".join(chunks)
        return Response(status, reason, headers, content, truncated), reusable


class ClientTransport:
    """Requests through a user's ``httpx.Client``: its proxies, HTTP version, auth, TLS,
    hooks and transport apply. The client stays the user's: :meth:`close` leaves it open.

    Args:
        client: the ``httpx.Client``.
        base: ``"http://host:port"`` or ``"https://host:port"``; each request's target is
            appended to it.
    """

    def __init__(self, client: httpx.Client, base: str) -> None:
        import httpx  # the user passed a client: httpx is installed

        self._httpx = httpx
        self.client = client
        self.base = base

    @property
    def connections_opened(self) -> int:
        return 0  # the client's pool owns its connections and does not count them

    def close(self) -> None:
        """Nothing to do: the client, and its connections, are the caller's."""

    def send(self, request: Request, *, limit: int) -> Response:
        httpx = self._httpx
        # A list, not a generator: httpx may read it twice (a retry of its own, an auth flow).
        content = list(request.body) if request.body is not None else None
        try:
            built = self.client.build_request(
                request.method,
                self.base + request.target,
                headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers],
                content=content,
            )
            response = self.client.send(built, stream=True)
        except httpx.ConnectTimeout as exc:
            raise ConnectTimeout(f"no connection to {self.base}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise ReadTimeout(f"{self.base} did not answer in time: {exc}") from exc
        except httpx.ConnectError as exc:
            raise ConnectError(f"cannot connect to {self.base}: {exc}") from exc
        except httpx.RemoteProtocolError as exc:
            raise RemoteProtocolError(f"the answer of {self.base} is not valid: {exc}") from exc
        except httpx.HTTPError as exc:
            raise NetworkError(f"the request to {self.base} failed: {exc}") from exc
        if not response.is_success:
            limit = min(limit, FAILURE_LIMIT)
        try:
            chunks: list[bytes] = []
            size = 0
            truncated = False
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    chunks.clear()
                    if response.is_success:
                        raise RemoteProtocolError(
                            f"the answer of {self.base} ({response.status_code}) has a body "
                            f"longer than {limit} bytes"
                        )
                    truncated = True
                    break
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise NetworkError(f"reading the answer of {self.base} failed: {exc}") from exc
        finally:
            response.close()  # a body not read to its end closes the connection
        return Response(
            response.status_code,
            response.reason_phrase,
            tuple(response.headers.multi_items()),
            b"".join(chunks),
            truncated,
        )
