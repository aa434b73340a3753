"""Instructions per log call on the loop's thread, counted by valgrind's callgrind.

The wall-clock caller rows move by a tenth of their ratio from one run to the next on a busy
machine; an instruction count does not (the same figure to a few parts in a million, whatever
else the machine runs). It misses what the clock sees of memory, such as cache misses while
the garbage collector walks records that wait in a queue, so it stands beside the clock's
rows, not in place of them.

Each variant runs twice in a child interpreter under callgrind, with the same setup, once
making no calls and once making ``count`` calls in a row as the wall-clock rows do (the
records pile up unread meanwhile, so the collector's work on them is counted); the child ends
with ``os._exit`` right after the last call, so neither drain nor shutdown is counted. The
difference, divided by ``count``, is the cost of one call. ``PYTHONHASHSEED`` is fixed so that
both runs hash alike.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from _common import CALL

CHILD = """
import logging, os, sys
import anyio
import loopsink
variant, count = sys.argv[1], int(sys.argv[2])
async def main():
    async with loopsink.LogQueue(loopsink.NullHandler(), capacity=2 * count + 2) as queue:
        handler = logging.NullHandler() if variant == "null" else loopsink.LoggingBridge(queue)
        logger = logging.getLogger("bench.instructions." + variant)
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        info = logger.info
        info(CALL, -1, 1.25)  # the first call opens what a variant opens lazily
        await queue.flush()
        for i in range(count):
            info(CALL, i, 1.25)
        os._exit(0)  # the count stops here: neither the drain nor the shutdown is counted
anyio.run(main)
""".replace("CALL", repr(CALL))

#: The variants measured: name in the child → row name.
VARIANTS = {"null": "stdlib NullHandler", "bridge": "loopsink bridge (loop thread)"}

_COLLECTED = re.compile(r"Collected : (\d+)")


def available() -> bool:
    return shutil.which("valgrind") is not None


def _count(variant: str, calls: int) -> int:
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-c",
            CHILD,
            variant,
            str(calls),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        check=False,
    )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run of {variant!r} failed: {done.stderr[-2000:]}")
    return int(found.group(1))


def per_call(count: int) -> dict[str, float]:
    """Instructions per call of each variant (row name → instructions), two runs at a time."""
    jobs = [(variant, calls) for variant in VARIANTS for calls in (0, count)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        totals = dict(zip(jobs, pool.map(lambda job: _count(*job), jobs), strict=True))
    return {
        name: (totals[(variant, count)] - totals[(variant, 0)]) / count
        for variant, name in VARIANTS.items()
    }
