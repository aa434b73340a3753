"""A FastAPI service under a real uvicorn, loaded by wrk: what logging costs the service.

The app (benchmarks/service_app.py) has two endpoints logging two and three lines per
request, plus uvicorn's access log: six ways of logging, each in its own uvicorn process,
loaded in turn (alternating, several rounds) by ``wrk`` over keep-alive connections:

- no logging at all (the baseline);
- the stdlib ``NullHandler`` from uvicorn's ``--log-config``: every record made (the app's
  and uvicorn's access log), none written, which is what logging costs the service before
  any handler does its work (a ceiling for every handler's throughput);
- the stdlib ``FileHandler`` from uvicorn's ``--log-config``;
- the stdlib ``QueueHandler`` + ``QueueListener`` + ``FileHandler`` from the same file;
- loopsink through uvicorn's ``--log-config`` (a bridge, ``start: auto``) and the lifespan
  without sinks, as the FastAPI guide shows;
- loopsink through the lifespan helper with a ``FileHandler`` sink on the root logger.

Requests/s and the p50/p99 latencies that wrk reports are given as ratios to the baseline.
After each run the server is stopped (SIGINT) and every request's lines are checked in the
log file: each request the app served has its two or three lines exactly once, and uvicorn's
access log a line for each request.

Without ``wrk`` (Debian's package, installed by scripts/system-deps.sh) a small Python load
generator in a subprocess stands in; its figures are lower, the ratios comparable.

Run alone: ``python benchmarks/bench_service.py [--quick]``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    SIGINT_EXIT_CODES,
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
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONNECTIONS = 32
THROUGHPUT_TARGET = 0.85
P99_TARGET = 1.2

#: wrk asks for the two endpoints in turn.
WRK_SCRIPT = """
local i = 0
request = function()
  i = i + 1
  if i % 2 == 0 then
    return wrk.format(nil, "/items/" .. i)
  end
  return wrk.format(nil, "/orders/" .. i)
