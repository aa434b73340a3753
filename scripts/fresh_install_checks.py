"""What a new user does right after ``pip install loopsink`` (and each extra), checked.

Run by ``scripts/fresh-install.sh`` with the interpreter of a fresh virtual environment:
``python fresh_install_checks.py CHECK DIR``. Each check uses its feature for real (files
written, a mail sent to a local SMTP server, HTTP requests to a real server), verifies the
output it expects, and prints one ``ok`` line. It must not import anything the installed
package and its extra do not bring (the SMTP check also uses aiosmtpd, a test tool).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _expect(what: str, got: object, wanted: object) -> None:
    if got != wanted:
        raise SystemExit(f"fresh-install: {what}: expected {wanted!r}, got {got!r}")


def _installed_not_source() -> None:
    """The checks run against the installed package, never the work tree's src/."""
    import loopsink

    where = Path(loopsink.__file__).resolve()
    _expect("loopsink imported from the venv", Path(sys.prefix).resolve() in where.parents, True)


def bare(tmp: Path) -> None:
    """No extras: import, an asyncio program via install(), a sync one via start_in_thread."""
    import asyncio
    import importlib.util

    _installed_not_source()
    import loopsink

    for optional in ("trio", "aiosmtplib", "aiofiles", "fastapi", "uvicorn", "aiohttp", "httpx"):
        _expect(f"{optional} absent", importlib.util.find_spec(optional), None)

    path = tmp / "asyncio.log"

    async def main() -> None:
        sink = loopsink.FileHandler(path)
        sink.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        logger = logging.getLogger("fresh")
        logger.setLevel(logging.INFO)
        async with loopsink.install(sink, logger=logger):
            logger.info("hello %s", "asyncio")

    asyncio.run(main())
    _expect("asyncio program's file", _read(path), "INFO fresh hello asyncio\n")

    path = tmp / "sync.log"
    running = loopsink.start_in_thread(loopsink.FileHandler(path), logger="fresh.sync")
    logging.getLogger("fresh.sync").warning("hello from a thread")
    running.flush(5.0)
    running.close(5.0)
    _expect("sync program's file", _read(path), "hello from a thread\n")

    try:
        loopsink.SMTPHandler("127.0.0.1", "a@example.com", ["b@example.com"], "s")
    except loopsink.MissingExtraError as exc:
        _expect("SMTPHandler without [smtp]", "pip install 'loopsink[smtp]'" in str(exc), True)
    else:
        raise SystemExit("fresh-install: SMTPHandler without [smtp] did not refuse")
    try:
        loopsink.HTTPHandler("127.0.0.1:9", "/log")
    except loopsink.MissingExtraError as exc:
        _expect("HTTPHandler without [http]", "pip install 'loopsink[http]'" in str(exc), True)
    else:
        raise SystemExit("fresh-install: HTTPHandler without [http] did not refuse")


def trio(tmp: Path) -> None:
    """[trio]: the same program under trio.run."""
    import trio as trio_module

    _installed_not_source()
    import loopsink

    path = tmp / "trio.log"

    async def main() -> None:
        logger = logging.getLogger("fresh.trio")
        logger.setLevel(logging.INFO)
        async with loopsink.install(loopsink.FileHandler(path), logger=logger):
            logger.info("hello trio")

    trio_module.run(main)
    _expect("trio program's file", _read(path), "hello trio\n")


def smtp(tmp: Path) -> None:
    """[smtp]: one mail through SMTPHandler (aiosmtplib) to a local aiosmtpd server."""
    import asyncio
    import socket

    from aiosmtpd.controller import Controller

    _installed_not_source()
    import loopsink

    received: list[bytes] = []

    class Recorder:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            received.append(envelope.content)  # type: ignore[attr-defined]
            return "250 OK"

    with socket.socket() as probe:  # aiosmtpd's start-up check cannot use port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Recorder(), hostname="127.0.0.1", port=port)
    controller.start()
    try:

        async def main() -> None:
            sink = loopsink.SMTPHandler(
                ("127.0.0.1", port), "app@example.com", ["ops@example.com"], "fresh install"
            )
            async with loopsink.install(sink, logger="fresh.smtp"):
                logging.getLogger("fresh.smtp").error("the disk is full")

        asyncio.run(main())
    finally:
        controller.stop()
    _expect("mails received", len(received), 1)
    text = received[0].decode()
    _expect("mail subject", "Subject: fresh install" in text, True)
    _expect("mail body", "the disk is full" in text, True)


