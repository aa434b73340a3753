"""The multi-process recipe end to end: 4 worker processes, one listener, every record once.

Two workers are plain processes with no event loop: they log through the stdlib's own
``logging.handlers.QueueHandler``. Two run an event loop and log through loopsink's bridge
into ``loopsink.QueueHandler``. All four put on one ``multiprocessing.Queue``; this process
runs ``loopsink.QueueListener`` into a ``loopsink.FileHandler``.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
from pathlib import Path
from typing import Any

import anyio
import pytest

import loopsink

RECORDS_PER_WORKER = 250
WORKERS = [("plain", 0), ("plain", 1), ("loop", 2), ("loop", 3)]


def _log_records(logger: logging.Logger, worker: int) -> None:
    for i in range(RECORDS_PER_WORKER):
        if i == 7:
            try:
                raise KeyError(f"w{worker}")
            except KeyError:
                logger.exception("worker %d record %d", worker, i)
        else:
            logger.info("worker %d record %d", worker, i, extra={"worker": worker})


def plain_worker(q: Any, worker: int) -> None:
    """A process without an event loop: the stdlib's QueueHandler, which never blocks here."""
    logger = logging.getLogger(f"worker{worker}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(logging.handlers.QueueHandler(q))
    _log_records(logger, worker)


def loop_worker(q: Any, worker: int) -> None:
    """A process with an event loop: the bridge feeds loopsink's QueueHandler."""

    async def main() -> None:
        logger = logging.getLogger(f"worker{worker}")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        async with loopsink.install(loopsink.QueueHandler(q), logger=logger):
            _log_records(logger, worker)

    anyio.run(main)


@pytest.mark.slow
async def test_four_processes_every_record_exactly_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")  # no fork: this process runs threads
    q: Any = ctx.Queue()
    path = tmp_path / "all.log"
    sink = loopsink.FileHandler(path)
    sink.setFormatter(logging.Formatter("%(processName)s|%(name)s|%(message)s"))
    processes = [
        ctx.Process(
            target=plain_worker if kind == "plain" else loop_worker,
            args=(q, worker),
            name=f"proc{worker}",
        )
        for kind, worker in WORKERS
    ]
    try:
        with anyio.fail_after(50):
            async with loopsink.QueueListener(q, sink):
                for process in processes:
                    await anyio.to_thread.run_sync(process.start)
                for process in processes:
                    await anyio.to_thread.run_sync(process.join, 45)
                assert [p.exitcode for p in processes] == [0, 0, 0, 0]
            # stop() drained everything the workers put before they exited.
            await sink.close()
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
        q.close()
        q.join_thread()

    lines = [line for line in path.read_text().splitlines() if line.startswith("proc")]
    for _, worker in WORKERS:
        mine = [line for line in lines if line.startswith(f"proc{worker}|")]
        expected = [
            f"proc{worker}|worker{worker}|worker {worker} record {i}"
            for i in range(RECORDS_PER_WORKER)
        ]
        assert mine == expected, f"worker {worker}: missing, doubled or reordered records"
    assert len(lines) == len(WORKERS) * RECORDS_PER_WORKER
    # The exception's traceback crossed the process boundary as text in the message.
    text = path.read_text()
    for _, worker in WORKERS:
        assert f"KeyError: 'w{worker}'" in text
