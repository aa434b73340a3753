"""HTTPHandler's default transport (h11 over one kept-alive socket), against a scripted server.

The recording aiohttp server (tests/servers/http.py) always answers well. These cases need
answers a well-behaved framework does not give on demand: chunked and unframed bodies, an
interim 100, a server that closes a kept-alive connection, one that never answers, one
that answers garbage or without end. A plain TCP server on the test's loop reads each
request and writes scripted bytes; the blocking transport runs in a worker thread, as it
does in the sink.
"""

from __future__ import annotations

import select
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.to_thread
import pytest

from loopsink.handlers._http_transport import (
    ConnectError,
    H11Transport,
    ReadTimeout,
    RemoteProtocolError,
    Request,
    Response,
    check_header,
    check_target,
    split_host,
)

pytestmark = pytest.mark.timeout(20)

T = TypeVar("T")


@dataclass
class Script:
    """What the server answers, request after request, and what it saw."""

    answers: list[bytes] = field(default_factory=list)
    #: after these answers (0-based request numbers) the server closes the connection
    close_after: set[int] = field(default_factory=set)
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    hang: bool = False  # read requests, never answer
    #: after an answer's head, send this chunk again and again until the client leaves
    endless: bytes = b""


async def _read_request(stream: anyio.abc.ByteStream, buffer: bytes) -> tuple[bytes, bytes]:
    while b"\r\n\r\n" not in buffer:
        buffer += await stream.receive()
    head, _, rest = buffer.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += await stream.receive()
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[str, Script]]:
    script = Script()

    async def serve(stream: anyio.abc.SocketStream) -> None:
        script.connections += 1
        buffer = b""
        async with stream:
            try:
                while True:
                    request, buffer = await _read_request(stream, buffer)
                    number = len(script.requests)
                    script.requests.append(request)
                    if script.hang:
                        await anyio.sleep_forever()
                    await stream.send(script.answers[number])
                    while script.endless:
                        await stream.send(script.endless)
                    if number in script.close_after:
                        return
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        yield f"127.0.0.1:{port}", script
        tg.cancel_scope.cancel()


async def call(func: Callable[..., T], *args: Any) -> T:
    """Run the blocking transport in a worker thread, as the sink's own thread does."""
    return await anyio.to_thread.run_sync(func, *args)


def transport(host: str, timeout: float = 5) -> H11Transport:
    return H11Transport(host, ssl_context=None, timeout=timeout)


async def send(
    pool: H11Transport,
    method: str = "GET",
    target: str = "/",
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    limit: int = 1024 * 1024,
) -> Response:
    headers = list(headers or [])
    if body is not None:
        headers.append(("Content-Length", str(len(body))))
    request = Request(method, target, headers, None if body is None else [body])
    return await anyio.to_thread.run_sync(lambda: pool.send(request, limit=limit))


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_request_head_and_body_on_the_wire(scripted: tuple[str, Script]) -> None:
    host, script = scripted
    script.answers = [OK]
    pool = transport(host)
    response = await send(pool, "POST", "/log?a=1", [("Content-type", "text/plain")], b"hi")
    pool.close()
    assert (response.status_code, response.reason_phrase, response.content) == (200, "OK", b"ok")
    assert script.requests == [
        f"POST /log?a=1 HTTP/1.1\r\nHost: {host}\r\nContent-type: text/plain\r\n"
        f"Content-Length: 2\r\n\r\nhi".encode()
    ]


async def test_keep_alive_reuses_one_connection(scripted: tuple[str, Script]) -> None:
    host, script = scripted
    script.answers = [OK] * 5
    pool = transport(host)
    for _ in range(5):
        assert (await send(pool)).status_code == 200
    pool.close()
    assert script.connections == 1
    assert pool.connections_opened == 1


async def test_chunked_and_unframed_bodies(scripted: tuple[str, Script]) -> None:
    host, script = scripted
    script.answers = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
    ]
    script.close_after = {2}
    pool = transport(host)
    assert (await send(pool)).content == b"hello world"
    assert (await send(pool)).status_code == 201
    last = await send(pool)
    pool.close()
    assert last.content == b"until the end"
    assert script.connections == 1


async def test_a_connection_closed_while_idle_is_replaced(scripted: tuple[str, Script]) -> None:
    host, script = scripted
    script.answers = [OK, OK]
    script.close_after = {0}  # the server closes after its first answer, without saying so
    pool = transport(host)
    assert (await send(pool)).status_code == 200
    with anyio.fail_after(5):
        while script.connections == 1 and pool._idle and pool._idle.looks_alive(False):
            await anyio.sleep(0.001)  # until the close has reached this side
    assert (await send(pool)).status_code == 200
    pool.close()
    assert script.connections == 2
    assert len(script.requests) == 2  # nothing sent twice


async def test_a_connection_that_ends_after_an_interim_answer_is_not_retried(
    scripted: tuple[str, Script],
) -> None:
    """After a 100 Continue the server has the request: sending it again could log twice."""
    host, script = scripted
    script.answers = [OK, b"HTTP/1.1 100 Continue\r\n\r\n"]
    script.close_after = {1}
    pool = transport(host)
    assert (await send(pool)).status_code == 200
    with pytest.raises(RemoteProtocolError, match=r"closed the connection inside its answer"):
        await send(pool, "POST", body=b"once")
    pool.close()
    assert len(script.requests) == 2


