"""The aiohttp.web app that tests/contrib/test_aiohttp.py serves in a real process.

Usage: python app_aiohttp.py FD LOGFILE — serve on the listening socket FD (bound by the
test) and log through loopsink into LOGFILE until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys

from aiohttp import web

import loopsink
from loopsink.contrib.aiohttp import cleanup_ctx

log = logging.getLogger("app")
started = 0


async def work(request: web.Request) -> web.Response:
    log.info("work %s", request.match_info["n"])
    return web.json_response({"n": int(request.match_info["n"])})


async def slow(request: web.Request) -> web.Response:
    global started
    started += 1
    n = request.match_info["n"]
    log.info("slow %s begin", n)
    await asyncio.sleep(1.0)  # the test sends the signal while these are in flight
    log.info("slow %s end", n)
    return web.json_response({"n": int(n)})


async def inflight(request: web.Request) -> web.Response:
    return web.json_response({"n": started})


def main() -> None:
    fd, log_file = int(sys.argv[1]), sys.argv[2]
    logging.getLogger().setLevel(logging.INFO)
    sink = loopsink.FileHandler(log_file)
    sink.setFormatter(logging.Formatter("%(name)s %(message)s"))
    app = web.Application()
    app.cleanup_ctx.append(cleanup_ctx(sink))
    app.router.add_get("/work/{n}", work)
    app.router.add_get("/slow/{n}", slow)
    app.router.add_get("/inflight", inflight)
    web.run_app(app, sock=socket.socket(fileno=fd), shutdown_timeout=10, print=None)


if __name__ == "__main__":
    main()
