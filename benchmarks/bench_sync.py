"""A sync program's thread between network waits: what logging costs it in CPU.

A thread serves "requests": each logs two records and then waits about a millisecond, as a
WSGI worker waits on its client or a database. The figure is the process CPU time
(``time.process_time``: every thread, user and system) per request, for the stdlib's
``FileHandler`` on the same logger and for loopsink's ``start_in_thread`` with a
``FileHandler`` sink, drain at close included. Each variant runs in a fresh interpreter;
the variants alternate, several rounds, and the ratio is the median of the rounds' ratios.
Every record is counted in the file afterwards.

This row guards ``SYNC_GATHER`` in ``loopsink/_tuning.py``: records from other threads
wake the queue's worker once per burst of time, not once per request.

Run alone: ``python benchmarks/bench_sync.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import Row, Section

TARGET = 1.0

CHILD = """
import json, logging, sys, threading, time
import loopsink
variant, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
log = logging.getLogger("app")
log.propagate = False
log.setLevel(logging.INFO)
if variant == "stdlib":
    handler = logging.FileHandler(path)
    log.addHandler(handler)
    close = handler.close
elif variant == "loopsink":
    runner = loopsink.start_in_thread(loopsink.FileHandler(path), logger=log)
    close = runner.close
else:
    close = lambda: None
log.info("warm-up")  # the first record opens what a variant opens lazily
waiting = threading.Event()
start = time.process_time()
for i in range(count):
    log.info("request %d start", i)
    log.info("request %d done: %s", i, "ok")
    waiting.wait(0.001)  # the network
close()
print(json.dumps(time.process_time() - start))
"""

VARIANTS = ("none", "stdlib", "loopsink")


def run_variant(variant: str, path: Path, count: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, variant, str(path), str(count)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    cpu = float(json.loads(done.stdout))
    if variant != "none":
        lines = path.read_text().splitlines()
        expected = 2 * count + 1
        if len(lines) != expected:
            raise AssertionError(f"{variant}: {len(lines)} lines written, expected {expected}")
        path.unlink()
    return cpu / count * 1e6


def measure(count: int, rounds: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(rounds):
            order = VARIANTS if k % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                figures[variant].append(run_variant(variant, Path(tmp) / "out.log", count))
    return figures


def run(quick: bool) -> list[Section]:
    count, rounds = (500, 2) if quick else (3000, 6)
    figures = measure(count, rounds)
    std, ours, none = figures["stdlib"], figures["loopsink"], figures["none"]
    ratio = statistics.median(o / s for o, s in zip(ours, std, strict=True))
    logging_only = statistics.median(
        (o - n) / (s - n) for o, s, n in zip(ours, std, none, strict=True) if s > n
    )
    section = Section(
        "Sync thread, 2 records per request between network waits: process CPU",
        notes=(
            f"A thread logs two records per request, then waits 1 ms; {count:,} requests, "
            f"{rounds} alternating rounds, each variant in a fresh interpreter; process CPU "
            "time (all threads) per request, median of the rounds. Every record is counted."
        ),
    )
    section.rows = [
        Row("no logging", statistics.median(none), "µs CPU/request"),
        Row("stdlib FileHandler", statistics.median(std), "µs CPU/request", 1.0),
        Row(
            "loopsink start_in_thread + FileHandler",
            statistics.median(ours),
            "µs CPU/request",
            ratio,
            f"<= {TARGET:.1f}x",
            ratio <= TARGET,
        ),
        Row(
            "loopsink, logging's share only (minus no logging)",
            statistics.median(ours) - statistics.median(none),
            "µs CPU/request",
            logging_only,
        ),
    ]
    return [section]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    for result in run(parser.parse_args().quick):
        print(result.title)
        for row in result.rows:
            shown = f"{row.ratio:.2f}x" if row.ratio is not None else ""
            print(f"  {row.name}: {row.value:.1f} {row.unit} {shown} {row.target}")
