"""An aiohttp service loaded by wrk: what file, syslog and HTTP sinks cost it.

The app (benchmarks/service_aiohttp_app.py) logs two or three lines per request plus aiohttp's
access log; each way of logging runs in its own server process, loaded in turn
(alternating rounds) by ``wrk`` over keep-alive connections, as bench_service.py does for
FastAPI (the Python load generator stands in without wrk):

- no logging (the baseline);
- the stdlib ``FileHandler`` on the root logger;
- the stdlib ``NullHandler`` on the root logger: every record made, none written, which is
  what logging costs the service before any handler does its work (a ceiling for every
  handler's throughput);
- loopsink's ``FileHandler`` through ``contrib.aiohttp.cleanup_ctx``;
- loopsink's ``FileHandler`` + ``SysLogHandler`` over UDP + ``HTTPHandler(body="ndjson")``,
  to a syslog receiver and an HTTP collector on loopback (in a child process of their
  own, so their CPU is not the server's).

Requests/s and wrk's p99 are given as ratios to no logging, and requests/s also to the
stdlib ``FileHandler``. After each run the server is stopped (SIGINT: the cleanup context
drains every sink) and every line is checked: in the file, each numbered app line exactly
once and an access line per request; at the HTTP collector every app line exactly once;
at the syslog receiver every app line, or how many UDP lost.

Run alone: ``python benchmarks/bench_aiohttp.py [--quick]``.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _common import (
    SIGINT_EXIT_CODES,
    LoadResult,
    Row,
    Section,
    ServerProcess,
    best_of_rounds,
    free_port,
    run_alone,
    verified_lines_note,
)
from bench_cpu import Receiver
from bench_service import CONNECTIONS, load

HERE = Path(__file__).resolve().parent
THROUGHPUT_TARGET = 0.6
#: The app's numbered lines, as the receivers find them.
PATTERN = r"line (\d+):"
LINE = re.compile(PATTERN)
ACCESS = re.compile(r'"GET /(items|orders)/\d+ HTTP/1\.1" 200 ')


@dataclass
class Config:
    name: str
    mode: str


CONFIGS = [
    Config("no logging", "none"),
    Config("stdlib FileHandler", "stdlib"),
    Config("stdlib NullHandler (records made, nothing written)", "null"),
    Config("loopsink FileHandler", "loopsink"),
    Config("loopsink file + SysLogHandler UDP + HTTPHandler NDJSON", "loopsink_all"),
]


class Server(ServerProcess):
    """One aiohttp process serving the app in one way of logging."""

    def __init__(self, config: Config, workdir: Path, receivers: dict[str, Receiver]) -> None:
        self.log_file = workdir / f"{config.mode}.log"
        self.log_file.unlink(missing_ok=True)
        port = free_port()
        env = dict(
            os.environ,
            BENCH_AIOHTTP_MODE=config.mode,
            BENCH_AIOHTTP_LOG=str(self.log_file),
            BENCH_AIOHTTP_SYSLOG=f"127.0.0.1:{receivers['udp'].port}",
            BENCH_AIOHTTP_COLLECTOR=f"127.0.0.1:{receivers['http'].port}",
        )
        args = [sys.executable, str(HERE / "service_aiohttp_app.py"), str(port)]
        super().__init__("the aiohttp app", args, env=env, port=port)


def verify_file(log_file: Path, served: int, lines: int) -> str:
    numbers: list[int] = []
    access = 0
    with log_file.open() as text:
        for line in text:
            found = LINE.search(line)
            if found:
                numbers.append(int(found.group(1)))
            elif ACCESS.search(line):
                access += 1
    assert sorted(numbers) == list(range(lines)), (
        f"file: {len(numbers)} app lines ({len(set(numbers))} distinct) for {lines} logged"
    )
    assert access == served, f"file: {access} access lines for {served} requests"
    return f"file {lines} app lines + {access} access lines"


def verify_receivers(receivers: dict[str, Receiver], lines: int) -> tuple[str, bool]:
    """What the collector and the syslog receiver got, and whether nothing was lost that
    the sinks promise to deliver (UDP may lose datagrams; a line twice is always wrong)."""
    http = receivers["http"].summary(lines, 30.0)
    udp = receivers["udp"].summary(lines, 5.0)
    whole = bool(http["exact"]) and udp["distinct"] == udp["received"]
    lost = lines - http["received"]
    collector = "all" if http["exact"] else f"{http['received']} (LOST {lost})"
    syslog = "all" if udp["exact"] else f"{udp['received']} (UDP lost the rest)"
    return f"HTTP collector {collector} of {lines}; syslog {syslog}", whole


def measure(
    config: Config, seconds: float, workdir: Path, receivers: dict[str, Receiver]
) -> tuple[LoadResult, str, bool]:
    server = Server(config, workdir, receivers)
    try:
        load(server.port, min(1.0, seconds), workdir)  # warm-up
        before = server.get("/stats")
        cpu_before = server.cpu_seconds()
        result = load(server.port, seconds, workdir)
        cpu = server.cpu_seconds() - cpu_before
        after = server.get("/stats")
        result.cpu_us = cpu / max(1, after["served"] - before["served"]) * 1e6
    finally:
        server.stop()
    if server.process.returncode not in SIGINT_EXIT_CODES:
        raise RuntimeError(f"{config.name}: exited {server.process.returncode}: {server.stderr}")
    served, lines = int(after["served"]), int(after["lines"])
    if config.mode in ("none", "null"):  # nothing written to check
        return result, f"{served} requests", True
    check = verify_file(server.log_file, served, lines)
    whole = True
    if config.mode == "loopsink_all":
        received, whole = verify_receivers(receivers, lines)
        check += "; " + received
    return result, check, whole


def run(quick: bool) -> list[Section]:
    seconds = 3.0 if quick else 10.0
    rounds = 1 if quick else 2
    results: dict[str, list[LoadResult]] = {c.name: [] for c in CONFIGS}
    checks: dict[str, str] = {}
    whole: dict[str, bool] = {}
    receivers = {kind: Receiver(kind, PATTERN) for kind in ("udp", "http")}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            for _ in range(rounds):
                for config in CONFIGS:  # alternating, so that a noisy minute hits all of them
                    result, check, complete = measure(config, seconds, workdir, receivers)
                    results[config.name].append(result)
                    if config.mode == "null":  # it writes no line to verify
                        whole[config.name] = complete
                    elif whole.get(config.name, True):  # a round that lost lines is shown
                        checks[config.name] = check
                        whole[config.name] = complete
    finally:
        for receiver in receivers.values():
            receiver.close()
    best = {name: best_of_rounds(runs) for name, runs in results.items()}
    base = best[CONFIGS[0].name]
    stdlib = best["stdlib FileHandler"]
    rows: list[Row] = []
    for config in CONFIGS:
        figures = best[config.name]
        ratio = figures.rps / base.rps
        ours = config.mode.startswith("loopsink")
        rows.append(
            Row(
                f"{config.name}: requests/s",
                figures.rps,
                "req/s",
                ratio,
                f">= {THROUGHPUT_TARGET}x no logging, nothing lost"
                if config.mode == "loopsink_all"
                else "",
                ratio >= THROUGHPUT_TARGET and whole[config.name]
                if config.mode == "loopsink_all"
                else None,
            )
        )
        if ours:
            rows.append(
                Row(
                    f"{config.name}: requests/s against the stdlib FileHandler",
                    figures.rps,
                    "req/s",
                    figures.rps / stdlib.rps,
                )
            )
        rows.append(Row(f"{config.name}: p99", figures.p99_ms, "ms", figures.p99_ms / base.p99_ms))
        rows.append(
            Row(
                f"{config.name}: server CPU per request",
                figures.cpu_us,
                "µs",
                figures.cpu_us / base.cpu_us,
            )
        )
    notes = (
        f"{CONNECTIONS} keep-alive connections, {seconds:g} s per run, {rounds} alternating "
        "round(s), best of the rounds; ratios are to *no logging* unless the row says "
        "otherwise. " + verified_lines_note(checks, baseline=CONFIGS[0].name)
    )
    return [Section("An aiohttp service with file, syslog and HTTP sinks (wrk)", rows, notes)]


if __name__ == "__main__":
    run_alone(run, __doc__, name_width=80)
