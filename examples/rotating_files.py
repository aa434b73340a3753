"""Rotating log files written off the event loop: by size, by time, and after logrotate.

Three sinks run behind one ``loopsink.install`` in a temporary directory:

* ``RotatingFileHandler`` with ``maxBytes=20_000``, ``backupCount=3`` and
  ``compress="gzip"``: 2,000 records roll ``app.log`` over several times; the rotated
  files are ``app.log.1.gz`` … ``app.log.3.gz``, the oldest ones pruned;
* ``TimedRotatingFileHandler(when="S")`` on records whose ``created`` time is spread over
  five seconds (a stand-in for a long-running app; nothing here waits for time to pass):
  one file per second, named after that second;
* ``WatchedFileHandler`` while its file is renamed under it, as logrotate's ``create``
  mode does: the records before the rename stay in the old file, the ones after go to a
  new ``watched.log``.

The event loop never waits on a ``write``, ``rename`` or ``stat``: they all run in worker
threads. The example prints the files and how many lines each holds.

Run it with ``python examples/rotating_files.py``; it takes well under a second.
"""

from __future__ import annotations

import gzip
import logging
import os
import tempfile
import time
from collections.abc import Callable

import anyio
import anyio.lowlevel

import loopsink


def spread_over_five_seconds(start: float, count: int) -> Callable[[logging.LogRecord], bool]:
    """A logger filter that gives the n-th record the time ``start + 5 * n / count``."""
    seen = [0]

    def stamp(record: logging.LogRecord) -> bool:
        record.created = start + 5 * seen[0] / count
        record.msecs = (record.created % 1) * 1000
        seen[0] += 1
        return True

    return stamp


def lines_in(path: str) -> int:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as file:
        return sum(1 for _ in file)


async def main() -> None:
    folder = tempfile.mkdtemp(prefix="loopsink-rotating-")
    start = float(int(time.time()))
    fmt = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")

    sized = loopsink.RotatingFileHandler(
        os.path.join(folder, "app.log"), maxBytes=20_000, backupCount=3, compress="gzip"
    )
    timed = loopsink.TimedRotatingFileHandler(
        os.path.join(folder, "timed.log"), when="S", delay=True, clock=lambda: start
    )
    watched = loopsink.WatchedFileHandler(os.path.join(folder, "watched.log"))
    for sink in (sized, timed, watched):
        sink.setFormatter(fmt)

    logger = logging.getLogger("shop")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addFilter(spread_over_five_seconds(start, 2000))

    async with loopsink.install(sized, timed, watched, logger=logger) as queue:
        for i in range(2000):
            logger.info("order %d shipped to %s", i, f"warehouse-{i % 7}")
            if i % 100 == 99:
                await anyio.lowlevel.checkpoint()
            if i == 999:
                await queue.flush()  # everything so far is in watched.log...
                os.rename(watched.baseFilename, watched.baseFilename + ".1")  # ...logrotate
    print(f"files in {folder}:")
    for name in sorted(os.listdir(folder)):
        print(f"  {name:32} {lines_in(os.path.join(folder, name)):5} lines")


if __name__ == "__main__":
    anyio.run(main)
