"""gunicorn, as users deploy it: every record of master and workers written once (#22 item 1).

Each case starts a real gunicorn on a loopback port with 2 workers, logging set up in the
config file (imported by the master, so the workers inherit it by fork, with or without
``--preload``): the master's hooks log (``on_starting``, ``when_ready``, ``on_exit``), the
workers' hooks log (``post_fork``, ``worker_exit``), the app logs two records per request.
After SIGTERM every line must be in the file exactly once, gunicorn must have killed no
worker, and the shutdown must take about as long as with the stdlib's ``FileHandler`` set up
the same way, measured in the same test.
"""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from servers.processes import (
    DEADLINE,
    WSGI_APP,
    assert_each_request_logged_once,
    assert_no_line_twice,
    free_port,
    get_status,
    kill_if_running,
    python_command,
    terminate,
)

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="gunicorn needs os.fork"),
]
gunicorn = pytest.importorskip("gunicorn")

REQUESTS = 60
WORKERS = 2

SETUP = {
    "stdlib": """
        handler = logging.FileHandler(LOG)
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
    """,
    "start_in_thread": """
        import loopsink
        loopsink.start_in_thread(loopsink.FileHandler(LOG), level=logging.INFO)
        logging.getLogger().setLevel(logging.INFO)
    """,
    "dictConfig": """
        import logging.config
        logging.config.dictConfig({
            "version": 1,
            "handlers": {"ls": {
                "()": "loopsink.config.bridge",
                "start": "thread",
                "sinks": [{"class": "FileHandler", "filename": LOG}],
            }},
            "root": {"level": "INFO", "handlers": ["ls"]},
        })
    """,
}

CONF = """
import logging, os, socket
LOG = os.environ["APP_LOG"]
{setup}
hooks = logging.getLogger("hooks")

def on_starting(server):
    hooks.info("on_starting %d", os.getpid())

def when_ready(server):
    hooks.info("when_ready %d", os.getpid())
    with socket.create_connection(("127.0.0.1", int(os.environ["READY_PORT"]))) as ready:
        ready.sendall(b"ready")

def post_fork(server, worker):
    hooks.info("post_fork %d", os.getpid())

def post_worker_init(worker):
    # the worker's SIGTERM handler is set: from now on a SIGTERM runs worker_exit
    with socket.create_connection(("127.0.0.1", int(os.environ["READY_PORT"]))) as ready:
        ready.sendall(b"worker")

def worker_exit(server, worker):
    hooks.info("worker_exit %d", os.getpid())

def on_exit(server):
    hooks.info("on_exit %d", os.getpid())
"""

ASGI_APP = """
import logging, os
log = logging.getLogger("app")

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    tag = scope["path"].strip("/")
    log.info("request %s pid %d", tag, os.getpid())
    log.info("request %s done", tag)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
"""


@dataclass
class Served:
    lines: list[str]
    shutdown: float
    stderr: str


