"""Drive a real server process: traffic, requests in flight at the signal, a deadline."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

WORK = 100
SLOW = 5


def listening_socket() -> socket.socket:
    """A socket bound to a free loopback port, listening: requests queue until the server
    process accepts them, so no readiness polling is needed."""
    sock = socket.socket()
    # uvicorn takes a --fd socket as a Unix one and so never sets TCP_NODELAY on the
    # connections it accepts; Linux hands the listener's setting down to them. Without it
    # each answer written in two parts waits for the client's delayed ACK (40 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    return sock


def start_on_socket(
    sock: socket.socket, args: list[str], **popen: Any
) -> tuple[subprocess.Popen[str], int]:
    """Start a server process that serves on ``sock`` (its descriptor is in ``args``): the
    process shares the socket, this side closes its copy. Returns the process and its port.
    stderr is piped, the rest as ``popen`` says (stdout, cwd, env)."""
    proc = subprocess.Popen(
        args, pass_fds=[sock.fileno()], stderr=subprocess.PIPE, text=True, **popen
    )
    port = int(sock.getsockname()[1])
    sock.close()
    return proc, port


def traffic_then_signal(
    proc: subprocess.Popen[str], port: int, sig: signal.Signals
) -> tuple[str, str]:
    """Send WORK requests, start SLOW ones, signal the server while they run, wait for exit.

    Returns the server's stdout and stderr.
    """
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client, ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda n: client.get(f"/work/{n}").status_code, range(WORK)))
            assert statuses == [200] * WORK
            slow = [pool.submit(client.get, f"/slow/{n}") for n in range(SLOW)]
            deadline = time.monotonic() + 20
            # wait (bounded) until every slow request is inside the app, then signal
            while client.get("/inflight").json()["n"] < SLOW:
                assert time.monotonic() < deadline, "the slow requests never started"
            proc.send_signal(sig)
            assert [f.result().status_code for f in slow] == [200] * SLOW
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return out, err


def expected_app_lines() -> list[str]:
    return (
        [f"work {n}" for n in range(WORK)]
        + [f"slow {n} begin" for n in range(SLOW)]
        + [f"slow {n} end" for n in range(SLOW)]
    )
