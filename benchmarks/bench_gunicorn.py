"""A Flask app under gunicorn sync workers, loaded by wrk: what logging costs a WSGI service.

Two sync workers serve ``benchmarks/gunicorn_app.py`` (two lines per request); logging is
set up in the gunicorn config, imported by the master (``benchmarks/gunicorn_conf.py``):

- no logging (the baseline);
- the stdlib ``RotatingFileHandler`` on the root logger;
- loopsink: ``start_in_thread`` with ``RotatingFileHandler(multiprocess=True)``, as
  docs/guides/legacy-sync.md says.

Each with and without ``--preload``, loaded in turn (alternating, several rounds) by ``wrk``
(a new connection per request: sync workers close each one). After each run gunicorn is
stopped with SIGTERM and every request the workers counted must have its two lines in the
file exactly once. Requests/s and p99 are given as ratios to no logging and to the stdlib.

Without ``wrk`` (scripts/system-deps.sh installs it) a Python load generator stands in.

Run alone: ``python benchmarks/bench_gunicorn.py [--quick]``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path

from _common import (
    LoadResult,
    Row,
    Section,
    ServerProcess,
    assert_no_line_twice,
    best_of_rounds,
    free_port,
    run_alone,
    run_python_load,
    run_wrk,
    verified_lines_note,
)

HERE = Path(__file__).resolve().parent
CONNECTIONS = 8
#: loopsink's requests/s at least the stdlib handler's (issue #22)
TARGET = 1.0
MODES = ("none", "stdlib", "loopsink")
NAMES = {
    "none": "no logging",
    "stdlib": "stdlib RotatingFileHandler",
    "loopsink": "loopsink start_in_thread + RotatingFileHandler(multiprocess=True)",
}

LOAD = """
import json, sys, threading, time, http.client
port, seconds, connections = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
latencies, lock = [], threading.Lock()
until = time.perf_counter() + seconds
def work(k):
    n = k * 1_000_000
    while time.perf_counter() < until:
        n += 1
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", f"/items/{n}")
        reply = conn.getresponse(); reply.read(); conn.close()
        assert reply.status == 200, reply.status
        with lock:
            latencies.append(time.perf_counter() - started)
