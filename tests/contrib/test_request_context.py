"""Request ids, structlog's bound values and trace ids with real packages under real servers (#16).

Each test runs a real server (uvicorn or aiohttp) in the test's event loop, on a loopback
port, loads it with concurrent requests from httpx, and checks that every line a loopsink
sink wrote carries the values of the request that logged it. Before records were
context-correct, the sinks' filters and formatters ran in the queue worker's context and
wrote the default value ("-") instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import logging.config
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import structlog
import uvicorn
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.logging import LoggingInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from starlette.concurrency import run_in_threadpool

import loopsink
from loopsink.config import configured_bridges
from loopsink.contrib.fastapi import RequestIdMiddleware, lifespan
from servers.socket_receivers import StdlibReceiver

pytestmark = pytest.mark.slow


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    """uvicorn and aiohttp run on asyncio only."""
    return ("asyncio", {})


@pytest.fixture(autouse=True)
def _close_bridges() -> Iterator[None]:
    yield
    for item in configured_bridges():
        item.close()


def app_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


@asynccontextmanager
async def uvicorn_serving(app: Any) -> AsyncIterator[str]:
    """A real uvicorn server for ``app`` in this loop; yields its base URL.

    The socket listens before the server starts, so requests wait in its backlog until
    uvicorn, after the app's lifespan started, accepts them: no readiness polling.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    # The client keeps its connections alive for the whole load: uvicorn must not close one
    # that a slow stretch of the run left idle for its default 5 s while the client reuses
    # it (the request would fail with a ReadError that says nothing about logging).
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", timeout_keep_alive=120
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


#: load() keeps CLIENTS * PER_CLIENT requests in flight: one httpx pool scans all its
#: connections for every waiting request, and with one pool of 64 that scan, not the
#: server, took most of the run; clients of 8 connections each cost it little.
CLIENTS = 8
PER_CLIENT = 8


async def load(
    base: str,
    count: int,
    request: Callable[[httpx.AsyncClient, int], Awaitable[None]],
) -> None:
    """``count`` requests, CLIENTS * PER_CLIENT at a time, each made by ``request(client, n)``."""
    limits = httpx.Limits(max_connections=PER_CLIENT, max_keepalive_connections=PER_CLIENT)
    async with AsyncExitStack() as stack:
        pool = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base, timeout=30, limits=limits)
            )
            for _ in range(CLIENTS)
        ]
        slots = [anyio.Semaphore(PER_CLIENT) for _ in pool]

        async def one(n: int) -> None:
            async with slots[n % CLIENTS]:
                await request(pool[n % CLIENTS], n)

        async with anyio.create_task_group() as tg:
            for n in range(count):
                tg.start_soon(one, n)


def parsed(lines: list[str]) -> dict[str, list[str]]:
    """``"<id> <what> <n>"`` lines grouped by n: the ids each request's lines carry."""
    by_request: dict[str, list[str]] = {}
    for line in lines:
        rid, _, n = line.split(" ")
        by_request.setdefault(n, []).append(rid)
    return by_request


# -- asgi-correlation-id, as its README configures it, with loopsink sinks -------------------


