"""JSON lines and context-correct records: what they cost, against the usual alternatives.

* JSON lines to a file, end to end: loopsink's FileHandler with loopsink.JSONFormatter,
  against python-json-logger's formatter and structlog's JSON renderer (its stdlib
  ProcessorFormatter), each on a stdlib FileHandler. Same calls, every line verified.
* The log call's cost on the loop thread, now that it captures the caller's context, and
  what entering those contexts costs the sinks: a sink filter that reads a ContextVar,
  with every record from a context of its own (one request per record) or from one.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import tempfile
import time
from typing import Any

import anyio
import anyio.lowlevel
from _common import CALL, Row, Section, bench_logger

import loopsink

#: What each record carries besides its message: a request id, as a service's would.
EXTRA = {"request_id": "5d41402abc4b2a76b9719d911017c592"}
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


async def _produce(logger: logging.Logger, count: int, yield_every: int = 100) -> None:
    info = logger.info
    for i in range(count):
        info(CALL, i, 1.25, extra=EXTRA)
        if i % yield_every == yield_every - 1:
            await anyio.lowlevel.checkpoint()


def _verify(path: str, count: int, message_key: str) -> None:
    with open(path, encoding="utf-8") as file:
        lines = file.read().splitlines()
    if len(lines) != count:
        raise AssertionError(f"{path}: expected {count} lines, found {len(lines)}")
    for i in (0, count // 2, count - 1):
        data = json.loads(lines[i])
        if data[message_key] != f"request {i} handled in 1.250 ms":
            raise AssertionError(f"{path}: line {i} is {lines[i]!r}")
        if data["request_id"] != EXTRA["request_id"]:
            raise AssertionError(f"{path}: line {i} lacks the request id: {lines[i]!r}")


async def _stdlib_file(path: str, count: int, formatter: logging.Formatter) -> float:
    handler = logging.FileHandler(path, "w", encoding="utf-8")
    handler.setFormatter(formatter)
    logger = bench_logger("json.stdlib")
    logger.addHandler(handler)
    start = time.perf_counter()
    await _produce(logger, count)
    handler.close()
    return count / (time.perf_counter() - start)


async def _loopsink_file(path: str, count: int) -> float:
    sink = loopsink.FileHandler(path, "w", encoding="utf-8")
    sink.setFormatter(loopsink.JSONFormatter())
    logger = bench_logger("json.loopsink")
    start = time.perf_counter()
    async with loopsink.install(sink, logger=logger) as queue:
        await _produce(logger, count)
    rate = count / (time.perf_counter() - start)
    assert queue.stats.dropped_total == 0, queue.stats
    return rate


def _python_json_logger() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=True)


def _structlog() -> logging.Formatter:
    import structlog

    return structlog.stdlib.ProcessorFormatter(
        processor=structlog.processors.JSONRenderer(),
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
    )


async def _json_lines(count: int, rounds: int) -> dict[str, float]:
    tmp = tempfile.mkdtemp(prefix="loopsink-bench-json-")
    best: dict[str, float] = {}
    for r in range(rounds):
        runs: list[tuple[str, str, Any]] = [
            ("python-json-logger on a stdlib FileHandler", "message", _python_json_logger),
            ("structlog JSONRenderer on a stdlib FileHandler", "event", _structlog),
            ("loopsink FileHandler + JSONFormatter", "message", None),
        ]
        for index, (name, key, make) in enumerate(runs):
            path = os.path.join(tmp, f"{index}-{r}.jsonl")
            if make is None:
                rate = await _loopsink_file(path, count)
            else:
                rate = await _stdlib_file(path, count, make())
            _verify(path, count, key)
            best[name] = max(best.get(name, 0.0), rate)
    return best


# -- the context ------------------------------------------------------------------------------


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def _time_calls(logger: logging.Logger, count: int) -> float:
    info = logger.info
    start = time.perf_counter()
    for i in range(count):
        info(CALL, i, 1.25)
    return (time.perf_counter() - start) / count


async def _caller_costs(rounds: int, chunk: int) -> dict[str, float]:
    """The call on the loop thread, with a filter on the sink and without one."""
    plain, filtered = loopsink.NullHandler(), loopsink.NullHandler()
    filtered.addFilter(RequestIdFilter())
    best: dict[str, float] = {}
    floor = bench_logger("ctx.null")
    floor.addHandler(logging.NullHandler())
    async with (
        loopsink.LogQueue(plain, capacity=chunk * 2) as q1,
        loopsink.LogQueue(filtered, capacity=chunk * 2) as q2,
    ):
        variants = {
            "stdlib NullHandler": floor,
            "loopsink bridge, sink without a filter": bench_logger("ctx.plain"),
            "loopsink bridge, sink with a ContextVar filter": bench_logger("ctx.filtered"),
        }
        variants["loopsink bridge, sink without a filter"].addHandler(loopsink.LoggingBridge(q1))
        variants["loopsink bridge, sink with a ContextVar filter"].addHandler(
            loopsink.LoggingBridge(q2)
        )
        request_id.set("r-1")
        for _ in range(rounds):
            for name, logger in variants.items():
                cost = _time_calls(logger, chunk)
                best[name] = min(best.get(name, cost), cost)
                await q1.flush()
                await q2.flush()
    return best


async def _filtered_throughput(count: int, *, filtered: bool, per_record: bool) -> float:
    """Records/s through a NullHandler sink; each record from its own context, or one."""
    sink = loopsink.NullHandler()
    if filtered:
        sink.addFilter(RequestIdFilter())
    logger = bench_logger("ctx.e2e")
    info = logger.info
    set_id = request_id.set
    start = time.perf_counter()
    async with loopsink.install(sink, logger=logger, capacity=count + 10) as queue:
        for i in range(count):
            if per_record:
                set_id(f"r-{i}")  # a new context for every record, as one request per record
            info(CALL, i, 1.25)
            if i % 100 == 99:
                await anyio.lowlevel.checkpoint()
    rate = count / (time.perf_counter() - start)
    assert queue.stats.dropped_total == 0, queue.stats
    return rate


async def _context_throughputs(count: int, rounds: int) -> dict[str, float]:
    cases = {
        "no sink filter": (False, False),
        "ContextVar filter, records sharing a context": (True, False),
        "ContextVar filter, every record its own context": (True, True),
    }
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, (filtered, per_record) in cases.items():
            rate = await _filtered_throughput(count, filtered=filtered, per_record=per_record)
            best[name] = max(best.get(name, 0.0), rate)
    return best


def run(quick: bool) -> list[Section]:
    count, rounds = (10_000, 1) if quick else (50_000, 3)
    call_rounds, chunk = (3, 5_000) if quick else (15, 20_000)

    async def main() -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        return (
            await _json_lines(count, rounds),
            await _caller_costs(call_rounds, chunk),
            await _context_throughputs(count, rounds),
        )

    lines, calls, contexts = anyio.run(main)
    baseline = lines["python-json-logger on a stdlib FileHandler"]
    json_section = Section(
        "JSON lines to a file",
        notes=(
            f"{count:,} records (`logger.info({CALL!r}, i, t, extra={{'request_id': …}})`) "
            "from the first call until the file is closed, the producer yielding every 100 "
            "records; three lines of each file parsed and checked. Best of "
            f"{rounds}. Ratio: records/s against python-json-logger's JsonFormatter on a "
            "stdlib FileHandler. The stdlib `json` encoder: see the encoder choice above."
        ),
    )
    for name, rate in lines.items():
        row = Row(name, rate, "records/s", rate / baseline)
        if name.startswith("loopsink"):
            row.target, row.met = ">= 2x", rate / baseline >= 2.0
        json_section.rows.append(row)
    floor = calls["stdlib NullHandler"]
    call_section = Section(
        "Caller cost with context capture (loop thread)",
        notes=(
            f"`logger.info({CALL!r}, i, t)`, best of {call_rounds} rounds of {chunk:,} calls; "
            "every call captures the caller's context. The sink's filter runs later, in the "
            "worker, so it adds nothing to the call. Ratio: against a stdlib NullHandler."
        ),
    )
    for name, cost in calls.items():
        row = Row(name, cost * 1e6, "µs/call", cost / floor)
        if name.startswith("loopsink"):
            row.target, row.met = "<= 1.3x", cost / floor <= 1.3
        call_section.rows.append(row)
    plain = contexts["no sink filter"]
    context_section = Section(
        "Entering the caller's context in a sink",
        notes=(
            f"{count:,} records through the bridge into a NullHandler sink, end to end. A "
            "filter that reads a ContextVar runs inside each record's context: records that "
            "share one are entered once per run; a record per request (the context changes "
            "before every call) is the worst case. Ratio: against the same sink without a "
            f"filter. Best of {rounds}."
        ),
    )
    for name, rate in contexts.items():
        context_section.rows.append(Row(name, rate, "records/s", rate / plain))
    return [json_section, call_section, context_section]
