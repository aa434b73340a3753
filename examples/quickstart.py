"""Quickstart: ordinary `logging` calls, written by loopsink sinks without blocking the loop.

Run it: ``python examples/quickstart.py``. It logs from a few concurrent "requests" and from
a worker thread, then prints what reached the file and the queue's statistics.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

import anyio
import anyio.to_thread

import loopsink


async def handle_request(number: int) -> None:
    log = logging.getLogger("app.requests")
    log.info("request %d started", number)
    await anyio.sleep(0.01)  # the request's own I/O
    log.info("request %d handled in %.1f ms", number, 10.0)


def blocking_job() -> None:
    logging.getLogger("app.jobs").warning("a job in a worker thread logs too")


async def main() -> None:
    path = os.path.join(tempfile.mkdtemp(prefix="loopsink-quickstart-"), "app.log")
    file_sink = loopsink.FileHandler(path)
    file_sink.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    console = loopsink.StreamHandler(sys.stdout)
    console.setLevel(logging.WARNING)

    logging.getLogger().setLevel(logging.INFO)
    async with loopsink.install(file_sink, console) as queue:
        async with anyio.create_task_group() as tg:
            for number in range(5):
                tg.start_soon(handle_request, number)
        await anyio.to_thread.run_sync(blocking_job)
        await queue.flush()  # everything above is on disk now
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
        print(f"{len(lines)} lines in {path}; the first: {lines[0]}")
    # leaving the block drained, flushed and closed every sink
    stats = queue.stats
    print(
        f"enqueued {stats.enqueued}, dropped {stats.dropped_total}, "
        f"file sink emitted {stats.sinks[0].emitted}"
    )


if __name__ == "__main__":
    anyio.run(main)
