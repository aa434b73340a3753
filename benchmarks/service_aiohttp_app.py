"""The aiohttp service that benchmarks/bench_aiohttp.py serves in a process of its own.

``python benchmarks/service_aiohttp_app.py PORT`` serves ``/items/{n}`` (two log lines per
request), ``/orders/{n}`` (three) and ``/stats`` (nothing of its own), with aiohttp's access
log, until SIGINT or SIGTERM. Every line the app logs carries a number of its own
(``line N:``, counted from 0 across the whole run), so each sink's output can be checked
line by line afterwards; ``/stats`` says how many requests were served and lines logged.

How it logs is chosen by ``BENCH_AIOHTTP_MODE``:

* ``none``: no logging, no access log (the baseline);
* ``null``: every record made (the app's and the access log's), then dropped by the
  stdlib ``NullHandler``: what logging costs before any handler writes anything;
* ``stdlib``: the stdlib ``FileHandler`` on the root logger, as ``logging.basicConfig``
  would set it up;
* ``loopsink``: loopsink's ``FileHandler`` through ``contrib.aiohttp.cleanup_ctx``;
* ``loopsink_all``: the same with ``SysLogHandler`` over UDP to ``BENCH_AIOHTTP_SYSLOG``
  (``host:port``) and ``HTTPHandler(body="ndjson")`` to ``BENCH_AIOHTTP_COLLECTOR``.
"""

from __future__ import annotations

import logging
import os
import sys

from aiohttp import web

import loopsink
from loopsink.contrib.aiohttp import cleanup_ctx

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _address(variable: str) -> tuple[str, int]:
    host, _, port = os.environ[variable].rpartition(":")
    return host, int(port)


def make_app() -> tuple[web.Application, bool]:
    mode = os.environ.get("BENCH_AIOHTTP_MODE", "none")
    log_file = os.environ.get("BENCH_AIOHTTP_LOG", "app.log")
    log = logging.getLogger("app")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    formatter = logging.Formatter(FORMAT)
    app = web.Application()
    if mode == "none":
        log.disabled = True
    elif mode == "null":
        root.addHandler(logging.NullHandler())
    elif mode == "stdlib":
        handler = logging.FileHandler(log_file)
        handler.setFormatter(formatter)
        root.addHandler(handler)
    else:
        sinks: list[loopsink.AsyncHandler] = [loopsink.FileHandler(log_file)]
        if mode == "loopsink_all":
            sinks.append(loopsink.SysLogHandler(_address("BENCH_AIOHTTP_SYSLOG")))
            host, port = _address("BENCH_AIOHTTP_COLLECTOR")
            sinks.append(loopsink.HTTPHandler(f"{host}:{port}", "/bulk", "POST", body="ndjson"))
        for sink in sinks:
            sink.setFormatter(formatter)
        app.cleanup_ctx.append(cleanup_ctx(*sinks))
    counts = {"served": 0, "lines": 0}

    def line() -> int:
        number = counts["lines"]
        counts["lines"] = number + 1
        return number

    async def item(request: web.Request) -> web.Response:
        counts["served"] += 1
        n = request.match_info["n"]
        log.info("line %d: item %s requested", line(), n)
        log.info("line %d: item %s served", line(), n)
        return web.json_response({"n": n})

    async def order(request: web.Request) -> web.Response:
        counts["served"] += 1
        n = request.match_info["n"]
        log.info("line %d: order %s received", line(), n)
        log.info("line %d: order %s validated", line(), n)
        log.info("line %d: order %s stored", line(), n)
        return web.json_response({"n": n})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(counts)

    app.router.add_get("/items/{n}", item)
    app.router.add_get("/orders/{n}", order)
    app.router.add_get("/stats", stats)
    return app, mode != "none"


def main() -> None:
    app, access = make_app()
    web.run_app(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=logging.getLogger("aiohttp.access") if access else None,
        print=None,
        shutdown_timeout=10,
    )


if __name__ == "__main__":
    main()
