"""loopsink.contrib.aiohttp in a real aiohttp.web server process, stopped by SIGTERM and SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from aiohttp import web
from contrib_serving import (
    SLOW,
    WORK,
    expected_app_lines,
    listening_socket,
    start_on_socket,
    traffic_then_signal,
)

from loopsink.contrib.aiohttp import QUEUES, cleanup_ctx
from loopsink.testing import CapturingSink

HERE = Path(__file__).parent


@pytest.mark.parametrize(
    "sig", [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGINT, id="SIGINT")]
)
def test_cleanup_ctx_writes_every_request_before_the_server_exits(
    tmp_path: Path, sig: signal.Signals
) -> None:
    log_file = tmp_path / "app.log"
    sock = listening_socket()
    proc, port = start_on_socket(
        sock,
        [sys.executable, str(HERE / "app_aiohttp.py"), str(sock.fileno()), str(log_file)],
        stdout=subprocess.PIPE,
    )
    _, err = traffic_then_signal(proc, port, sig)
    assert proc.returncode == 0, err
    lines = log_file.read_text().splitlines()
    app_lines = [line.removeprefix("app ") for line in lines if line.startswith("app ")]
    assert Counter(app_lines) == Counter(expected_app_lines()), err
    # aiohttp's access log went through the same bridge (root logger), once per request
    access = [line for line in lines if line.startswith("aiohttp.access ")]
    for path in [f"/work/{n}" for n in range(WORK)] + [f"/slow/{n}" for n in range(SLOW)]:
        assert sum(f'"GET {path} HTTP/1.1" 200' in line for line in access) == 1, path


def test_cleanup_ctx_in_process_with_app_runner() -> None:
    """The helper with aiohttp's own runner (asyncio only: aiohttp is asyncio-only)."""
    sink = CapturingSink()

    async def main() -> None:
        app = web.Application()
        app.cleanup_ctx.append(cleanup_ctx(sink, logger="app"))
        runner = web.AppRunner(app)
        await runner.setup()
        (queue,) = app[QUEUES]
        logging.getLogger("app").warning("while serving")
        assert queue.running
        await runner.cleanup()
        assert queue.closed

    asyncio.run(main())
    assert sink.messages == ["while serving"]
