"""uvicorn paths that used to lose or delay records: a forgotten lifespan, ``--workers``.

Each test runs a real uvicorn process configured by a ``--log-config`` file, as a user would.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from contrib_serving import listening_socket, start_on_socket

HERE = Path(__file__).parent
EXAMPLES = HERE.parents[1] / "examples"
REQUESTS = 200
WARNING = re.compile(
    r"^loopsink: handler 'loopsink' \(start='loop'\) has waited 0\.5 s for an event loop to "
    r"start its queue \(\d+ records held; the queue holds 100000\); they are written only at "
    r"exit\. Run the app with loopsink\.contrib\.fastapi\.lifespan\(\) \(or "
    r"loopsink\.config\.run_bridges\(\)\), or use start: 'auto'\.$"
)


def loop_config(log_file: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(name)s %(message)s"}},
        "handlers": {
            "loopsink": {
                "()": "loopsink.config.bridge",
                "start": "loop",
                "warn_after": 0.5,
                "capacity": 100_000,
                "formatter": "plain",
                "sinks": {"file": {"class": "FileHandler", "filename": str(log_file)}},
            }
        },
        "loggers": {
            "uvicorn": {"level": "INFO", "handlers": ["loopsink"], "propagate": False},
            "uvicorn.access": {"level": "WARNING"},
        },
        "root": {"level": "INFO", "handlers": ["loopsink"]},
    }


class StderrLines:
    """Read a process's stderr in a thread, so a test can wait for one line with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stderr is not None
        stream = proc.stderr
        self._stream = stream
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"stderr ended before {pattern.pattern}: {self.seen}"
            self.seen.append(line)
            if pattern.match(line):
                return line

    def rest(self) -> list[str]:
        """Every line, once the process has exited; closes the pipe."""
        self._thread.join(30)
        self._stream.close()
        while True:
            line = self.lines.get_nowait() if not self.lines.empty() else None
            if line is None:
                return self.seen
            self.seen.append(line)


@pytest.mark.parametrize(
    "sig", [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGINT, id="SIGINT")]
)
def test_a_forgotten_lifespan_warns_early_and_loses_nothing_at_the_signal(
    tmp_path: Path, sig: signal.Signals
) -> None:
    log_file = tmp_path / "app.log"
    config_file = tmp_path / "log-config.json"
    config_file.write_text(json.dumps(loop_config(log_file)))
    sock = listening_socket()
    proc, port = start_on_socket(
        sock,
        [
            *(sys.executable, "-m", "uvicorn", "app_no_lifespan:app", "--app-dir", str(HERE)),
            *("--fd", str(sock.fileno()), "--log-config", str(config_file)),
        ],
        stdout=subprocess.DEVNULL,
    )
    stderr = StderrLines(proc)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for n in range(REQUESTS):
                assert client.get(f"/work/{n}").status_code == 200
        # said early, while the server runs: nothing is written yet, and the user is told
        stderr.wait_for(WARNING, timeout=30)
        assert log_file.read_text() == ""
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        seen = stderr.rest()
    assert proc.returncode in (0, -sig)
    assert sum(bool(WARNING.match(line)) for line in seen) == 1, seen
    lines = log_file.read_text().splitlines()
    app_lines = [line for line in lines if line.startswith("app ")]
    # every request's line, once, in order
    assert app_lines == [f"app work {n}" for n in range(REQUESTS)]
    assert lines[0].startswith("uvicorn.error Started server process")
    # even uvicorn's last line, logged after its shutdown, just before the signal is re-raised
    assert lines[-1].startswith("uvicorn.error Finished server process")


def test_with_workers_the_supervisors_lines_are_written_at_once_and_in_order(
    tmp_path: Path,
) -> None:
    """The documented --log-config file and app, with two workers."""
    sock = listening_socket()
    proc, port = start_on_socket(
        sock,
        [
            *(sys.executable, "-m", "uvicorn", "--factory", "fastapi_app:config_app"),
            *("--app-dir", str(EXAMPLES), "--workers", "2", "--fd", str(sock.fileno())),
            *("--log-config", str(EXAMPLES / "uvicorn-log-config.yaml")),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    app_log = tmp_path / "app.log"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for n in range(20):
                assert client.get(f"/hello/u{n}").status_code == 200
        # both workers started: the supervisor's first line is already in the file
        deadline = time.monotonic() + 30
        while app_log.read_text().count("Application startup complete.") < 2:
            assert time.monotonic() < deadline, app_log.read_text()
            time.sleep(0.05)
        running = app_log.read_text().splitlines()
        started = [n for n, line in enumerate(running) if "Started server process" in line]
        (parent_started,) = [
            n
            for n, line in enumerate(running)
            if f"uvicorn.error: Started parent process [{proc.pid}]" in line
        ]
        assert parent_started < min(started)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    lines = app_log.read_text().splitlines()
    finished = [n for n, line in enumerate(lines) if "Finished server process" in line]
    assert len(finished) == 2, lines
    assert "Uvicorn running on socket" in lines[0]
    assert f"Started parent process [{proc.pid}]" in lines[1]
    # the supervisor's last line comes after its workers' last lines
    assert f"Stopping parent process [{proc.pid}]" in lines[-1]
    assert max(finished) < len(lines) - 1


SIGTERM_SCRIPT = """
import json, logging, logging.config, os, signal, sys
logging.config.dictConfig(json.loads(sys.argv[1]))
log = logging.getLogger("app")
for n in range(1000):
    log.info("line %d", n)
os.kill(os.getpid(), signal.SIGTERM)
"""


@pytest.mark.parametrize("start", ["loop", "auto", "thread"])
def test_sigterm_with_its_default_action_delivers_what_the_bridges_hold(
    tmp_path: Path, start: str
) -> None:
    log_file = tmp_path / "app.log"
    config = loop_config(log_file)
    config["handlers"]["loopsink"]["start"] = start
    del config["handlers"]["loopsink"]["warn_after"]
    proc = subprocess.run(
        [sys.executable, "-c", SIGTERM_SCRIPT, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    app_lines = [x for x in log_file.read_text().splitlines() if x.startswith("app ")]
    assert app_lines == [f"app line {n}" for n in range(1000)]


def test_an_applications_own_sigterm_handler_is_kept(tmp_path: Path) -> None:
    script = """
import json, logging.config, signal, sys
def mine(signum, frame):
    pass
signal.signal(signal.SIGTERM, mine)
logging.config.dictConfig(json.loads(sys.argv[1]))
assert signal.getsignal(signal.SIGTERM) is mine
print("kept")
"""
    config = loop_config(tmp_path / "app.log")
    del config["handlers"]["loopsink"]["warn_after"]
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOOPSINK_")},
    )
    assert proc.stdout == "kept\n", proc.stderr
