"""Many sinks with one format: what each more sink costs the event loop.

The app logs 10 records every millisecond while a probe measures the loop's lag, into 1, 2,
4 and 8 file sinks that use the same format (records formatted once, the text shared by
the sinks, #17), and into 4 rotating file sinks (written behind, as file sinks are). Floor:
the same load into a stdlib NullHandler.
"""

from __future__ import annotations

import logging
import os
import tempfile

import anyio
from _common import LagProbe, Row, Section, bench_logger
from bench_core import FORMAT, _log_steadily

import loopsink

COUNTS = (1, 2, 4, 8)
#: A typical service's rotating files, under the same load (each written behind, #17).
ROTATING = 4


async def _floor(seconds: float) -> tuple[float, float, int]:
    logger = bench_logger("sinks.floor")
    logger.addHandler(logging.NullHandler())
    probe = LagProbe(0.001)
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        sent = await _log_steadily(logger, seconds, 10)
        probe.stop()
    report = probe.report()
    return report.p99_ms, report.max_ms, sent


async def _many(count: int, seconds: float, *, rotating: bool = False) -> tuple[float, float, int]:
    """Lag p99, lag max and records logged with ``count`` file sinks (or rotating file
    sinks, too large a limit to roll over in the run); every line verified."""
    with tempfile.TemporaryDirectory() as folder:
        paths = [os.path.join(folder, f"{i}.log") for i in range(count)]
        sinks: list[loopsink.AsyncHandler] = [
            loopsink.RotatingFileHandler(path, maxBytes=1 << 30, backupCount=2)
            if rotating
            else loopsink.FileHandler(path)
            for path in paths
        ]
        formatter = logging.Formatter(FORMAT)
        for sink in sinks:
            sink.setFormatter(formatter)
        logger = bench_logger(f"sinks.{count}")
        probe = LagProbe(0.001)
        async with loopsink.install(*sinks, logger=logger, capacity=100_000):
            async with anyio.create_task_group() as tg:
                tg.start_soon(probe.run)
                sent = await _log_steadily(logger, seconds, 10)
                probe.stop()
        first = None
        for path in paths:
            with open(path, encoding="utf-8") as file:
                text = file.read()
            if text.count("\n") != sent:
                raise AssertionError(f"{path}: {text.count(chr(10))} lines of {sent}")
            if first is None:
                first = text
            elif text != first:
                raise AssertionError(f"{path} differs from the first sink's file")
    report = probe.report()
    return report.p99_ms, report.max_ms, sent


def run(quick: bool) -> list[Section]:
    seconds, runs = (1.0, 1) if quick else (1.0, 5)

    async def main() -> dict[str, tuple[float, float, int]]:
        best: dict[str, tuple[float, float, int]] = {}
        for _ in range(runs):  # interleaved: a hiccup spoils one run, not one row
            for name, measure in (
                [("floor", _floor(seconds))]
                + [(str(n), _many(n, seconds)) for n in COUNTS]
                + [(f"{ROTATING} rotating", _many(ROTATING, seconds, rotating=True))]
            ):
                p99, worst, sent = await measure
                old = best.get(name, (p99, worst, sent))
                best[name] = (min(old[0], p99), min(old[1], worst), max(old[2], sent))
        return best

    best = anyio.run(main)
    section = Section(
        "Many sinks with one format",
        notes=(
            "The app logs 10 records every millisecond for 1 s, a probe sleeps 1 ms in a loop, "
            "into N file sinks with the same format (each record formatted once, the text "
            f"shared), then into {ROTATING} RotatingFileHandlers that do not roll over in the run; "
            "every file verified line by line and equal to the others. Floor: the same "
            f"load into a stdlib NullHandler. Lowest lag and most records of {runs} interleaved "
            "runs. Ratio: records the app got to log, against one sink."
        ),
    )
    p99, worst, sent = best["floor"]
    section.rows += [
        Row("floor (stdlib NullHandler): lag p99", p99, "ms"),
        Row("floor (stdlib NullHandler): lag max", worst, "ms"),
        Row("floor (stdlib NullHandler): records logged in 1 s", sent, "records"),
    ]
    one = best["1"][2]
    targets = {4: 0.5, 8: 0.8}
    for count in COUNTS:
        p99, worst, sent = best[str(count)]
        row = Row(f"{count} file sinks: lag p99", p99, "ms")
        if count in targets:
            row.target, row.met = f"<= {targets[count]} ms", p99 <= targets[count]
        section.rows += [row, Row(f"{count} file sinks: lag max", worst, "ms")]
        logged = Row(f"{count} file sinks: records logged in 1 s", sent, "records", sent / one)
        if count == 4:
            logged.target, logged.met = ">= 0.9x", sent / one >= 0.9
        section.rows.append(logged)
    p99, worst, sent = best[f"{ROTATING} rotating"]
    section.rows += [
        Row(f"{ROTATING} rotating file sinks: lag p99", p99, "ms"),
        Row(f"{ROTATING} rotating file sinks: lag max", worst, "ms"),
        Row(
            f"{ROTATING} rotating file sinks: records logged in 1 s",
            sent,
            "records",
            sent / one,
        ),
    ]
    return [section]
