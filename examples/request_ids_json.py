"""Request ids and JSON lines: every line carries the id of the request that logged it.

Three ways, each run here against a real server on a free loopback port:

1. plain asyncio: ``loopsink.bind(request_id=...)`` around each unit of work;
2. FastAPI under uvicorn: ``loopsink.contrib.fastapi.RequestIdMiddleware`` binds the
   request's ``X-Request-ID`` (or a fresh id) for the whole request, threadpool included;
3. aiohttp: ``loopsink.contrib.aiohttp.request_id_middleware()`` does the same.

The sinks write JSON lines (``loopsink.JSONFormatter``) to a file and text lines with
``%(request_id)s`` to the console. A filter that reads a ``ContextVar`` works too, as with
the stdlib's handlers: the sinks run it in the context of the log call.

Run it: ``python examples/request_ids_json.py`` (needs the ``fastapi`` and ``aiohttp`` extras).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import socket
import sys
import tempfile
from pathlib import Path

import httpx
import uvicorn
from aiohttp import web
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

import loopsink
from loopsink.contrib.aiohttp import cleanup_ctx, request_id_middleware
from loopsink.contrib.fastapi import RequestIdMiddleware, lifespan

log = logging.getLogger("shop")

#: A variable of the application's own, read by a sink filter (the stdlib pattern).
tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="-")


class TenantFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.tenant = tenant.get()
        return True


def make_sinks(path: Path) -> tuple[loopsink.FileHandler, loopsink.StreamHandler]:
    json_sink = loopsink.FileHandler(path, encoding="utf-8")
    json_sink.setFormatter(loopsink.JSONFormatter(static={"service": "shop"}))
    json_sink.addFilter(TenantFilter())
    console = loopsink.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter("  %(request_id)-12s %(message)s"))
    return json_sink, console


async def plain_asyncio(path: Path) -> None:
    async def job(n: int) -> None:
        with loopsink.bind(request_id=f"job-{n}"):
            tenant.set(f"tenant-{n % 2}")
            log.info("job %d started", n)
            await asyncio.sleep(0)
            await asyncio.to_thread(log.info, "job %d worked in a thread", n)

    async with loopsink.install(*make_sinks(path), logger=log):
        await asyncio.gather(*(job(n) for n in range(3)))


def fastapi_app(path: Path) -> FastAPI:
    app = FastAPI(lifespan=lifespan(*make_sinks(path), logger=log))
    app.add_middleware(RequestIdMiddleware)

    @app.get("/orders/{n}")
    async def order(n: int) -> dict[str, int]:
        tenant.set("acme")
        log.info("order %d requested", n)
        await run_in_threadpool(log.info, "order %d priced in a thread", n)
        return {"order": n}

    return app


async def fastapi_under_uvicorn(path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # requests wait here until uvicorn accepts them: no readiness polling
    server = uvicorn.Server(uvicorn.Config(fastapi_app(path), log_config=None, access_log=False))
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with httpx.AsyncClient(base_url=base) as client:
        given = await client.get("/orders/1", headers={"X-Request-ID": "from-proxy-1"})
        fresh = await client.get("/orders/2")
    print(f"  response ids: {given.headers['X-Request-ID']}, {fresh.headers['X-Request-ID']}")
    server.should_exit = True
    await serving
    sock.close()


async def aiohttp_server(path: Path) -> None:
    async def item(request: web.Request) -> web.Response:
        log.info("item %s requested", request.match_info["n"])
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[request_id_middleware()])
    app.cleanup_ctx.append(cleanup_ctx(*make_sinks(path), logger=log))
    app.router.add_get("/items/{n}", item)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        await client.get("/items/7", headers={"X-Request-ID": "aio-7"})
    await runner.cleanup()


async def main() -> None:
    log.setLevel(logging.INFO)
    log.propagate = False
    with tempfile.TemporaryDirectory() as tmp:
        for title, run in (
            ("plain asyncio, loopsink.bind", plain_asyncio),
            ("FastAPI under uvicorn, RequestIdMiddleware", fastapi_under_uvicorn),
            ("aiohttp, request_id_middleware()", aiohttp_server),
        ):
            print(f"{title}:")
            path = Path(tmp) / "app.jsonl"
            await run(path)
            print("  JSON lines written:")
            for line in path.read_text(encoding="utf-8").splitlines():
                data = json.loads(line)
                assert data["request_id"], line  # every line carries its request's id
                print(f"    {line}")
            path.unlink()


if __name__ == "__main__":
    asyncio.run(main())