start = time.perf_counter()
threads = [threading.Thread(target=work, args=(k,)) for k in range(connections)]
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.perf_counter() - start
latencies.sort()
print(json.dumps({"rps": len(latencies) / elapsed,
                  "p50_ms": latencies[int(len(latencies) * 0.5)] * 1e3,
                  "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3}))
"""


class Gunicorn(ServerProcess):
    """One gunicorn (2 sync workers) serving the app with one way of logging."""

    stop_signal = signal.SIGTERM
    get_timeout = 30.0

    def __init__(self, mode: str, preload: bool, workdir: Path) -> None:
        self.log_file = workdir / f"{mode}-{preload}.log"
        self.log_file.unlink(missing_ok=True)
        Path(f"{self.log_file}.lock").unlink(missing_ok=True)
        port = free_port()
        env = dict(
            os.environ,
            BENCH_GUNICORN_MODE=mode,
            BENCH_GUNICORN_LOG=str(self.log_file),
            PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        )
        args = [sys.executable, "-W", "ignore::DeprecationWarning", "-m", "gunicorn"]
        args += ["--config", "python:gunicorn_conf", "--bind", f"127.0.0.1:{port}"]
        args += ["--preload"] if preload else []
        args += ["gunicorn_app:app"]
        super().__init__("gunicorn", args, env=env, port=port, cwd=workdir, start_timeout=60)


def load(port: int, seconds: float) -> LoadResult:
    """A new connection per request (sync workers close each one): wrk, or the Python load
    generator where wrk is not installed."""
    if shutil.which("wrk"):
        url = f"http://127.0.0.1:{port}/items/1"
        return run_wrk(url, connections=CONNECTIONS, seconds=seconds, errors=r"Non-2xx")
    return run_python_load(["-c", LOAD, str(port), str(seconds), str(CONNECTIONS)])


LINE = re.compile(r" INFO app: item (\d+) (start|done)")


def verify(log_file: Path, served: int) -> str:
    """Both lines of every request the workers counted, exactly once each."""
    seen: Counter[tuple[int, str]] = Counter()
    with log_file.open() as lines:
        for line in lines:
            found = LINE.search(line)
            if found:
                seen[int(found.group(1)), found.group(2)] += 1
    assert_no_line_twice(seen)
    expected = {(seq, step) for seq in range(1, served + 1) for step in ("start", "done")}
    missing = expected - set(seen)
    assert not missing, f"{len(missing)} lines missing, e.g. {sorted(missing)[:5]}"
    extra = set(seen) - expected
    assert not extra, f"{len(extra)} lines of requests never counted, e.g. {sorted(extra)[:5]}"
    return f"{served} requests, {2 * served} lines"


def measure(
    mode: str, preload: bool, seconds: float, workdir: Path
) -> tuple[LoadResult, str, float]:
    server = Gunicorn(mode, preload, workdir)
    try:
        load(server.port, min(1.0, seconds))  # warm-up
        result = load(server.port, seconds)
    finally:
        server.stop()
    served_file = Path(f"{server.log_file}.served")  # written by the master's on_exit
    served = int(served_file.read_text())
    served_file.unlink()
    if server.process.returncode != 0:
        raise RuntimeError(f"{mode}: gunicorn exited {server.process.returncode}: {server.stderr}")
    if "WORKER TIMEOUT" in server.stderr:
        raise RuntimeError(f"{mode}: gunicorn killed a worker:\n{server.stderr[-2000:]}")
    check = f"{served} requests" if mode == "none" else verify(server.log_file, served)
    return result, check, server.shutdown


def run(quick: bool) -> list[Section]:
    seconds = 3.0 if quick else 10.0
    rounds = 1 if quick else 3
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for preload in (False, True):
            runs: dict[str, list[LoadResult]] = {mode: [] for mode in MODES}
            checks: dict[str, str] = {}
            shutdowns: dict[str, float] = {}
            for k in range(rounds):  # alternating, so that a noisy minute hits every mode
                for mode in MODES if k % 2 == 0 else MODES[::-1]:
                    result, check, shutdown = measure(mode, preload, seconds, workdir)
                    runs[mode].append(result)
                    checks[mode] = check
                    shutdowns[mode] = max(shutdowns.get(mode, 0.0), shutdown)
            best = {mode: best_of_rounds(results) for mode, results in runs.items()}
            base, std = best["none"], best["stdlib"]
            rows = []
            for mode in MODES:
                figures = best[mode]
                ours = mode == "loopsink"
                versus_std = figures.rps / std.rps
                rows.append(
                    Row(
                        f"{NAMES[mode]}: requests/s (ratio to no logging)",
                        figures.rps,
                        "req/s",
                        figures.rps / base.rps,
                    )
                )
                if ours:
                    rows.append(
                        Row(
                            f"{NAMES[mode]}: requests/s, ratio to the stdlib's",
                            figures.rps,
                            "req/s",
                            versus_std,
                            f">= {TARGET:.1f}x",
                            versus_std >= TARGET,
                        )
                    )
                rows.append(
                    Row(f"{NAMES[mode]}: p99", figures.p99_ms, "ms", figures.p99_ms / base.p99_ms)
                )
            generator = "wrk" if shutil.which("wrk") else "the Python load generator (no wrk)"
            notes = (
                f"2 sync workers, {generator}, {CONNECTIONS} connections, {seconds:g} s per "
                f"run, {rounds} alternating round(s), best of the rounds; ratios to *no "
                "logging* unless said. SIGTERM to exit, slowest of the rounds: "
                + ", ".join(f"{NAMES[m]} {shutdowns[m]:.1f} s" for m in MODES)
                + ". "
                + verified_lines_note({NAMES[m]: checks[m] for m in MODES}, baseline=NAMES["none"])
            )
            flag = "--preload" if preload else "no --preload"
            title = f"A Flask app under gunicorn sync workers ({flag})"
            sections.append(Section(title, rows, notes))
    return sections


if __name__ == "__main__":
    run_alone(run, __doc__, name_width=90, value_width=9)