def correlation_config(path: Path, receiver: StdlibReceiver) -> dict[str, Any]:
    """asgi-correlation-id's README dictConfig: its filter on the handler (here: on each sink)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "correlation_id": {
                "()": "asgi_correlation_id.CorrelationIdFilter",
                "uuid_length": 32,
                "default_value": "-",
            }
        },
        "formatters": {"line": {"format": "%(correlation_id)s %(message)s"}},
        "handlers": {
            "loopsink": {
                "()": "loopsink.config.bridge",
                "start": "loop",
                "sinks": {
                    "file": {
                        "class": "FileHandler",
                        "filename": str(path),
                        "filters": ["correlation_id"],
                        "formatter": "line",
                    },
                    "socket": {
                        "class": "SocketHandler",
                        "host": receiver.host,
                        "port": receiver.port,
                        "filters": ["correlation_id"],
                    },
                },
            }
        },
        "loggers": {"reqctx": {"handlers": ["loopsink"], "level": "INFO", "propagate": False}},
    }


async def test_asgi_correlation_id_under_uvicorn_every_line_has_its_requests_id(
    tmp_path: Path,
) -> None:
    count = 1000
    receiver = StdlibReceiver("tcp")
    logging.config.dictConfig(correlation_config(tmp_path / "app.log", receiver))
    log = logging.getLogger("reqctx")

    app = FastAPI(lifespan=lifespan())
    app.add_middleware(CorrelationIdMiddleware)

    def in_a_thread(n: int) -> None:
        log.info("thread %d", n)

    @app.get("/work/{n}")
    async def work(n: int) -> dict[str, int]:
        log.info("start %d", n)
        await asyncio.sleep(0)
        if n % 3 == 0:
            await run_in_threadpool(in_a_thread, n)
        log.info("end %d", n)
        return {"n": n}

    ids = {n: uuid.uuid4().hex for n in range(count)}

    async def request(client: httpx.AsyncClient, n: int) -> None:
        response = await client.get(f"/work/{n}", headers={"X-Request-ID": ids[n]})
        assert response.status_code == 200
        assert response.headers["X-Request-ID"] == ids[n]

    with anyio.fail_after(120):
        async with uvicorn_serving(app) as base:
            await load(base, count, request)
        expected_lines = sum(3 if n % 3 == 0 else 2 for n in range(count))
        received = [await receiver.get(timeout=10) for _ in range(expected_lines)]
    await receiver.aclose()
    file_lines = (tmp_path / "app.log").read_text().splitlines()
    assert len(file_lines) == expected_lines
    for n, rids in parsed(file_lines).items():
        assert rids == [ids[int(n)]] * (3 if int(n) % 3 == 0 else 2), n
    socket_ids: dict[int, set[str]] = {}
    for record in received:  # the socket sink sends the merged message: "start 12"
        n = int(record.getMessage().split()[-1])
        socket_ids.setdefault(n, set()).add(record.correlation_id)
    assert socket_ids == {n: {ids[n]} for n in range(count)}


# -- loopsink's own middleware and bound fields ---------------------------------------------


async def test_request_id_middleware_binds_the_id_for_every_sink(tmp_path: Path) -> None:
    count = 300
    text_sink = loopsink.FileHandler(tmp_path / "text.log")
    text_sink.setFormatter(logging.Formatter("%(request_id)s %(message)s"))
    json_sink = loopsink.FileHandler(tmp_path / "json.log")
    json_sink.setFormatter(loopsink.JSONFormatter())
    log = app_logger("reqctx.own")
    app = FastAPI(lifespan=lifespan(text_sink, json_sink, logger=log))
    app.add_middleware(RequestIdMiddleware)

    @app.get("/work/{n}")
    async def work(n: int) -> dict[str, int]:
        log.info("start %d", n)
        if n % 2:
            await run_in_threadpool(log.info, "thread %d", n)
        log.info("end %d", n)
        return {"n": n}

    sent: dict[int, str] = {}

    async def request(client: httpx.AsyncClient, n: int) -> None:
        # even requests bring an id; odd ones get one made up; 7 brings a hostile one
        headers = {"X-Request-ID": f"rid-{n}"} if n % 2 == 0 else {}
        if n == 7:
            headers = {"X-Request-ID": "evil\tid " + "x" * 200}
        response = await client.get(f"/work/{n}", headers=headers)
        assert response.status_code == 200
        sent[n] = response.headers["X-Request-ID"]

    with anyio.fail_after(60):
        async with uvicorn_serving(app) as base:
            await load(base, count, request)
    assert all(sent[n] == f"rid-{n}" for n in range(0, count, 2))
    assert len({sent[n] for n in range(1, count, 2)}) == count // 2  # fresh, distinct ids
    assert all(len(sent[n]) == 32 for n in range(1, count, 2))
    for n, rids in parsed((tmp_path / "text.log").read_text().splitlines()).items():
        assert set(rids) == {sent[int(n)]}
    objects = [json.loads(line) for line in (tmp_path / "json.log").read_text().splitlines()]
    assert len(objects) == count * 2 + count // 2
    assert all(o["request_id"] == sent[int(o["message"].split()[-1])] for o in objects)


# -- structlog's ProcessorFormatter as a loopsink sink's formatter ---------------------------


async def test_structlog_processor_formatter_sees_values_bound_in_the_request(
    tmp_path: Path,
) -> None:
    count = 200
    sink = loopsink.FileHandler(tmp_path / "structlog.log")
    sink.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=structlog.processors.JSONRenderer(),
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
            ],
        )
    )
    log = app_logger("reqctx.structlog")
    app = FastAPI(lifespan=lifespan(sink, logger=log))

    @app.get("/work/{n}")
    async def work(n: int) -> dict[str, int]:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_n=n, user=f"user-{n}")
        log.info("start %d", n)
        await asyncio.sleep(0)
        await run_in_threadpool(log.info, "thread %d", n)
        log.info("end %d", n)
        return {"n": n}

    async def request(client: httpx.AsyncClient, n: int) -> None:
        assert (await client.get(f"/work/{n}")).status_code == 200

    with anyio.fail_after(60):
        async with uvicorn_serving(app) as base:
            await load(base, count, request)
    events = [json.loads(line) for line in (tmp_path / "structlog.log").read_text().splitlines()]
    assert len(events) == count * 3
    for event in events:
        n = int(event["event"].split()[-1])
        assert (event["request_n"], event["user"], event["level"]) == (n, f"user-{n}", "info")


# -- OpenTelemetry: trace and span ids, from the record factory and at format time ------------


class SpanAtFormatTime(logging.Formatter):
    """Reads the current span when formatting, as OpenTelemetry-aware formatters do."""

    def format(self, record: logging.LogRecord) -> str:
        context = trace.get_current_span().get_span_context()
        return f"{context.trace_id:032x} {context.span_id:016x} {super().format(record)}"


@pytest.fixture(scope="module")
def tracer() -> Iterator[trace.Tracer]:
    provider = TracerProvider()
    instrumentor = LoggingInstrumentor()
    instrumentor.instrument(
        tracer_provider=provider,
        set_logging_format=False,  # leave the root logger's configuration alone
        inject_trace_context=True,  # the record factory adds otelTraceID and otelSpanID
        enable_log_auto_instrumentation=False,  # no OpenTelemetry handler on the root logger
    )
    try:
        yield provider.get_tracer("loopsink-tests")
    finally:
        instrumentor.uninstrument()


async def test_opentelemetry_ids_match_each_requests_span(
    tmp_path: Path, tracer: trace.Tracer
) -> None:
    count = 200
    factory_sink = loopsink.FileHandler(tmp_path / "factory.log")
    factory_sink.setFormatter(logging.Formatter("%(otelTraceID)s %(otelSpanID)s %(message)s"))
    format_sink = loopsink.FileHandler(tmp_path / "format.log")
    format_sink.setFormatter(SpanAtFormatTime("%(message)s"))
    log = app_logger("reqctx.otel")
    app = FastAPI(lifespan=lifespan(factory_sink, format_sink, logger=log))

    @app.get("/work/{n}")
    async def work(n: int) -> dict[str, str]:
        with tracer.start_as_current_span(f"request {n}") as span:
            log.info("start %d", n)
            await asyncio.sleep(0)
            await run_in_threadpool(log.info, "thread %d", n)
            log.info("end %d", n)
            context = span.get_span_context()
            return {"ids": f"{context.trace_id:032x} {context.span_id:016x}"}

    spans: dict[int, str] = {}

    async def request(client: httpx.AsyncClient, n: int) -> None:
        response = await client.get(f"/work/{n}")
        assert response.status_code == 200
        spans[n] = response.json()["ids"]

    with anyio.fail_after(60):
        async with uvicorn_serving(app) as base:
            await load(base, count, request)
    assert len(set(spans.values())) == count
    for name in ("factory.log", "format.log"):
        lines = (tmp_path / name).read_text().splitlines()
        assert len(lines) == count * 3
        for line in lines:
            trace_id, span_id, _, n = line.split(" ")
            assert f"{trace_id} {span_id}" == spans[int(n)], (name, line)


# -- aiohttp ----------------------------------------------------------------------------------

request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var", default="-")


class RequestVarFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_var = request_var.get()
        return True


async def test_aiohttp_every_line_has_its_requests_id(tmp_path: Path) -> None:
    from aiohttp import web

    from loopsink.contrib.aiohttp import cleanup_ctx, request_id_middleware

    count = 300
    sink = loopsink.FileHandler(tmp_path / "aiohttp.log")
    sink.addFilter(RequestVarFilter())
    sink.setFormatter(logging.Formatter("%(request_id)s|%(request_var)s %(message)s"))
    log = app_logger("reqctx.aiohttp")

    async def work(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        request_var.set(f"var-{n}")
        log.info("start %d", n)
        await asyncio.to_thread(log.info, "thread %d", n)
        log.info("end %d", n)
        return web.json_response({"n": n})

    app = web.Application(middlewares=[request_id_middleware()])
    app.cleanup_ctx.append(cleanup_ctx(sink, logger=log))
    app.router.add_get("/work/{n}", work)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    async def request(client: httpx.AsyncClient, n: int) -> None:
        response = await client.get(f"/work/{n}", headers={"X-Request-ID": f"aio-{n}"})
        assert response.status_code == 200
        assert response.headers["X-Request-ID"] == f"aio-{n}"

    try:
        with anyio.fail_after(60):
            await load(f"http://127.0.0.1:{port}", count, request)
    finally:
        await runner.cleanup()
    lines = (tmp_path / "aiohttp.log").read_text().splitlines()
    assert len(lines) == count * 3
    for line in lines:
        ids, _, n = line.split(" ")
        assert ids == f"aio-{n}|var-{n}", line
