"""What the benchmark modules share: result rows, a loop-lag probe, servers under load.

Each ``benchmarks/bench_*.py`` module defines ``run(quick: bool) -> list[Section]``;
``benchmarks/run.py`` runs them all in one process, prints the tables and rewrites the
generated part of ``docs/performance.md``. Figures are ratios against the stdlib measured in
the same run, so they compare like with like on whatever machine runs them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

import loopsink

#: The log call every benchmark makes, as a service would.
CALL = "request %d handled in %.3f ms"


@dataclass
class Row:
    """One measured figure."""

    name: str
    value: float
    unit: str
    #: value relative to the stdlib baseline of the same section (None if not comparable)
    ratio: float | None = None
    #: the target, as text (e.g. "<= 1.3x"), and whether it was met
    target: str = ""
    met: bool | None = None


@dataclass
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: str = ""


@dataclass
class LagReport:
    max_ms: float
    p99_ms: float
    samples: int


class LagProbe:
    """Measures event-loop lag: how late a task that sleeps ``interval`` seconds wakes up."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._stop = False

    async def run(self) -> None:
        clock = time.perf_counter
        while not self._stop:
            start = clock()
            await anyio.sleep(self.interval)
            self.lags.append(max(0.0, clock() - start - self.interval))

    def stop(self) -> None:
        self._stop = True

    def report(self) -> LagReport:
        lags = sorted(self.lags) or [0.0]
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        return LagReport(max_ms=lags[-1] * 1e3, p99_ms=p99 * 1e3, samples=len(lags))


def best_of(samples: list[float]) -> float:
    """The minimum of repeated timings: the least disturbed by the rest of the machine."""
    return min(samples)


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def bench_logger(name: str) -> logging.Logger:
    """A logger of its own for one variant: no propagation, no inherited handlers."""
    logger = logging.getLogger(f"bench.{name}")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


async def produce(logger: logging.Logger, count: int, *, yield_every: int) -> None:
    """Log ``count`` records, yielding to the loop every ``yield_every`` as an app does."""
    info = logger.info
    for i in range(count):
        info(CALL, i, 1.25)
        if i % yield_every == yield_every - 1:
            await anyio.lowlevel.checkpoint()


async def stdlib_rate(
    name: str, handler: logging.Handler, count: int, *, yield_every: int
) -> float:
    """Records/s through a stdlib handler on logger ``bench.<name>``, from the first call
    until the handler's close() returned (what it still buffered is written by then)."""
    logger = bench_logger(name)
    logger.addHandler(handler)
    start = time.perf_counter()
    await produce(logger, count, yield_every=yield_every)
    handler.close()
    elapsed = time.perf_counter() - start
    logger.removeHandler(handler)
    return count / elapsed


async def loopsink_rate(
    name: str, sink: loopsink.AsyncHandler, count: int, *, yield_every: int
) -> tuple[float, loopsink.QueueStats]:
    """Records/s through ``loopsink.install(sink)`` on logger ``bench.<name>``, from the first
    call until install() drained and closed the sink; and the queue's counters at the end.

    capacity=count: the producer never lets the loop idle for long, so the sink's backlog
    holds the run rather than dropping (a drop fails the bench's verification anyway).
    """
    logger = bench_logger(name)
    start = time.perf_counter()
    async with loopsink.install(sink, logger=logger, capacity=count) as log_queue:
        await produce(logger, count, yield_every=yield_every)
    elapsed = time.perf_counter() - start
    return count / elapsed, log_queue.stats


def print_rows(sections: list[Section], row_format: str, *, notes: bool = False) -> None:
    """A bench's figures as plain text, when it runs alone. ``row_format`` names the fields
    ``name``, ``value``, ``unit``, ``ratio`` (text: "1.23x", or empty), ``target``, ``met``."""
    for section in sections:
        print(section.title)
        if notes:
            print(" ", section.notes)
        for row in section.rows:
            ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
            print(
                row_format.format(
                    name=row.name,
                    value=row.value,
                    unit=row.unit,
                    ratio=ratio,
                    target=row.target,
                    met=row.met,
                )
            )


# -- web services under load (bench_service, bench_aiohttp, bench_gunicorn) ---------------------

