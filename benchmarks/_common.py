"""What every benchmark module shares: result rows and a loop-lag probe.

Each ``benchmarks/bench_*.py`` module defines ``run(quick: bool) -> list[Section]``;
``benchmarks/run.py`` runs them all in one process, prints the tables and rewrites the
generated part of ``docs/performance.md``. Figures are ratios against the stdlib measured in
the same run, so they compare like with like on whatever machine runs them.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel

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
