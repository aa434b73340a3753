"""The core's figures: caller cost of a log call, end-to-end file throughput, loop lag.

Every loopsink figure is divided by a stdlib figure measured in the same process, on the
same thread kind, with the same logger call, so the ratios hold on any machine.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue as queue_module
import tempfile
import time
from collections.abc import Sequence

import _instructions
import anyio
import anyio.lowlevel
from _common import CALL, LagProbe, Row, Section, bench_logger, produce

import loopsink

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: How often a chatty service yields to the loop, in records.
CHATTY = 10


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = bench_logger(f"core.{name}")
    logger.addHandler(handler)
    return logger


def _time_calls(logger: logging.Logger, count: int) -> float:
    """Seconds per call of ``logger.info(CALL, i, t)``."""
    info = logger.info
    start = time.perf_counter()
    for i in range(count):
        info(CALL, i, 1.25)
    return (time.perf_counter() - start) / count


async def _caller_costs(rounds: int, chunk: int) -> dict[str, float]:
    """Per-call cost on the loop thread, each variant interleaved round by round."""
    tmp = tempfile.mkdtemp(prefix="loopsink-bench-")
    stdlib_file = logging.FileHandler(os.path.join(tmp, "stdlib.log"))
    simple_queue: queue_module.SimpleQueue[logging.LogRecord] = queue_module.SimpleQueue()
    baselines = {
        "stdlib NullHandler": _logger("null", logging.NullHandler()),
        "stdlib FileHandler": _logger("file", stdlib_file),
        "stdlib QueueHandler": _logger("queue", logging.handlers.QueueHandler(simple_queue)),
    }
    sink = loopsink.NullHandler()
    best: dict[str, float] = {}
    async with loopsink.LogQueue(sink, capacity=chunk * 2) as log_queue:
        bridged = _logger("bridge", loopsink.LoggingBridge(log_queue))
        variants = {**baselines, "loopsink bridge (loop thread)": bridged}
        for _ in range(rounds):
            for name, logger in variants.items():
                cost = _time_calls(logger, chunk)
                best[name] = min(best.get(name, cost), cost)
                while not simple_queue.empty():
                    simple_queue.get_nowait()
                await log_queue.flush()  # the worker runs between rounds, never while timed
        assert log_queue.stats.dropped_total == 0, log_queue.stats
    stdlib_file.close()
    return best


async def _foreign_thread_costs(rounds: int, chunk: int) -> dict[str, float]:
    """Per-call cost from a thread other than the loop's, while the loop runs the queue."""
    sink = loopsink.NullHandler()
    best: dict[str, float] = {}
    async with loopsink.LogQueue(sink, capacity=chunk * 2) as log_queue:
        floor = _logger("thread-null", logging.NullHandler())
        bridged = _logger("thread-bridge", loopsink.LoggingBridge(log_queue))

        def measure() -> None:
            for _ in range(rounds):
                for name, logger in (("stdlib NullHandler", floor), ("loopsink bridge", bridged)):
                    cost = _time_calls(logger, chunk)
                    best[name] = min(best.get(name, cost), cost)

        await anyio.to_thread.run_sync(measure)
        await log_queue.flush()
        assert log_queue.stats.dropped_total == 0, log_queue.stats
    return best


def _verify(path: str, count: int) -> None:
    with open(path, encoding="utf-8") as file:
        lines = file.read().splitlines()
    if len(lines) != count:
        raise AssertionError(f"{path}: expected {count} lines, found {len(lines)}")
    for i, line in enumerate(lines):
        if not line.endswith(f"request {i} handled in 1.250 ms"):
            raise AssertionError(f"{path}: line {i} is {line!r}")


async def _e2e_stdlib(path: str, count: int, fmt: str, yield_every: int = 100) -> float:
    handler = logging.FileHandler(path, "w")
    handler.setFormatter(logging.Formatter(fmt))
    logger = _logger("e2e-stdlib", handler)
    start = time.perf_counter()
    await produce(logger, count, yield_every=yield_every)
    handler.close()
    elapsed = time.perf_counter() - start
    _verify(path, count)
    return count / elapsed


async def _e2e_loopsink(path: str, count: int, fmt: str, yield_every: int = 100) -> float:
    sink = loopsink.FileHandler(path, "w")
    sink.setFormatter(logging.Formatter(fmt))
    logger = bench_logger("core.e2e-loopsink")
    # The default capacity, but for a burst that never yields: nothing runs the queue's
    # worker before it ends, so the whole burst waits in the intake (a service with such
    # bursts sizes its queue for them).
    options = {"capacity": count} if yield_every > count else {}
    start = time.perf_counter()
    async with loopsink.install(sink, logger=logger, **options) as log_queue:
        await produce(logger, count, yield_every=yield_every)
    elapsed = time.perf_counter() - start
    assert log_queue.stats.dropped_total == 0, log_queue.stats
    _verify(path, count)
    return count / elapsed