def serve(tmp_path: Path, setup: str, *, preload: bool, worker_class: str = "sync") -> Served:
    """Run gunicorn with logging set up by ``setup``, serve REQUESTS requests, SIGTERM it."""
    case = tmp_path / f"{setup}-{preload}-{worker_class.rsplit('.', 1)[-1]}"
    case.mkdir()
    (case / "conf.py").write_text(CONF.format(setup=textwrap.dedent(SETUP[setup])))
    asgi = worker_class != "sync"
    (case / "caseapp.py").write_text(ASGI_APP if asgi else WSGI_APP)
    log_path = case / "app.log"
    port = free_port()
    with socket.create_server(("127.0.0.1", 0)) as ready:
        ready.settimeout(DEADLINE)
        env = {
            **os.environ,
            "APP_LOG": str(log_path),
            "READY_PORT": str(ready.getsockname()[1]),
            "PYTHONPATH": str(case),
        }
        command = python_command(
            "-m",
            "gunicorn",
            "--config",
            str(case / "conf.py"),
            "--workers",
            str(WORKERS),
            "--worker-class",
            worker_class,
            "--bind",
            f"127.0.0.1:{port}",
            *(["--preload"] if preload else []),
            "caseapp:app",
        )
        proc = subprocess.Popen(
            command,
            cwd=case,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            try:
                conn, _ = ready.accept()  # when_ready: the master listens
            except TimeoutError:
                proc.kill()
                err = proc.communicate()[1][-3000:]
                raise AssertionError(f"gunicorn did not start: {err}") from None
            with conn:
                conn.settimeout(DEADLINE)
                assert conn.recv(5) == b"ready"
            # Until a worker has set its signal handlers, SIGTERM kills it without its
            # worker_exit hook: on a slow machine one worker could still be starting when
            # the other had served every request.
            for _ in range(WORKERS):
                conn, _ = ready.accept()
                with conn:
                    conn.settimeout(DEADLINE)
                    assert conn.recv(6) == b"worker"
            for i in range(REQUESTS):  # a worker takes each from the backlog once it runs
                assert get_status(port, f"/r{i}", timeout=DEADLINE) == 200
            err, shutdown = terminate(proc)
        finally:
            kill_if_running(proc)
    assert proc.returncode == 0, err[-3000:]
    return Served(log_path.read_text().splitlines(), shutdown, err)


def assert_every_line_once(served: Served, *, worker_exit: bool = True) -> None:
    assert "WORKER TIMEOUT" not in served.stderr, served.stderr[-3000:]
    assert "loopsink" not in served.stderr, served.stderr[-3000:]
    lines = served.lines
    assert_no_line_twice(lines)
    by_kind = collections.Counter(line.split(" ", 1)[0] for line in lines)
    master = {by_kind[kind] for kind in ("on_starting", "when_ready", "on_exit")}
    assert master == {1}, by_kind
    assert by_kind["post_fork"] >= WORKERS, by_kind  # a worker may be respawned, never lost
    # gunicorn runs worker_exit after a sync worker's loop; uvicorn's worker ends without it
    exits = by_kind["post_fork"] if worker_exit else 0
    assert by_kind["worker_exit"] == exits, by_kind
    assert_each_request_logged_once(lines, REQUESTS)
    assert len(lines) == 3 + by_kind["post_fork"] + exits + 2 * REQUESTS


def assert_shutdown_like_stdlib(ours: Served, stdlib: Served) -> None:
    # generous: the machine is shared; a hang would wait out the 30 s graceful timeout
    assert ours.shutdown <= 3 * stdlib.shutdown + 1.0, (ours.shutdown, stdlib.shutdown)


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no-preload"])
@pytest.mark.parametrize("route", ["start_in_thread", "dictConfig"])
def test_sync_workers_write_every_record_of_master_and_workers_once(
    tmp_path: Path, route: str, preload: bool
) -> None:
    """Once with --preload: workers froze (WORKER TIMEOUT), lost their lines, SIGTERM took
    the whole graceful timeout."""
    stdlib = serve(tmp_path, "stdlib", preload=preload)
    assert_every_line_once(stdlib)  # the test's own expectations hold for the stdlib
    ours = serve(tmp_path, route, preload=preload)
    assert_every_line_once(ours)
    assert_shutdown_like_stdlib(ours, stdlib)


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no-preload"])
def test_uvicorn_workers_write_every_record_of_master_and_workers_once(
    tmp_path: Path, preload: bool
) -> None:
    pytest.importorskip("uvicorn.workers")
    worker = "uvicorn.workers.UvicornWorker"
    stdlib = serve(tmp_path, "stdlib", preload=preload, worker_class=worker)
    assert_every_line_once(stdlib, worker_exit=False)
    ours = serve(tmp_path, "start_in_thread", preload=preload, worker_class=worker)
    assert_every_line_once(ours, worker_exit=False)
    assert_shutdown_like_stdlib(ours, stdlib)
