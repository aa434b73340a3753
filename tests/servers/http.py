"""A real HTTP(S) server on 127.0.0.1 for the HTTP sink's tests and benchmark.

aiohttp.web runs on its own event loop in a daemon thread (so the tests may run on asyncio
or trio), binds port 0 unless told otherwise, and signals readiness with a threading.Event.
Every request is recorded as the server saw it: method, raw request target, raw headers,
body, the status it was answered with, and when it arrived. Tests script the answers
(a queue of statuses, a per-request delay) and can stop the listener and start it again
on the same port to play an outage.

Run as a module (``PYTHONPATH=tests python -m servers.http --delay 0.02``) it serves until stdin
closes and prints its port on the first line: the benchmark uses it as a subprocess, so
the server's work does not share the measured interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web

from servers.loops import close_leftover_transports


@dataclass
class Received:
    """One request as it arrived."""

    method: str
    target: str  # the raw request target: path and query exactly as sent
    headers: list[tuple[str, str]]  # raw, in order, original case
    body: bytes
    status: int  # what the server answered
    at: float  # time.monotonic() on arrival

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class HTTPServer:
    """A recording HTTP server in a thread. Use it as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        delay: float = 0.0,
        default: Answer | None = None,
    ) -> None:
        self.ssl_context = ssl_context
        self.delay = delay
        self.default = default or Answer()
        #: answers used, in order, before falling back to ``default``
        self.script: collections.deque[Answer] = collections.deque()
        self.received: list[Received] = []
        #: while an unset threading.Event, each request that arrived waits for it to be set
        #: before it is answered (and recorded in ``received``)
        self.gate: threading.Event | None = None
        #: requests whose body has been read, answered or not
        self.arrived = 0
        self.port = 0
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> HTTPServer:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), daemon=True, name="http-server"
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the test HTTP server did not start within 10 s")
        self.listen()
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # auto_decompress=False: record the bytes on the wire, gzip included.
        self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        loop.run_until_complete(self._runner.setup())
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            close_leftover_transports(loop)
            loop.close()

    def _call(self, coro: object) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    def listen(self) -> None:
        """Start accepting connections (again): port 0 the first time, then the same port."""
        self._call(self._listen())

    async def _listen(self) -> None:
        assert self._runner is not None
        site = web.TCPSite(
            self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context, reuse_address=True
        )
        await site.start()
        self._site = site
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    def go_down(self) -> None:
        """Stop listening and drop open connections: clients now get 'connection refused'."""
        self._call(self._go_down())

    async def _go_down(self) -> None:
        assert self._runner is not None
        assert self._site is not None
        await self._site.stop()
        self._site = None
        server = self._runner.server
        if server is not None:  # kept-alive connections would still be answered
            await server.shutdown(1.0)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> HTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests -------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        body = await request.read()
        with self._cond:
            self.arrived += 1
            self._cond.notify_all()
        gate = self.gate
        if gate is not None:
            await asyncio.get_running_loop().run_in_executor(None, gate.wait, 30.0)
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._cond:
            answer = self.script.popleft() if self.script else self.default
            self.received.append(
                Received(
                    method=request.method,
                    target=request.raw_path,
                    headers=[
                        (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers
                    ],
                    body=body,
                    status=answer.status,
                    at=arrived,
                )
            )
            self._cond.notify_all()
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until ``count`` requests arrived (call it in a worker thread from async code)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= count, timeout):
                raise TimeoutError(
                    f"{len(self.received)} of {count} requests arrived in {timeout} s"
                )
            return list(self.received)

    def wait_arrived(self, count: int, timeout: float = 10.0) -> None:
        """Block until ``count`` requests have arrived, answered or still held at the gate."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.arrived >= count, timeout):
                raise TimeoutError(f"{self.arrived} of {count} requests arrived in {timeout} s")

    def delivered(self) -> list[Received]:
        """The requests answered 2xx."""
        with self._cond:
            return [r for r in self.received if 200 <= r.status < 300]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--bodies", help="append every request body to this file, in order")
    args = parser.parse_args()
    server = HTTPServer(delay=args.delay)
    # Do not keep what arrives in memory: the benchmark sends a lot and only needs the
    # answers; with --bodies, the bodies go to a file for the caller to check.
    server.received = _Discard() if args.bodies is None else _ToFile(args.bodies)
    with server:
        print(server.port, flush=True)
        sys.stdin.read()


class _Discard(list):  # type: ignore[type-arg]
    def append(self, item: object) -> None:
        pass


class _ToFile(list):  # type: ignore[type-arg]
    def __init__(self, path: str) -> None:
        super().__init__()
        self.file = open(path, "ab")  # open while the server runs

    def append(self, item: Received) -> None:
        self.file.write(item.body)
        self.file.flush()


if __name__ == "__main__":
    main()
