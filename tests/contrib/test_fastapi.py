"""loopsink.contrib.fastapi under a real uvicorn process, stopped by SIGTERM and SIGINT."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from contrib_serving import (
    SLOW,
    WORK,
    expected_app_lines,
    listening_socket,
    start_on_socket,
    traffic_then_signal,
)
from fastapi import FastAPI

import loopsink
from loopsink.contrib.fastapi import lifespan
from loopsink.testing import CapturingSink

HERE = Path(__file__).parent
SIGNALS = [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGINT, id="SIGINT")]


def log_config(log_file: Path) -> dict[str, object]:
    """A uvicorn --log-config: uvicorn's own loggers and the app's through one bridge."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(name)s %(message)s"}},
        "handlers": {
            "loopsink": {
                "()": "loopsink.config.bridge",
                "start": "loop",
                "sinks": {"file": {"class": "FileHandler", "filename": str(log_file)}},
                "formatter": "plain",
            }
        },
        "loggers": {
            "uvicorn": {"level": "INFO", "handlers": ["loopsink"], "propagate": False},
            "uvicorn.access": {"level": "INFO", "handlers": ["loopsink"], "propagate": False},
        },
        "root": {"level": "INFO", "handlers": ["loopsink"]},
    }


def serve(tmp_path: Path, *, via_config: bool) -> tuple[subprocess.Popen[str], int, Path]:
    log_file = tmp_path / "app.log"
    sock = listening_socket()
    args = [sys.executable, "-m", "uvicorn", "app_fastapi:app", "--app-dir", str(HERE)]
    args += ["--fd", str(sock.fileno())]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPSINK_")}
    if via_config:
        config_file = tmp_path / "log-config.json"
        config_file.write_text(json.dumps(log_config(log_file)))
        args += ["--log-config", str(config_file)]
    else:
        env["LOOPSINK_TEST_LOG"] = str(log_file)
    proc, port = start_on_socket(
        sock,
        args,
        env=env,
        stdout=subprocess.PIPE,
    )
    return proc, port, log_file


def exited_by(proc: subprocess.Popen[str], sig: signal.Signals) -> bool:
    # uvicorn re-raises the signal once it has shut down: SIGTERM then ends the process,
    # SIGINT becomes KeyboardInterrupt, which Python turns into the same signal at exit.
    return proc.returncode in (0, -sig)


@pytest.mark.parametrize("sig", SIGNALS)
def test_lifespan_with_sinks_writes_every_request_before_uvicorn_exits(
    tmp_path: Path, sig: signal.Signals
) -> None:
    proc, port, log_file = serve(tmp_path, via_config=False)
    _, err = traffic_then_signal(proc, port, sig)
    assert exited_by(proc, sig), err
    lines = log_file.read_text().splitlines()
    assert Counter(lines) == Counter(expected_app_lines()), err


@pytest.mark.parametrize("sig", SIGNALS)
def test_log_config_routes_uvicorn_and_app_loggers_through_the_bridge(
    tmp_path: Path, sig: signal.Signals
) -> None:
    proc, port, log_file = serve(tmp_path, via_config=True)
    _, err = traffic_then_signal(proc, port, sig)
    assert exited_by(proc, sig), err
    # everything went through loopsink, nothing to uvicorn's default stderr handler
    assert "Uvicorn running" not in err
    lines = log_file.read_text().splitlines()
    app_lines = [line.removeprefix("app ") for line in lines if line.startswith("app ")]
    assert Counter(app_lines) == Counter(expected_app_lines()), err
    access = [line for line in lines if line.startswith("uvicorn.access ")]
    for n in range(WORK):
        assert sum(f'"GET /work/{n} HTTP/1.1" 200' in line for line in access) == 1
    for n in range(SLOW):
        assert sum(f'"GET /slow/{n} HTTP/1.1" 200' in line for line in access) == 1
    # logged before the lifespan started (kept in the intake) and during shutdown
    assert any(line.startswith("uvicorn.error Started server process") for line in lines)
    assert "uvicorn.error Waiting for application shutdown." in lines
    if sig == signal.SIGINT:
        # KeyboardInterrupt lets Python run logging.shutdown() at exit, which delivers
        # even uvicorn's last line, logged after the lifespan had ended
        assert any(line.startswith("uvicorn.error Finished server process") for line in lines)


async def test_lifespan_runs_sinks_and_app_lifespan_in_process() -> None:
    """The helper itself, on both backends: Starlette enters app.router.lifespan_context."""
    sink = CapturingSink()
    events: list[str] = []

    @asynccontextmanager
    async def mine(app: FastAPI) -> AsyncIterator[dict[str, int]]:
        logging.getLogger("app").warning("app starting")
        events.append("start")
        yield {"answer": 42}
        logging.getLogger("app").warning("app stopping")

    app = FastAPI(lifespan=lifespan(sink, logger="app", app_lifespan=mine))
    async with app.router.lifespan_context(app) as state:
        assert state == {"answer": 42}
        (queue,) = app.state.loopsink
        assert isinstance(queue, loopsink.LogQueue)
        logging.getLogger("app").warning("serving")
    assert sink.messages == ["app starting", "serving", "app stopping"]
    assert logging.getLogger("app").handlers == []
    assert events == ["start"]


async def test_lifespan_with_nothing_to_run_says_so() -> None:
    app = FastAPI(lifespan=lifespan())
    with pytest.raises(ValueError, match=r"^nothing to run: pass sinks"):
        async with app.router.lifespan_context(app):
            pass


@pytest.mark.parametrize("sig", SIGNALS)
def test_the_documented_uvicorn_log_config_file_works(tmp_path: Path, sig: signal.Signals) -> None:
    """examples/uvicorn-log-config.yaml with examples/fastapi_app.py's config_app factory."""
    examples = HERE.parents[1] / "examples"
    sock = listening_socket()
    proc, port = start_on_socket(
        sock,
        [
            *(sys.executable, "-m", "uvicorn", "--factory", "fastapi_app:config_app"),
            *("--app-dir", str(examples), "--fd", str(sock.fileno())),
            *("--log-config", str(examples / "uvicorn-log-config.yaml")),
        ],
        cwd=tmp_path,  # the file names its log files relative to the working directory
        stdout=subprocess.PIPE,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for n in range(20):
                assert client.get(f"/hello/u{n}").status_code == 200
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert exited_by(proc, sig), err
    app_log = (tmp_path / "app.log").read_text()
    access_log = (tmp_path / "access.log").read_text().splitlines()
    for n in range(20):
        assert f"INFO     app: said hello to u{n}\n" in app_log
        assert sum(f'"GET /hello/u{n} HTTP/1.1" 200' in line for line in access_log) == 1
    assert "uvicorn.error: Started server process" in app_log
    assert "uvicorn.error: Waiting for application shutdown." in app_log
