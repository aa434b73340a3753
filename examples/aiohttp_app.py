"""An aiohttp.web app that logs through loopsink and flushes it at clean-up.

``loopsink.contrib.aiohttp.cleanup_ctx`` starts a queue over the sinks when the app starts
and, at clean-up (after the server has stopped and the running handlers have finished),
waits until every record is written. Both the app's own logger and aiohttp's access log
(``aiohttp.access``) go through it: the bridge sits on the root logger.

By default the example drives itself: it serves on a free loopback port, sends 50 requests,
cleans up as ``web.run_app`` does on SIGINT/SIGTERM, then prints what reached the log file.
With ``--serve`` it runs ``web.run_app`` on http://127.0.0.1:8080 until Ctrl-C and logs to
``aiohttp_app.log`` in the current directory.

Run it with ``python examples/aiohttp_app.py``; it takes well under a second.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import tempfile
from pathlib import Path

import aiohttp
from aiohttp import web

import loopsink
from loopsink.contrib.aiohttp import QUEUES, cleanup_ctx

log = logging.getLogger("app")


async def hello(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    log.info("said hello to %s", name)
    return web.json_response({"hello": name})


def make_app(log_file: Path) -> web.Application:
    logging.getLogger().setLevel(logging.INFO)
    sink = loopsink.FileHandler(log_file)
    sink.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    app = web.Application()
    app.cleanup_ctx.append(cleanup_ctx(sink))  # first, so the others' clean-up is logged too
    app.router.add_get("/hello/{name}", hello)
    return app


async def drive(log_file: Path) -> None:
    app = make_app(log_file)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:

        async def get(n: int) -> int:
            async with session.get(f"/hello/user{n}") as reply:
                return reply.status

        assert await asyncio.gather(*(get(n) for n in range(50))) == [200] * 50
    (queue,) = app[QUEUES]
    print(f"queue stats while serving: enqueued={queue.stats.enqueued}")
    await runner.cleanup()  # what web.run_app does on SIGINT/SIGTERM


def main() -> None:
    if "--serve" in sys.argv:
        web.run_app(make_app(Path("aiohttp_app.log")), host="127.0.0.1", port=8080)
        return
    with tempfile.TemporaryDirectory() as tmp:
        log_file = Path(tmp) / "aiohttp_app.log"
        asyncio.run(drive(log_file))
        lines = log_file.read_text().splitlines()
    app_lines = [line for line in lines if line.startswith("app:")]
    access = [line for line in lines if line.startswith("aiohttp.access:")]
    print(f"{len(app_lines)} app lines and {len(access)} access-log lines written; e.g.:")
    print("  " + app_lines[0])
    print("  " + access[0])
    assert len(app_lines) == len(access) == 50, lines


if __name__ == "__main__":
    main()
