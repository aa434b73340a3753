"""examples/trio_app.py: a trio TCP echo server logging through loopsink, on trio's loop."""

from __future__ import annotations

import logging
import re
from types import ModuleType

import pytest
import trio
import trio.testing

import loopsink
from helpers import load_example
from loopsink.testing import CapturingSink


@pytest.fixture(scope="module")
def trio_app() -> ModuleType:
    return load_example("trio_app.py", "trio_app_example")


def test_echo_server_echoes_and_every_log_line_arrives(trio_app: ModuleType) -> None:
    sink = CapturingSink()
    payloads = [f"client {n} line {i}\n".encode() for n in range(4) for i in range(3)]
    echoed: list[bytes] = []

    async def one_client(port: int, n: int) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            for i in range(3):
                line = f"client {n} line {i}\n".encode()
                await stream.send_all(line)
                got = b""
                while len(got) < len(line):
                    got += await stream.receive_some()
                echoed.append(got)

    async def main() -> None:
        logging.getLogger().setLevel(logging.INFO)
        with trio.fail_after(20):
            async with loopsink.install(sink, logger="echo") as queue:
                assert queue.running
                async with trio.open_nursery() as nursery:
                    port = await nursery.start(trio_app.echo_server)
                    async with trio.open_nursery() as clients:
                        for n in range(4):
                            clients.start_soon(one_client, port, n)
                    # wait for the server side to log every disconnection, then stop it
                    while sum(m.endswith(" left") for m in sink.messages) < 4:
                        await queue.flush()
                        await trio.testing.wait_all_tasks_blocked()
                    nursery.cancel_scope.cancel()

    trio.run(main)
    assert sorted(echoed) == sorted(payloads)
    messages = sink.messages
    assert re.fullmatch(r"echo server listening on 127\.0\.0\.1:\d+", messages[0])
    assert sum(m.startswith("connection from 127.0.0.1:") for m in messages) == 4
    echoed_bytes = sum(
        int(match.group(1)) for m in messages if (match := re.match(r"echo (\d+) bytes", m))
    )
    assert echoed_bytes == sum(map(len, payloads))
    assert sum(m.endswith(" left") for m in messages) == 4
    assert all(r.name == "echo" for r in sink.records)


def test_the_example_runs_by_itself(
    trio_app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    trio_app.main()
    out = capsys.readouterr().out
    assert "dropped={}" in out
    assert "lines logged through loopsink on trio" in out
