"""``HTTPHandler(..., client=httpx.Client(...))``: requests through the user's own client.

What only a full client gives, each against a real counterpart: a real proxy on loopback
(explicit and from the environment, plain and CONNECT), HTTP/2 against hypercorn over TLS,
mTLS with trustme certificates, event hooks, and ``httpx.MockTransport`` used the way a
user would in their own tests.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Iterator

import anyio
import httpx
import pytest
import trustme

import loopsink
from loopsink import HTTPHandler
from servers.h2 import H2Server
from servers.http import HTTPServer
from servers.proxy import ProxyServer

pytestmark = pytest.mark.timeout(30)


def records(count: int, name: str = "app") -> list[logging.LogRecord]:
    return [
        logging.LogRecord(name, logging.INFO, __file__, i, "record %d", (i,), None)
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    with HTTPServer() as running:
        yield running


@pytest.fixture
def proxy() -> Iterator[ProxyServer]:
    with ProxyServer() as running:
        yield running


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


# -- MockTransport, as a user tests their own logging --------------------------------------


class Collector:
    """What a user's MockTransport handler might look like: keep requests, answer 200."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return httpx.Response(200)


async def test_records_reach_a_mock_transport() -> None:
    collector = Collector()
    hooked: list[str] = []
    client = httpx.Client(
        transport=httpx.MockTransport(collector),
        event_hooks={"request": [lambda request: hooked.append(str(request.url))]},
    )
    sink = HTTPHandler("logs.example", "/ingest", "POST", body="ndjson", client=client)
    async with loopsink.LogQueue(sink) as queue:
        for record in records(25):
            queue.put(record)
    client.close()
    assert sink.error_count == 0
    lines = [json.loads(line) for r in collector.requests for line in r.content.splitlines()]
    assert [line["msg"] for line in lines] == ["record %d"] * 25
    assert [line["lineno"] for line in lines] == list(range(25))
    request = collector.requests[0]
    assert str(request.url) == "http://logs.example/ingest"
    assert request.headers["Content-Type"] == "application/x-ndjson"
    assert request.headers["Content-Length"] == str(len(request.content))
    assert "Transfer-Encoding" not in request.headers
    assert hooked == ["http://logs.example/ingest"] * len(collector.requests)


async def test_the_stdlib_form_body_through_a_client() -> None:
    collector = Collector()
    client = httpx.Client(transport=httpx.MockTransport(collector))
    record = logging.LogRecord("app", logging.WARNING, "/app.py", 3, "hi %s", ("you",), None)
    async with HTTPHandler("logs.example:8080", "/log?src=x", client=client) as sink:
        assert await sink.handle(record)
    client.close()
    (request,) = collector.requests
    assert request.method == "GET"
    assert request.url.raw_path.startswith(b"/log?src=x&name=app&msg=hi+%25s&args=%28%27you")
    assert request.content == b""


async def test_a_preset_takes_a_client() -> None:
    collector = Collector()
    client = httpx.Client(transport=httpx.MockTransport(collector))
    sink = HTTPHandler.loki("loki.example:3100", labels={"app": "shop"}, client=client)
    async with loopsink.LogQueue(sink) as queue:
        for record in records(3):
            queue.put(record)
    client.close()
    (request,) = collector.requests
    assert str(request.url) == "http://loki.example:3100/loki/api/v1/push"
    (stream,) = json.loads(request.content)["streams"]
    assert stream["stream"] == {"app": "shop", "level": "info"}
    assert [line for _, line in stream["values"]] == ["record 0", "record 1", "record 2"]


async def test_a_client_error_answer_is_reported_with_its_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(413, text="big")))
    async with HTTPHandler("logs.example", "/log", "POST", client=client, retries=2) as sink:
        await sink.handle(records(1)[0])
    client.close()
    assert sink.error_count == 1
    assert sink.request_count == 1
    assert (
        "POST http://logs.example/log failed: the server answered 413 Request Entity Too Large: "
        "big (not retried: a 413 means the server refuses the request itself)"
    ) in capsys.readouterr().err


async def test_a_client_transport_error_is_retried_then_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route", request=request)

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    async with HTTPHandler(
        "logs.example", "/log", "POST", client=client, retries=1, retry_backoff=0
    ) as sink:
        await sink.handle(records(1)[0])
    client.close()
    assert (sink.error_count, sink.request_count, sink.retry_count) == (1, 2, 1)
    assert (
        "failed after 2 attempts: ConnectError: cannot connect to http://logs.example: no route"
    ) in capsys.readouterr().err