end
"""


@dataclass
class Config:
    name: str
    mode: str
    loopsink: bool = False


CONFIGS = [
    Config("no logging", "none"),
    Config("stdlib NullHandler (--log-config): records made, nothing written", "null"),
    Config("stdlib FileHandler (--log-config)", "stdlib"),
    Config("stdlib QueueHandler + QueueListener (--log-config)", "stdlib_queue"),
    Config("loopsink via uvicorn --log-config (start: auto)", "config", loopsink=True),
    Config("loopsink via the lifespan helper", "lifespan", loopsink=True),
]


def log_config(mode: str, log_file: Path) -> dict[str, Any]:
    """The ``--log-config`` dictionary of one way of logging."""
    formatters = {"plain": {"format": FORMAT}}
    if mode == "none":
        handler: dict[str, Any] | None = None
    elif mode == "null":
        handler = {"class": "logging.NullHandler"}
    elif mode == "stdlib":
        handler = {"class": "logging.FileHandler", "filename": str(log_file)}
    elif mode == "stdlib_queue":
        handler = {"()": "service_app.stdlib_queue", "filename": str(log_file)}
    elif mode == "config":
        handler = {
            "()": "loopsink.config.bridge",
            "sinks": {"file": {"class": "FileHandler", "filename": str(log_file)}},
        }
    else:  # lifespan: the loggers propagate to the root, where the lifespan's bridge sits
        handler = None
    handlers = {"main": {**handler, "formatter": "plain"}} if handler else {}
    names = ["main"] if handler else []
    level = "WARNING" if mode == "none" else "INFO"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "handlers": handlers,
        "loggers": {
            "uvicorn": {"level": level, "handlers": names, "propagate": not names},
            "uvicorn.access": {"level": level, "propagate": True},
        },
        "root": {"level": level, "handlers": names},
    }


class Server(ServerProcess):
    """One uvicorn process serving the app in one way of logging."""

    def __init__(self, config: Config, workdir: Path) -> None:
        self.log_file = workdir / f"{config.mode}.log"
        self.log_file.unlink(missing_ok=True)
        config_file = workdir / f"{config.mode}.json"
        config_file.write_text(json.dumps(log_config(config.mode, self.log_file)))
        # --port, not --fd: uvicorn takes a passed descriptor for a unix socket, and asyncio
        # then leaves Nagle's algorithm on for its connections (40 ms per response)
        port = free_port()
        env = dict(
            os.environ,
            BENCH_SERVICE_MODE=config.mode,
            BENCH_SERVICE_LOG=str(self.log_file),
            PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        )
        args = [sys.executable, "-m", "uvicorn", "--factory", "service_app:make_app"]
        args += ["--host", "127.0.0.1", "--port", str(port)]
        args += ["--log-config", str(config_file)]
        args += ["--no-use-colors", "--timeout-graceful-shutdown", "10"]
        if config.mode == "none":
            args.append("--no-access-log")
        super().__init__("uvicorn", args, env=env, port=port)


def load(port: int, seconds: float, workdir: Path) -> LoadResult:
    """The service's two endpoints in turn over CONNECTIONS keep-alive connections: wrk,
    or the Python load generator where wrk is not installed."""
    if shutil.which("wrk"):
        script = workdir / "requests.lua"
        script.write_text(WRK_SCRIPT)
        url = f"http://127.0.0.1:{port}"
        return run_wrk(url, connections=CONNECTIONS, seconds=seconds, script=script)
    generator = str(HERE / "service_load.py")
    return run_python_load([generator, str(port), str(seconds), str(CONNECTIONS)])


LINE = re.compile(r" INFO app: (item|order) (\d+) (\w+)")
ACCESS = re.compile(r' INFO uvicorn\.access: .*"GET /(items|orders|stats)\S* HTTP/1\.1" 200')


def verify(log_file: Path, served: int) -> str:
    """Every served request's lines exactly once; one access line per request. Returns a
    summary; raises AssertionError naming what is wrong."""
    per_request: Counter[int] = Counter()
    kinds: dict[int, str] = {}
    seen: Counter[tuple[int, str]] = Counter()
    access = 0
    with log_file.open() as lines:
        for line in lines:
            found = LINE.search(line)
            if found:
                kind, seq, step = found.group(1), int(found.group(2)), found.group(3)
                per_request[seq] += 1
                kinds[seq] = kind
                seen[seq, step] += 1
            else:
                hit = ACCESS.search(line)
                if hit and hit.group(1) != "stats":
                    access += 1
    missing = [seq for seq in range(1, served + 1) if seq not in per_request]
    assert not missing, f"{len(missing)} requests have no line, e.g. {missing[:5]}"
    assert len(per_request) == served, f"{len(per_request)} requests logged, {served} served"
    wrong = [s for s, n in per_request.items() if n != (2 if kinds[s] == "item" else 3)]
    assert not wrong, f"{len(wrong)} requests with a wrong line count, e.g. {wrong[:5]}"
    assert_no_line_twice(seen)
    assert access == served, f"{access} access lines for {served} requests"
    return f"{served} requests, {sum(per_request.values())} app lines, {access} access lines"


def measure(config: Config, seconds: float, workdir: Path) -> tuple[LoadResult, str]:
    server = Server(config, workdir)
    try:
        load(server.port, min(1.0, seconds), workdir)  # warm-up
        served_before = int(server.get("/stats")["served"])
        cpu_before = server.cpu_seconds()
        result = load(server.port, seconds, workdir)
        cpu = server.cpu_seconds() - cpu_before
        served = int(server.get("/stats")["served"])
        result.cpu_us = cpu / max(1, served - served_before) * 1e6
    finally:
        server.stop()
    if server.process.returncode not in SIGINT_EXIT_CODES:
        raise RuntimeError(f"{config.name}: uvicorn exited {server.process.returncode}")
    if config.mode in ("none", "null"):  # nothing written to check
        return result, f"{served} requests"
    return result, verify(server.log_file, served)


def run(quick: bool) -> list[Section]:
    seconds = 3.0 if quick else 10.0
    rounds = 1 if quick else 2
    results: dict[str, list[LoadResult]] = {c.name: [] for c in CONFIGS}
    checks: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for _ in range(rounds):
            for config in CONFIGS:  # alternating, so that a noisy minute hits all of them
                result, check = measure(config, seconds, workdir)
                results[config.name].append(result)
                if config.mode != "null":  # it writes no line to verify
                    checks[config.name] = check
    best = {name: best_of_rounds(runs) for name, runs in results.items()}
    base = best[CONFIGS[0].name]
    rows: list[Row] = []
    for config in CONFIGS:
        figures = best[config.name]
        ratio = figures.rps / base.rps
        p99_ratio = figures.p99_ms / base.p99_ms
        rows.append(
            Row(
                f"{config.name}: requests/s",
                figures.rps,
                "req/s",
                ratio,
                f">= {THROUGHPUT_TARGET}x" if config.loopsink else "",
                ratio >= THROUGHPUT_TARGET if config.loopsink else None,
            )
        )
        rows.append(Row(f"{config.name}: p50", figures.p50_ms, "ms", figures.p50_ms / base.p50_ms))
        rows.append(
            Row(
                f"{config.name}: p99",
                figures.p99_ms,
                "ms",
                p99_ratio,
                f"<= {P99_TARGET}x" if config.loopsink else "",
                p99_ratio <= P99_TARGET if config.loopsink else None,
            )
        )
        if not math.isnan(figures.cpu_us):
            cpu_ratio = figures.cpu_us / base.cpu_us
            rows.append(
                Row(f"{config.name}: server CPU per request", figures.cpu_us, "µs", cpu_ratio)
            )
    generator = "wrk" if shutil.which("wrk") else "the Python load generator (no wrk here)"
    notes = (
        f"{generator}, {CONNECTIONS} keep-alive connections, {seconds:g} s per run, "
        f"{rounds} alternating round(s), best of the rounds; ratios are to *no logging*. "
        + verified_lines_note(checks, baseline=CONFIGS[0].name)
    )
    return [Section("A FastAPI service under uvicorn (wrk)", rows, notes)]


if __name__ == "__main__":
    run_alone(run, __doc__, name_width=70)
