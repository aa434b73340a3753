"""Loopback receivers for bench_cpu.py, run in a child process so their CPU is not counted.

``python _cpu_receivers.py KIND [PATTERN]`` with KIND one of ``udp``, ``tcp`` (syslog over UDP or
TCP), ``socket`` (SocketHandler's length-prefixed pickles) or ``http`` (NDJSON bodies
POSTed to any path). It prints its port, then answers each line ``COUNT TIMEOUT`` read
from stdin with a JSON summary of the record numbers received so far, once COUNT of them
arrived or TIMEOUT seconds passed: how many, how many distinct, whether they are 0..COUNT-1
and in order. A blank line or the end of stdin stops it. The receivers parse what arrives
(pickles unpickled, JSON decoded) so a record is counted only if it arrived whole.
PATTERN (a regular expression whose one group is the number) replaces the benchmark's
message; what does not match it (an access log's line) is not counted.
"""

from __future__ import annotations

import json
import pickle
import re
import socket
import struct
import sys
import threading
import time

#: The record number in the benchmark's message ("request 123 handled in 1.250 ms").
NUMBER = re.compile(rb"request (\d+) handled")


class Numbers:
    """Record numbers received, shared by the receiving threads and the reporting one."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.cond = threading.Condition()

    def add(self, numbers: list[int]) -> None:
        if numbers:
            with self.cond:
                self.seen.extend(numbers)
                self.cond.notify_all()

    def summary(self, count: int, timeout: float) -> dict[str, object]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.seen) >= count, timeout)
            seen = list(self.seen)
            self.seen.clear()
        return {
            "received": len(seen),
            "distinct": len(set(seen)),
            "exact": sorted(seen) == list(range(count)),
            "in_order": seen == list(range(count)),
        }


def _udp(numbers: Numbers) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            data = sock.recv(65536)
            numbers.add([int(n) for n in NUMBER.findall(data)])

    threading.Thread(target=serve, daemon=True).start()
    return int(sock.getsockname()[1])


def _listen(handle: object) -> int:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()  # type: ignore[arg-type]

    threading.Thread(target=accept, daemon=True).start()
    return int(server.getsockname()[1])


def _tcp(numbers: Numbers) -> int:
    def handle(conn: socket.socket) -> None:
        rest = b""
        while data := conn.recv(262144):
            data = rest + data
            # a frame may be cut at the end of a read: keep what follows the last delimiter
            cut = max(data.rfind(b"\n"), data.rfind(b"\x00")) + 1
            rest = data[cut:]
            numbers.add([int(n) for n in NUMBER.findall(data[:cut])])
        numbers.add([int(n) for n in NUMBER.findall(rest)])

    return _listen(handle)


def _socket(numbers: Numbers) -> int:
    def handle(conn: socket.socket) -> None:
        buffer = b""
        while data := conn.recv(262144):
            buffer += data
            found = []
            while len(buffer) >= 4:
                (size,) = struct.unpack(">L", buffer[:4])
                if len(buffer) < 4 + size:
                    break
                state = pickle.loads(buffer[4 : 4 + size])  # our own bench sends these
                buffer = buffer[4 + size :]
                match = NUMBER.search(str(state["msg"]).encode())
                if match:
                    found.append(int(match.group(1)))
            numbers.add(found)

    return _listen(handle)


def _http(numbers: Numbers) -> int:
    import asyncio

    from aiohttp import web

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        found = []
        for line in body.splitlines():
            match = NUMBER.search(json.loads(line)["message"].encode())
            if match:
                found.append(int(match.group(1)))
        numbers.add(found)
        return web.Response()

    ready = threading.Event()
    port: list[int] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", receive)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait(10)
    return port[0]


def main() -> None:
    kind = sys.argv[1]
    if len(sys.argv) > 2:
        global NUMBER  # the one setting of this small script
        NUMBER = re.compile(sys.argv[2].encode())
    numbers = Numbers()
    port = {"udp": _udp, "tcp": _tcp, "socket": _socket, "http": _http}[kind](numbers)
    print(port, flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        count, timeout = line.split()
        started = time.monotonic()
        summary = numbers.summary(int(count), float(timeout))
        summary["waited"] = time.monotonic() - started
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