#: A server that stops on SIGINT exits 0, or as killed by the signal (-2 or 130 by platform).
SIGINT_EXIT_CODES = (0, -signal.SIGINT, 128 + signal.SIGINT)


@dataclass
class LoadResult:
    """What a load generator measured of one run against one server."""

    rps: float
    p50_ms: float
    p99_ms: float
    #: the server's CPU time per request served during the run, every thread counted
    cpu_us: float = float("nan")


def best_of_rounds(runs: list[LoadResult]) -> LoadResult:
    """Each figure at its best over alternating rounds: the least disturbed by the machine."""
    return LoadResult(
        max(r.rps for r in runs),
        min(r.p50_ms for r in runs),
        min(r.p99_ms for r in runs),
        min(r.cpu_us for r in runs),
    )


def free_port() -> int:
    """A loopback TCP port that was free a moment ago, for a server process to bind."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def parse_duration_ms(text: str) -> float:
    """One of wrk's durations ("812.00us", "1.25ms", "2.01s", "1.10m") in milliseconds."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}[unit]


def run_wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    script: Path | None = None,
    errors: str = r"Non-2xx|Socket errors",
) -> LoadResult:
    """Load ``url`` with wrk (2 threads, ``connections`` connections); raises RuntimeError
    if wrk's report matches ``errors``."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    args += ["-s", str(script)] if script is not None else []
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    if re.search(errors, out):
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    return LoadResult(rps, parse_duration_ms(p50), parse_duration_ms(p99))


def run_python_load(args: list[str]) -> LoadResult:
    """A Python load generator, in a process of its own, that prints its figures as JSON."""
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True).stdout
    figures = json.loads(out)
    return LoadResult(figures["rps"], figures["p50_ms"], figures["p99_ms"])


class ServerProcess:
    """A web server in a process of its own, answering JSON on ``/stats`` once it is up."""

    #: how the server is asked to stop: it drains its logging and exits
    stop_signal = signal.SIGINT
    #: how long ``get`` waits for an answer
    get_timeout = 10.0

    def __init__(
        self,
        name: str,
        args: list[str],
        *,
        env: dict[str, str],
        port: int,
        cwd: Path | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.port = port
        self.process = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr = ""
        #: seconds from the stop signal to the process's exit
        self.shutdown = float("nan")
        self.wait_ready(start_timeout)

    def get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=self.get_timeout) as reply:
            return json.loads(reply.read())

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.get("/stats")
                return
            except OSError:  # noqa: PERF203 - polling until the server answers
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} did not start: {self.stderr}") from None
                time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """CPU time the server process has used (every thread), where /proc says so."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return float("nan")
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
        try:
            _, self.stderr = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, self.stderr = self.process.communicate()
        self.shutdown = time.monotonic() - started


def assert_no_line_twice(seen: Counter[tuple[int, str]]) -> None:
    duplicated = [key for key, n in seen.items() if n > 1]
    assert not duplicated, f"duplicated lines, e.g. {duplicated[:5]}"


def verified_lines_note(checks: dict[str, str], *, baseline: str) -> str:
    """The notes' account of the lines checked after each run (the baseline logs none)."""
    return "Lines verified after each run: " + "; ".join(
        f"{name}: {check}" for name, check in checks.items() if name != baseline
    )


def print_sections(sections: list[Section], *, name_width: int, value_width: int = 10) -> None:
    """A bench's figures as a plain-text table, when it runs alone."""
    for section in sections:
        print(f"### {section.title}\n\n{section.notes}\n")
        for row in section.rows:
            ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
            verdict = "" if row.met is None else (" ok" if row.met else " NOT MET")
            print(
                f"{row.name:<{name_width}} {row.value:>{value_width}.1f} {row.unit:<6} "
                f"{ratio:>6} {row.target}{verdict}"
            )


def run_alone(
    run: Callable[[bool], list[Section]], doc: str | None, *, name_width: int, value_width: int = 10
) -> None:
    """``python benchmarks/bench_X.py [--quick]``: run one bench and print its table."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round")
    args = parser.parse_args()
    print_sections(run(args.quick), name_width=name_width, value_width=value_width)