async def test_a_server_that_never_answers_times_out(scripted: tuple[str, Script]) -> None:
    host, script = scripted
    script.hang = True
    pool = transport(host, 0.2)
    with pytest.raises(ReadTimeout, match=r"did not answer within 0\.2 s$"):
        await send(pool)
    pool.close()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"SMTP ready\r\n\r\n", r"is not valid HTTP/1\.1: illegal status line"),
        (b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n", r"is not valid HTTP/1\.1: illegal header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", r"not valid HTTP/1\.1: .*Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", r"received 5 bytes, expected 9"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", r"illegal chunk header"),
        (b"HTTP/1.1 200 OK\r\n", r"closed the connection inside its answer"),
    ],
)
async def test_malformed_answers_are_protocol_errors(
    scripted: tuple[str, Script], answer: bytes, message: str
) -> None:
    host, script = scripted
    script.answers = [answer]
    script.close_after = {0}
    pool = transport(host)
    with pytest.raises(RemoteProtocolError, match=message):
        await send(pool)
    pool.close()


async def test_a_server_that_closes_without_answering(scripted: tuple[str, Script]) -> None:
    host, script = scripted
    script.answers = [b""]
    script.close_after = {0}
    pool = transport(host)
    with pytest.raises(RemoteProtocolError, match=r"^the connection to .* ended before an answer"):
        await send(pool)
    pool.close()


async def test_refused_connection_is_a_connect_error() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there now
    pool = transport(f"127.0.0.1:{port}")
    with pytest.raises(ConnectError, match=rf"^cannot connect to 127\.0\.0\.1:{port}: "):
        await send(pool)


def test_host_and_port_are_split_as_http_client_does() -> None:
    assert split_host("example.com", 80) == ("example.com", 80)
    assert split_host("example.com:8080", 80) == ("example.com", 8080)
    assert split_host("[::1]:9000", 443) == ("::1", 9000)
    assert split_host("[::1]", 443) == ("::1", 443)
    assert split_host("example.com:", 80) == ("example.com", 80)
    with pytest.raises(ValueError, match=r"^the port in host 'h:x' must be a number"):
        split_host("h:x", 80)
    with pytest.raises(ValueError, match=r"^host ':80' names no server"):
        split_host(":80", 80)
    assert transport("h:80").host_header == "h"
    assert transport("[::1]:81").host_header == "[::1]:81"


def test_header_and_target_injection_is_refused() -> None:
    check_header("X-Api-Key", "k1")
    with pytest.raises(ValueError, match=r"cannot be sent"):
        check_header("X-Evil", "v\r\nHost: elsewhere")
    with pytest.raises(ValueError, match=r"cannot be sent"):
        check_header("Bad Name", "v")
    check_target("/log?a=1&b=%20")
    with pytest.raises(ValueError, match=r"must be printable ASCII without spaces"):
        check_target("/log HTTP/1.0\r\nX: y")


CHUNK = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"


async def test_an_endless_2xx_body_is_cut_at_the_limit(scripted: tuple[str, Script]) -> None:
    """A hostile server's answer that never ends costs the limit, not all memory."""
    host, script = scripted
    script.answers = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
    script.endless = CHUNK
    pool = transport(host)
    with pytest.raises(
        RemoteProtocolError, match=r"\(200\) has a body longer than 100000 bytes; the connection"
    ):
        await send(pool, limit=100_000)
    assert pool._idle is None  # that connection is not kept
    pool.close()


async def test_an_endless_error_body_is_truncated_and_the_connection_dropped(
    scripted: tuple[str, Script],
) -> None:
    host, script = scripted
    script.answers = [b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n"]
    script.endless = CHUNK
    pool = transport(host)
    response = await send(pool, limit=10 * 1024 * 1024)
    assert (response.status_code, response.reason_phrase, response.truncated) == (
        500,
        "Oops",
        True,
    )
    assert len(response.content) <= 64 * 1024  # an error's body only feeds a message
    assert pool._idle is None
    pool.close()


async def test_keep_alive_needs_no_poll(
    scripted: tuple[str, Script], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows has no select.poll: the idle check must not need it."""
    monkeypatch.delattr(select, "poll", raising=False)
    host, script = scripted
    script.answers = [OK, OK, OK]
    script.close_after = {1}
    pool = transport(host)
    assert (await send(pool)).status_code == 200
    assert (await send(pool)).status_code == 200
    assert pool._idle is not None
    with anyio.fail_after(5):
        while pool._idle.looks_alive(False):
            await anyio.sleep(0.001)  # until the server's close has reached this side
    assert (await send(pool)).status_code == 200
    pool.close()
    assert script.connections == 2
    assert len(script.requests) == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X(1)", "v"),
        ("X-Key", "a\x01b"),
        ("", "v"),
        ("X-Key", "a\x7fb"),
        ("Ä", "v"),
        ("X-Key", " v"),
        ("X-Key", "€"),
    ],
)
def test_what_h11_would_refuse_is_refused_at_construction(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=r"cannot be sent"):
        check_header(name, value)
    import loopsink

    with pytest.raises(ValueError, match=r"cannot be sent"):
        loopsink.HTTPHandler("h", "/log", headers={name: value})
