"""Scripts and servers in processes of their own, for the fork and gunicorn tests.

A forking case must not fork pytest's own process (it runs threads), so each runs a fresh
interpreter: a script given as text, or gunicorn on a loopback port. What those tests share
lives here: the interpreter's command line, the WSGI app that logs each request, a free
port, one request, a timed SIGTERM, and the checks that every line was written once.
tests/conftest.py has pytest rewrite this module's asserts, so a failure shows its values.
"""

from __future__ import annotations

import collections
import http.client
import signal
import socket
import subprocess
import sys
import time

#: How long any one step of a child process may take before the test fails.
DEADLINE = 60.0

#: A WSGI app logging two lines a request: ``request <tag> pid <pid>``, ``request <tag> done``.
WSGI_APP = """
import logging, os
log = logging.getLogger("app")

def app(environ, start_response):
    tag = environ["PATH_INFO"].strip("/")
    log.info("request %s pid %d", tag, os.getpid())
    log.info("request %s done", tag)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def python_command(*args: str) -> list[str]:
    """This interpreter's command line; 3.12+ warns of a fork with threads, the very case
    these tests run, so that warning is off."""
    return [sys.executable, "-W", "ignore::DeprecationWarning", *args]


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``args`` in a fresh interpreter; its output is captured, not checked."""
    return subprocess.run(
        python_command("-c", code, *args),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def free_port() -> int:
    """A loopback TCP port that was free a moment ago, for a server process to bind."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_status(port: int, path: str, *, timeout: float) -> int:
    """One GET on a connection of its own (as gunicorn's sync workers want): the status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def terminate(proc: subprocess.Popen[str]) -> tuple[str, float]:
    """SIGTERM, then wait for the exit: the stderr, and the seconds the shutdown took."""
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=DEADLINE)
    return err, time.monotonic() - start


def kill_if_running(proc: subprocess.Popen[str]) -> None:
    """After a failed step: no process is left behind."""
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def assert_no_line_twice(lines: list[str]) -> collections.Counter[str]:
    """No line written twice; returns how often each was written."""
    counts = collections.Counter(lines)
    assert [line for line, n in counts.items() if n > 1] == []
    return counts


def assert_each_request_logged_once(lines: list[str], requests: int) -> None:
    """Both of WSGI_APP's lines for each of the requests ``/r0`` … exactly once."""
    counts = collections.Counter(lines)
    for i in range(requests):
        assert sum(1 for line in lines if line.startswith(f"request r{i} pid ")) == 1, i
        assert counts[f"request r{i} done"] == 1, i
