"""A FastAPI app that logs through loopsink, served by uvicorn, flushed before it exits.

``loopsink.contrib.fastapi.lifespan`` starts a queue over the sinks on the app's event loop
when uvicorn starts the app, bridges the ``app`` logger into it, and when uvicorn stops the
app (after the last response) waits until every record is written. A request handler's
``log.info`` returns at once: the file is written from a worker thread.

By default the example drives itself: it serves on a free loopback port, sends 50 requests,
asks uvicorn to shut down as SIGTERM would, then prints what reached the log file. With
``--serve`` it serves on http://127.0.0.1:8000 until Ctrl-C (try ``curl
localhost:8000/hello/you``) and logs to ``fastapi_app.log`` in the current directory.
``config_app`` is the same app for a uvicorn ``--log-config`` file that declares the sinks
(``examples/uvicorn-log-config.yaml``).

Run it with ``python examples/fastapi_app.py``; it takes about a second.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import tempfile
from pathlib import Path

import uvicorn
from fastapi import FastAPI

import loopsink
from loopsink.contrib.fastapi import lifespan

log = logging.getLogger("app")
log.setLevel(logging.INFO)


def make_app(log_file: Path) -> FastAPI:
    sink = loopsink.FileHandler(log_file)
    sink.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    app = FastAPI(lifespan=lifespan(sink, logger="app"))

    @app.get("/hello/{name}")
    async def hello(name: str) -> dict[str, str]:
        log.info("said hello to %s", name)
        return {"hello": name}

    return app


def config_app() -> FastAPI:
    """The app when the sinks are declared in a ``--log-config`` file instead::

        uvicorn --factory examples.fastapi_app:config_app \\
            --log-config examples/uvicorn-log-config.yaml

    With no sinks of its own, the lifespan runs the bridges that file declared.
    """
    app = FastAPI(lifespan=lifespan())

    @app.get("/hello/{name}")
    async def hello(name: str) -> dict[str, str]:
        log.info("said hello to %s", name)
        return {"hello": name}

    return app


async def drive(log_file: Path) -> None:
    """Serve on a free port, send requests, shut down the way SIGTERM does."""
    import httpx  # only the self-driving demo needs a client: `uvicorn --factory` does not

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # requests wait in the backlog until uvicorn accepts them
    port = sock.getsockname()[1]
    config = uvicorn.Config(make_app(log_file), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        replies = await asyncio.gather(*(client.get(f"/hello/user{n}") for n in range(50)))
    assert all(reply.status_code == 200 for reply in replies)
    server.should_exit = True  # what uvicorn's SIGTERM handler does
    await serving
    sock.close()


def main() -> None:
    if "--serve" in sys.argv:
        uvicorn.run(make_app(Path("fastapi_app.log")), host="127.0.0.1", port=8000)
        return
    with tempfile.TemporaryDirectory() as tmp:
        log_file = Path(tmp) / "fastapi_app.log"
        asyncio.run(drive(log_file))
        lines = log_file.read_text().splitlines()
    print(f"{len(lines)} lines written before uvicorn returned; the last one:")
    print("  " + lines[-1])
    assert len(lines) == 50, lines


if __name__ == "__main__":
    main()