async def _throughputs(
    count: int, rounds: int, fmt: str, yield_every: int = 100
) -> tuple[float, float]:
    tmp = tempfile.mkdtemp(prefix="loopsink-bench-")
    stdlib_rates, loopsink_rates = [], []
    for i in range(rounds):
        path = os.path.join(tmp, f"s{i}.log")
        stdlib_rates.append(await _e2e_stdlib(path, count, fmt, yield_every))
        path = os.path.join(tmp, f"l{i}.log")
        loopsink_rates.append(await _e2e_loopsink(path, count, fmt, yield_every))
    return max(stdlib_rates), max(loopsink_rates)


class SlowSink(loopsink.AsyncHandler):
    """A sink that takes 20 ms per call, like a remote collector."""

    def __init__(self) -> None:
        super().__init__()
        self.received = 0

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        await anyio.sleep(0.02)
        self.received += len(records)


async def _log_steadily(logger: logging.Logger, seconds: float, per_tick: int) -> int:
    """Log ``per_tick`` records every millisecond for ``seconds``; return how many."""
    sent = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(per_tick):
            logger.info(CALL, sent, 1.25)
            sent += 1
        await anyio.sleep(0.001)
    return sent


async def _lag_floor(seconds: float, per_tick: int) -> tuple[float, float]:
    """The same load and probe with a stdlib NullHandler: what the machine itself adds."""
    logger = _logger("lag-floor", logging.NullHandler())
    probe = LagProbe(0.001)
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        await _log_steadily(logger, seconds, per_tick)
        probe.stop()
    report = probe.report()
    return report.max_ms, report.p99_ms


async def _lags(seconds: float, per_tick: int, runs: int) -> tuple[dict[str, float], int]:
    """Lowest max and lowest p99 over ``runs`` runs of the floor and of the slow sink,
    interleaved, so that a hiccup of the machine spoils one run, not the figure."""
    best: dict[str, float] = {}
    sent = 0
    for _ in range(runs):
        floor_max, floor_p99 = await _lag_floor(seconds, per_tick)
        lag_max, lag_p99, sent = await _lag_with_slow_sink(seconds, per_tick)
        for key, value in (
            ("floor max", floor_max),
            ("floor p99", floor_p99),
            ("max", lag_max),
            ("p99", lag_p99),
        ):
            best[key] = min(best.get(key, value), value)
    return best, sent


async def _lag_with_slow_sink(seconds: float, per_tick: int) -> tuple[float, float, int]:
    """Loop lag while the app logs ``per_tick`` records every millisecond into a 20 ms sink."""
    sink = SlowSink()
    logger = bench_logger("core.lag")
    probe = LagProbe(0.001)
    async with loopsink.install(sink, logger=logger, capacity=100_000) as log_queue:
        async with anyio.create_task_group() as tg:
            tg.start_soon(probe.run)
            sent = await _log_steadily(logger, seconds, per_tick)
            await log_queue.flush()
            probe.stop()
    if sink.received != sent:
        raise AssertionError(f"slow sink got {sink.received} of {sent} records")
    report = probe.report()
    return report.max_ms, report.p99_ms, sent


def _instruction_rows(count: int) -> list[Row]:
    """The caller rows counted in instructions (see ``_instructions``), if valgrind is here."""
    if not _instructions.available():
        return []
    counts = _instructions.per_call(count)
    floor = counts["stdlib NullHandler"]
    rows = []
    for name, instructions in counts.items():
        row = Row(f"{name}: instructions", instructions, "instructions/call", instructions / floor)
        if name.startswith("loopsink"):
            row.target, row.met = "<= 1.3x", instructions / floor <= 1.3
        rows.append(row)
    return rows