def test_client_misuse_fails_at_construction() -> None:
    with pytest.raises(
        TypeError,
        match=r"^client must be an httpx\.Client, got an httpx\.AsyncClient: the sink makes its "
        r"requests from a thread of its own, so pass httpx\.Client\(\.\.\.\) configured the "
        r"same way$",
    ):
        HTTPHandler("h", "/log", client=httpx.AsyncClient())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^client must be an httpx\.Client, got 'yes'$"):
        HTTPHandler("h", "/log", client="yes")  # type: ignore[arg-type]
    with (
        httpx.Client() as client,
        pytest.raises(
            ValueError,
            match=r"^context= and client= both configure TLS: pass the context to the client "
            r"instead, httpx\.Client\(verify=context\)$",
        ),
    ):
        HTTPHandler("h", "/log", secure=True, context=ssl.create_default_context(), client=client)


# -- a real proxy ---------------------------------------------------------------------------


async def test_through_an_explicit_proxy(server: HTTPServer, proxy: ProxyServer) -> None:
    client = httpx.Client(proxy=proxy.url)
    sink = HTTPHandler(server.host, "/bulk", "POST", body="json", client=client)
    async with loopsink.LogQueue(sink) as queue:
        for record in records(10):
            queue.put(record)
    client.close()
    assert sink.error_count == 0
    assert proxy.requests == [f"POST http://{server.host}/bulk HTTP/1.1"]
    (request,) = server.delivered()
    assert [item["lineno"] for item in json.loads(request.body)] == list(range(10))


async def test_proxy_from_the_environment(
    server: HTTPServer, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    client = httpx.Client()  # trust_env: HTTP_PROXY applies, as for any httpx user
    async with HTTPHandler(server.host, "/log", "POST", client=client) as sink:
        await sink.handle(records(1)[0])
    client.close()
    assert sink.error_count == 0
    assert proxy.requests == [f"POST http://{server.host}/log HTTP/1.1"]
    assert len(server.delivered()) == 1


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[HTTPServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with HTTPServer(ssl_context=context) as running:
        yield running


async def test_https_through_a_connect_proxy(
    tls_server: HTTPServer, proxy: ProxyServer, ca: trustme.CA
) -> None:
    client = httpx.Client(proxy=proxy.url, verify=trusting(ca))
    async with HTTPHandler(tls_server.host, "/log", "POST", secure=True, client=client) as sink:
        await sink.handle(records(1)[0])
    client.close()
    assert sink.error_count == 0
    assert proxy.requests == [f"CONNECT {tls_server.host} HTTP/1.1"]
    assert len(tls_server.delivered()) == 1


# -- mTLS -----------------------------------------------------------------------------------


@pytest.fixture
def mtls_server(ca: trustme.CA) -> Iterator[HTTPServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    context.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no connection
    ca.configure_trust(context)
    with HTTPServer(ssl_context=context) as running:
        yield running


async def test_mutual_tls_with_a_client_certificate(
    mtls_server: HTTPServer, ca: trustme.CA, capsys: pytest.CaptureFixture[str]
) -> None:
    anonymous = httpx.Client(verify=trusting(ca))
    async with HTTPHandler(mtls_server.host, "/log", "POST", True, client=anonymous) as sink:
        await sink.handle(records(1)[0])
    anonymous.close()
    assert sink.error_count == 1  # the server wants a certificate
    capsys.readouterr()

    context = trusting(ca)
    ca.issue_cert("client@example.com").configure_cert(context)
    client = httpx.Client(verify=context)
    async with HTTPHandler(mtls_server.host, "/log", "POST", True, client=client) as sink:
        await sink.handle(records(1)[0])
    client.close()
    assert sink.error_count == 0
    assert len(mtls_server.delivered()) == 1


# -- HTTP/2 ---------------------------------------------------------------------------------


@pytest.fixture
def h2_server(ca: trustme.CA) -> Iterator[H2Server]:
    with H2Server(ca) as running:
        yield running


async def test_http2_against_hypercorn(h2_server: H2Server, ca: trustme.CA) -> None:
    client = httpx.Client(http2=True, verify=trusting(ca))
    sink = HTTPHandler(
        h2_server.host, "/bulk", "POST", secure=True, body="ndjson", batch_size=50, client=client
    )
    async with loopsink.LogQueue(sink) as queue:
        for record in records(120):
            queue.put(record)
    client.close()
    received = await anyio.to_thread.run_sync(h2_server.wait_for, 3)
    assert sink.error_count == 0
    assert {r.http_version for r in received} == {"2"}
    lines = [json.loads(line) for r in received for line in r.body.splitlines()]
    assert [line["lineno"] for line in lines] == list(range(120))
    assert received[0].headers["content-type"] == "application/x-ndjson"
