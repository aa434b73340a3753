"""Many processes, one log file: workers put records on a queue, one listener writes them.

Several processes appending to one file interleave and tear lines; the stdlib's answer is
a ``multiprocessing.Queue`` that every worker logs into and one process that writes. Here
that one process runs an event loop: ``loopsink.QueueListener`` takes records off the queue
(from a worker thread, so the loop never waits on the pipe) and hands them, a burst at a
time, to ``loopsink.FileHandler``, which writes each burst with one ``write``.

Which ``QueueHandler`` runs in a worker depends on the worker:

* a plain process with no event loop uses the stdlib's ``logging.handlers.QueueHandler``.
  With a ``multiprocessing.Queue`` its ``put_nowait`` only appends to a buffer that a
  feeder thread pickles into the pipe, so it never blocks, and it prepares records exactly
  as loopsink's does;
* a process that runs an event loop (an async service) logs through loopsink's bridge into
  ``loopsink.QueueHandler``, like any other sink.

The example starts 4 workers, 2 of each kind, each logging 500 records, then checks that
the file holds every record exactly once (exit status 1 otherwise).

Run it with ``python examples/multiprocess_queue.py``; it takes about a second.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import os
import sys
import tempfile
from collections import Counter
from typing import Any

import anyio
import anyio.to_thread

import loopsink

RECORDS = 500


def plain_worker(queue: Any, worker: int) -> None:
    """A process without an event loop: the stdlib's QueueHandler."""
    logger = logging.getLogger("worker")
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.handlers.QueueHandler(queue))
    for i in range(RECORDS):
        logger.info("worker %d (plain) record %d", worker, i)


def async_worker(queue: Any, worker: int) -> None:
    """A process with an event loop: the bridge feeds loopsink's QueueHandler."""

    async def main() -> None:
        logger = logging.getLogger("worker")
        logger.setLevel(logging.INFO)
        async with loopsink.install(loopsink.QueueHandler(queue), logger=logger):
            for i in range(RECORDS):
                logger.info("worker %d (async) record %d", worker, i)
                if i % 100 == 99:
                    await anyio.sleep(0)

    anyio.run(main)


async def main() -> int:
    # "spawn": a fresh interpreter per worker. fork() from a process that runs threads (the
    # listener's worker threads, the queue's feeder) can copy a lock in the locked state.
    ctx = multiprocessing.get_context("spawn")
    queue: Any = ctx.Queue()
    path = os.path.join(tempfile.mkdtemp(prefix="loopsink-mp-"), "all.log")
    sink = loopsink.FileHandler(path)
    sink.setFormatter(logging.Formatter("%(processName)-10s %(levelname)s %(message)s"))
    workers = [
        ctx.Process(target=target, args=(queue, n), name=f"worker-{n}")
        for n, target in enumerate([plain_worker, plain_worker, async_worker, async_worker])
    ]
    async with loopsink.QueueListener(queue, sink):
        for process in workers:
            await anyio.to_thread.run_sync(process.start)
        for process in workers:
            await anyio.to_thread.run_sync(process.join)
    # Leaving the block ran stop(): everything the workers put is in the file now.
    await sink.close()
    queue.close()
    queue.join_thread()

    with open(path, encoding="utf-8") as file:
        lines = file.read().splitlines()
    per_worker = Counter(line.split()[0] for line in lines)
    unique = len(set(lines))
    print(f"{path}: {len(lines)} lines, {unique} distinct")
    for name, count in sorted(per_worker.items()):
        print(f"  {name}: {count}")
    expected = len(workers) * RECORDS
    if len(lines) != expected or unique != expected:
        print(f"expected {expected} distinct lines", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # required with "spawn": workers import this module
    sys.exit(anyio.run(main))