def run(quick: bool) -> list[Section]:
    rounds, chunk = (3, 5_000) if quick else (15, 20_000)
    e2e_count, e2e_rounds = (20_000, 1) if quick else (100_000, 5)
    lag_runs = 5

    async def main() -> tuple[
        dict[str, float],
        dict[str, float],
        tuple[float, float],
        tuple[float, float],
        tuple[float, float],
        tuple[float, float],
        tuple[float, float],
        tuple[dict[str, float], int],
    ]:
        return (
            await _caller_costs(rounds, chunk),
            await _foreign_thread_costs(rounds, chunk),
            await _throughputs(e2e_count, e2e_rounds, logging.BASIC_FORMAT),
            await _throughputs(e2e_count, e2e_rounds, FORMAT),
            await _throughputs(e2e_count, e2e_rounds, logging.BASIC_FORMAT, CHATTY),
            await _throughputs(e2e_count // 2, e2e_rounds, logging.BASIC_FORMAT, 1),
            await _throughputs(e2e_count, e2e_rounds, logging.BASIC_FORMAT, e2e_count + 1),
            await _lags(1.0 if quick else 3.0, 10, 1 if quick else lag_runs),
        )

    loop, thread, e2e_plain, e2e_time, e2e_chatty, e2e_lone, e2e_burst, (lags, sent) = anyio.run(
        main
    )
    floor = loop["stdlib NullHandler"]
    caller = Section(
        "Caller cost of one log call (loop thread)",
        notes=(
            f"`logger.info({CALL!r}, i, t)`, best of {rounds} rounds of {chunk:,} calls; "
            "the queue's worker runs between rounds, never while a round is timed. "
            "Ratio: against the same call with a stdlib NullHandler (the floor)."
        ),
    )
    for name, cost in loop.items():
        row = Row(name, cost * 1e6, "µs/call", cost / floor)
        if name.startswith("loopsink"):
            row.target, row.met = "<= 1.3x", cost / floor <= 1.3
        caller.rows.append(row)
    caller.rows += _instruction_rows(chunk)
    if not _instructions.available():
        caller.notes += " (valgrind is not installed: no instruction counts.)"
    else:
        caller.notes += (
            f" The instruction rows count the same call under valgrind's callgrind, {chunk:,} "
            "calls in a row, the records left waiting as in the timed rounds: a figure that "
            "does not move with the machine's load, but misses memory effects such as the "
            "garbage collector's cache misses on the waiting records."
        )
    foreign = Section(
        "Caller cost of one log call (foreign thread)",
        notes="The same call from a worker thread while the loop drains the queue concurrently.",
    )
    for name, cost in thread.items():
        foreign.rows.append(Row(name, cost * 1e6, "µs/call", cost / thread["stdlib NullHandler"]))
    e2e = Section(
        "End-to-end to a file",
        notes=(
            f"{e2e_count:,} records from the first call until the file is closed (loopsink: "
            "until `install` has drained and closed), the producer yielding every 100 "
            "records (as a service does between requests); every line verified on disk "
            f"afterwards. Best of {e2e_rounds}. Ratio: records/s against the stdlib FileHandler. "
            f"The next four rows yield every {CHATTY} records, then after every record "
            f"({e2e_count // 2:,} records), as services that log a few lines, or one, between "
            "awaits do. A queue worker that has just delivered looks again 1 ms later "
            "instead of being woken by the next record, so even one record per pass of the "
            f"loop reaches the sink in batches. The burst rows log {e2e_count:,} records "
            "without ever yielding, then close (loopsink's queue sized for the burst: "
            f"capacity={e2e_count:,})."
        ),
    )
    cases = (
        ("BASIC_FORMAT", e2e_plain),
        ("with %(asctime)s", e2e_time),
        (f"BASIC_FORMAT, yield every {CHATTY}", e2e_chatty),
        ("BASIC_FORMAT, yield after every record", e2e_lone),
        ("BASIC_FORMAT, a burst that never yields", e2e_burst),
    )
    for label, (std, ours) in cases:
        e2e.rows.append(Row(f"stdlib FileHandler, {label}", std, "records/s", 1.0))
        row = Row(f"loopsink FileHandler, {label}", ours, "records/s", ours / std)
        if label in ("BASIC_FORMAT", "BASIC_FORMAT, a burst that never yields"):
            row.target, row.met = ">= 1.5x", ours / std >= 1.5
        e2e.rows.append(row)
    lag = Section(
        "Event-loop lag with a 20 ms sink",
        notes=(
            f"The app logs 10 records every millisecond ({sent:,} in a run) into a sink that "
            "takes 20 ms per call; a probe task sleeps 1 ms in a loop and records how late "
            "it wakes. All records verified delivered. The floor is the same load and probe "
            "with a stdlib NullHandler: what the machine and the event loop add by "
            "themselves (epoll waits in whole milliseconds; a virtual machine's wake-ups). "
            f"Lowest of {1 if quick else lag_runs} interleaved runs, for each figure."
        ),
        rows=[
            Row("floor: same load, stdlib NullHandler: lag max", lags["floor max"], "ms"),
            Row("floor: same load, stdlib NullHandler: lag p99", lags["floor p99"], "ms"),
            Row("loop lag max", lags["max"], "ms", None, "<= 1 ms", lags["max"] <= 1.0),
            Row("loop lag p99", lags["p99"], "ms", None, "<= 0.5 ms", lags["p99"] <= 0.5),
        ],
    )
    return [caller, foreign, e2e, lag]
