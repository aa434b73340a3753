"""A real HTTP/2 server on 127.0.0.1: hypercorn (h2 as its engine) over TLS, ALPN h2.

A recording ASGI app runs in hypercorn on its own event loop in a daemon thread; each
request is kept with the HTTP version the server spoke, so a test can see that a client
really used HTTP/2. The listening socket is bound to port 0 first and handed to hypercorn
by file descriptor, so the port is known before the server starts.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config

from servers.loops import close_leftover_transports


@dataclass
class H2Request:
    http_version: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class H2Server:
    """hypercorn serving a recording app over TLS with a trustme certificate."""

    def __init__(self, ca: trustme.CA) -> None:
        self.received: list[H2Request] = []
        self._cert = ca.issue_cert("127.0.0.1", "localhost")
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._files: list[Any] = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        with self._cond:
            self.received.append(
                H2Request(
                    scope["http_version"],
                    scope["method"],
                    scope["path"],
                    {k.decode(): v.decode() for k, v in scope["headers"]},
                    body,
                )
            )
            self._cond.notify_all()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def __enter__(self) -> H2Server:
        key = self._cert.private_key_pem.tempfile()
        chain = self._cert.cert_chain_pems[0].tempfile()
        self._files = [key, chain]
        config = Config()
        config.bind = [f"fd://{self._sock.detach()}"]  # hypercorn's now: it closes it
        config.keyfile = key.__enter__()
        config.certfile = chain.__enter__()
        config.accesslog = None
        config.errorlog = None
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop = asyncio.Event()
            ready.set()
            loop.run_until_complete(serve(self._app, config, shutdown_trigger=self._stop.wait))
            close_leftover_transports(loop)
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="h2-server")
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
        for file in self._files:
            file.__exit__(None, None, None)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[H2Request]:
        """Block until ``count`` requests arrived (from a worker thread in async tests)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= count, timeout):
                raise TimeoutError(f"{len(self.received)} of {count} requests in {timeout} s")
            return list(self.received)


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context
