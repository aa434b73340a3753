"""A trio TCP echo server whose logging goes through loopsink, on trio's own loop.

loopsink runs on trio as on asyncio (through anyio): ``loopsink.install`` starts the queue
inside ``trio.run`` and bridges the root logger into it, so the server's plain
``logging`` calls never wait on the disk. When the server stops, leaving ``install`` drains
the queue and closes the file.

By default the example drives itself: it serves on a free loopback port, runs five clients
that each send three lines and check the echoes, stops the server, and prints the log.
With ``--serve`` it echoes on 127.0.0.1:8007 until Ctrl-C (try ``nc 127.0.0.1 8007``) and
logs to ``trio_app.log`` in the current directory.

Run it with ``python examples/trio_app.py``; it takes well under a second.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

import trio

import loopsink

log = logging.getLogger("echo")
CLIENTS = 5
LINES = 3


async def handle_client(stream: trio.SocketStream) -> None:
    """Echo everything back; log the connection, each chunk and the disconnection."""
    peer = stream.socket.getpeername()
    log.info("connection from %s:%d", *peer[:2])
    async with stream:
        async for chunk in stream:
            log.info("echo %d bytes to %s:%d: %r", len(chunk), *peer[:2], chunk)
            await stream.send_all(chunk)
    log.info("%s:%d left", *peer[:2])


async def echo_server(
    port: int = 0, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve on 127.0.0.1:``port``; report the bound port through ``task_status``."""
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    bound = listeners[0].socket.getsockname()[1]
    log.info("echo server listening on 127.0.0.1:%d", bound)
    task_status.started(bound)
    await trio.serve_listeners(handle_client, listeners)


async def client(port: int, n: int) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        for i in range(LINES):
            line = f"client {n} line {i}\n".encode()
            await stream.send_all(line)
            echoed = b""
            while len(echoed) < len(line):
                echoed += await stream.receive_some()
            assert echoed == line, (echoed, line)


async def drive(log_file: Path) -> None:
    sink = loopsink.FileHandler(log_file)
    sink.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().setLevel(logging.INFO)
    async with loopsink.install(sink) as queue, trio.open_nursery() as nursery:
        port = await nursery.start(echo_server)
        async with trio.open_nursery() as clients:
            for n in range(CLIENTS):
                clients.start_soon(client, port, n)
        nursery.cancel_scope.cancel()  # stop the server
    print(f"queue stats: enqueued={queue.stats.enqueued}, dropped={queue.stats.dropped}")


def main() -> None:
    if "--serve" in sys.argv:

        async def serve() -> None:
            logging.getLogger().setLevel(logging.INFO)
            async with loopsink.install(loopsink.FileHandler("trio_app.log")):
                await echo_server(8007)

        trio.run(serve)
        return
    with tempfile.TemporaryDirectory() as tmp:
        log_file = Path(tmp) / "trio_app.log"
        trio.run(drive, log_file)
        lines = log_file.read_text().splitlines()
    print(f"{len(lines)} lines logged through loopsink on trio, e.g.:")
    for line in lines[:3]:
        print("  " + line)
    echoes = [line for line in lines if " echo " in line]
    assert len(echoes) >= CLIENTS, lines  # TCP may merge a client's lines into one chunk


if __name__ == "__main__":
    main()