def http(tmp: Path) -> None:
    """[http]: HTTPHandler (httpx's h11 engine) posting the stdlib's form to a real server."""
    import asyncio
    import threading
    import urllib.parse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    _installed_not_source()
    import loopsink

    bodies: list[dict[str, list[str]]] = []

    class Intake(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            bodies.append(urllib.parse.parse_qs(self.rfile.read(length).decode()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Intake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]

        async def main() -> None:
            sink = loopsink.HTTPHandler(f"{host}:{port}", "/log", method="POST")
            async with loopsink.install(sink, logger="fresh.http"):
                logging.getLogger("fresh.http").warning("over %s", "http")

        asyncio.run(main())
    finally:
        server.shutdown()
        server.server_close()
    _expect("requests received", len(bodies), 1)
    _expect("form's msg", bodies[0].get("msg"), ["over %s"])
    _expect("form's args", bodies[0].get("args"), ["('http',)"])


def aiofiles(tmp: Path) -> None:
    """[aiofiles]: StreamHandler writing into an aiofiles file."""
    import asyncio

    import aiofiles as aiofiles_module

    _installed_not_source()
    import loopsink

    path = tmp / "aiofiles.log"

    async def main() -> None:
        async with aiofiles_module.open(path, "w") as stream:
            sink = loopsink.StreamHandler(stream)
            async with loopsink.install(sink, logger="fresh.aiofiles"):
                logging.getLogger("fresh.aiofiles").warning("through aiofiles")

    asyncio.run(main())
    _expect("aiofiles stream", _read(path), "through aiofiles\n")


def fastapi(tmp: Path) -> None:
    """[fastapi]: the lifespan under a real uvicorn server; the record is on disk at exit."""
    import asyncio
    import urllib.request

    import uvicorn
    from fastapi import FastAPI

    _installed_not_source()
    import loopsink
    from loopsink.contrib.fastapi import lifespan

    path = tmp / "fastapi.log"
    app = FastAPI(lifespan=lifespan(loopsink.FileHandler(path), logger="fresh.web"))

    @app.get("/")
    async def root() -> dict[str, bool]:
        logging.getLogger("fresh.web").warning("served a request")
        return {"ok": True}

    async def main() -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
        server = uvicorn.Server(config)
        serving = asyncio.ensure_future(server.serve())
        try:
            deadline = asyncio.get_running_loop().time() + 20
            while not server.started:  # uvicorn offers a flag, not an event, for "ready"
                if serving.done():
                    serving.result()
                if asyncio.get_running_loop().time() > deadline:
                    raise SystemExit("fresh-install: uvicorn did not start in 20 s")
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            url = f"http://127.0.0.1:{port}/"
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
            _expect("FastAPI answer", body, b'{"ok":true}')
        finally:
            server.should_exit = True
            await serving

    asyncio.run(main())
    _expect("FastAPI lifespan's file", _read(path), "served a request\n")


def aiohttp(tmp: Path) -> None:
    """[aiohttp]: the cleanup context with a real AppRunner, client and clean-up."""
    import asyncio

    import aiohttp as aiohttp_module
    from aiohttp import web

    _installed_not_source()
    import loopsink
    from loopsink.contrib.aiohttp import cleanup_ctx

    path = tmp / "aiohttp.log"

    async def hello(request: web.Request) -> web.Response:
        logging.getLogger("fresh.aiohttp").warning("served %s", request.path)
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.cleanup_ctx.append(cleanup_ctx(loopsink.FileHandler(path), logger="fresh.aiohttp"))
        app.router.add_get("/hello", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            async with aiohttp_module.ClientSession() as session:
                async with session.get(f"http://{host}:{port}/hello") as response:
                    _expect("aiohttp answer", await response.text(), "ok")
        finally:
            await runner.cleanup()

    asyncio.run(main())
    _expect("aiohttp cleanup context's file", _read(path), "served /hello\n")


CHECKS: dict[str, Callable[[Path], None]] = {
    "bare": bare,
    "trio": trio,
    "smtp": smtp,
    "http": http,
    "aiofiles": aiofiles,
    "fastapi": fastapi,
    "aiohttp": aiohttp,
}


if __name__ == "__main__":
    name, directory = sys.argv[1], Path(sys.argv[2])
    os.makedirs(directory, exist_ok=True)
    CHECKS[name](directory)
    print(f"fresh-install: {name} ok (Python {sys.version.split()[0]})")
