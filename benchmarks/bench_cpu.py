"""CPU per record of each sink: records per CPU-second for file, syslog, socket and HTTP.

The same application, the same records, one sink at a time: ``logger.info`` on the loop,
yielding every 10 records, through ``loopsink.install`` (bridge, queue, sink) and out to a
receiver on loopback. The receivers (``_cpu_receivers.py``) run in a child process, so
their work is not counted; the figure is this process's CPU time (``time.process_time``:
every thread, the sinks' own included) from the first log call until ``flush()`` returned,
divided into the records sent. Every record is checked at the receiver afterwards: the
file read back, each datagram, frame, pickle and NDJSON line parsed, every number
0..N-1 present once (and in order, except over UDP). The sinks run in turn, in alternating
rounds; each keeps its least disturbed round.

Target: each network sink within 2x the file sink's CPU per record.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from _common import CALL, Row, Section, bench_logger, produce

import loopsink

HERE = Path(__file__).resolve().parent
YIELD_EVERY = 10
TARGET = 2.0
NUMBER = re.compile(r"request (\d+) handled")


class Receiver:
    """A receiver of ``_cpu_receivers.py`` in a child process."""

    def __init__(self, kind: str, pattern: str | None = None) -> None:
        extra = [pattern] if pattern is not None else []
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "_cpu_receivers.py"), kind, *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"the {kind} receiver did not start: {line!r}")
        self.port = int(line)

    def summary(self, count: int, timeout: float = 30.0) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{count} {timeout}\n")
        self.process.stdin.flush()
        summary: dict[str, Any] = json.loads(self.process.stdout.readline())
        return summary

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _file_summary(path: Path, count: int) -> dict[str, object]:
    numbers = [int(m) for m in NUMBER.findall(path.read_text())]
    path.write_text("")  # the next round starts empty
    return {
        "received": len(numbers),
        "distinct": len(set(numbers)),
        "exact": sorted(numbers) == list(range(count)),
        "in_order": numbers == list(range(count)),
    }


async def _measure(sink: loopsink.AsyncHandler, count: int, name: str) -> float:
    """CPU seconds this process spent from the first log call until flush() returned."""
    logger = bench_logger(f"cpu.{name}")
    # room for the whole burst: a record dropped would be CPU not spent
    async with loopsink.install(sink, logger=logger, capacity=2 * count) as log_queue:
        logger.info("warm up: connected and opened before the clock starts")
        await log_queue.flush()
        started = time.process_time()
        await produce(logger, count, yield_every=YIELD_EVERY)
        await log_queue.flush()
        spent = time.process_time() - started
        stats = log_queue.stats
    if stats.dropped_total or sink.error_count or stats.sinks[0].emitted != count + 1:
        raise AssertionError(f"{name}: not every record was handed to the sink: {stats}")
    return spent


def run(quick: bool) -> list[Section]:
    count = 5_000 if quick else 20_000
    rounds = 1 if quick else 3
    receivers = {kind: Receiver(kind) for kind in ("udp", "tcp", "socket", "http")}
    workdir = Path(tempfile.mkdtemp(prefix="loopsink-bench-cpu-"))
    path = workdir / "app.log"
    cpu: dict[str, list[float]] = {}
    verdicts: dict[str, dict[str, object]] = {}

    def address(kind: str) -> tuple[str, int]:
        return ("127.0.0.1", receivers[kind].port)

    variants: dict[str, tuple[Callable[[], loopsink.AsyncHandler], Callable[[], dict]]] = {  # type: ignore[type-arg]
        "FileHandler": (
            lambda: loopsink.FileHandler(path),
            lambda: _file_summary(path, count),
        ),
        "SysLogHandler UDP": (
            lambda: loopsink.SysLogHandler(address("udp")),
            lambda: receivers["udp"].summary(count, 10.0),
        ),
        "SysLogHandler TCP": (
            lambda: loopsink.SysLogHandler(address("tcp"), socktype=socket.SOCK_STREAM),
            lambda: receivers["tcp"].summary(count),
        ),
        "SocketHandler": (
            lambda: loopsink.SocketHandler("127.0.0.1", receivers["socket"].port),
            lambda: receivers["socket"].summary(count),
        ),
        "HTTPHandler NDJSON": (
            lambda: loopsink.HTTPHandler(
                f"127.0.0.1:{receivers['http'].port}", "/bulk", "POST", body="ndjson"
            ),
            lambda: receivers["http"].summary(count),
        ),
    }

    async def main() -> None:
        for _ in range(rounds):
            for name, (make, check) in variants.items():
                cpu.setdefault(name, []).append(await _measure(make(), count, name))
                verdict = await anyio.to_thread.run_sync(check)
                # the warm-up record is not numbered: exactly the count, every number once
                if not verdict["exact"] or name not in verdicts or not verdicts[name]["exact"]:
                    verdicts[name] = verdict

    try:
        anyio.run(main)
    finally:
        for receiver in receivers.values():
            receiver.close()
        path.unlink(missing_ok=True)
        workdir.rmdir()

    per_record = {name: min(spent) / count for name, spent in cpu.items()}
    baseline = per_record["FileHandler"]
    section = Section(
        "CPU per record: each sink to a loopback receiver",
        notes=(
            f"{count:,} records ({CALL!r}) logged on the loop, yielding every {YIELD_EVERY}, "
            "through loopsink.install to one sink; this process's CPU time (all threads) "
            "until flush() returned, receivers in a child process. Every record checked at "
            f"the receiver. Least disturbed of {rounds} alternating rounds. Ratio: CPU per "
            "record against the file sink's (lower is better)."
        ),
    )
    for name, seconds in per_record.items():
        verdict = verdicts[name]
        whole = bool(verdict["exact"])
        ordered = bool(verdict["in_order"]) or name.endswith("UDP")
        label = f"{name}: records per CPU-second"
        if not whole:
            label += f" (received {verdict['received']} of {count}: NOT all verified)"
        ratio = seconds / baseline
        network = name != "FileHandler"
        section.rows.append(
            Row(
                label,
                1 / seconds,
                "records/CPU-s",
                ratio,
                f"<= {TARGET:g}x the file sink's CPU" if network else "",
                (ratio <= TARGET and whole and ordered) if network else None,
            )
        )
    return [section]


if __name__ == "__main__":
    logging.raiseExceptions = True
    for result in run(quick=bool(os.environ.get("QUICK"))):
        print(result.title)
        for r in result.rows:
            print(f"  {r.name:75} {r.value:12,.0f} {r.unit:14} {r.ratio:.2f}x {r.target} {r.met}")
