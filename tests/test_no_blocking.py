"""The loop never blocks: blockbuster fails any blocking call made on the asyncio loop.

Two calls are allowed, and only where they are made: ``run_blocking``'s bounded 0.1 ms nap
that lets a GIL-starved worker thread run (see loopsink._compat.run_blocking), and the
writer thread's GIL lend, a lock wait of at most 0.5 ms (see loopsink._writer).

blockbuster patches the blocking primitives (file and socket I/O, ``time.sleep``, lock
acquisition, ...) to raise when called from a running asyncio loop's thread; it is inert on
trio, so these tests run on asyncio only.
"""

from __future__ import annotations

import io
import logging
import pathlib
import threading

import anyio
import pytest
from blockbuster import blockbuster_ctx

import loopsink

pytestmark = pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])


async def test_log_calls_and_file_writes_do_not_block_the_loop(tmp_path: pathlib.Path) -> None:
    # Sinks are built first: like the stdlib's, a FileHandler opens its file when made.
    sinks = await anyio.to_thread.run_sync(
        lambda: (
            loopsink.FileHandler(tmp_path / "a.log"),
            loopsink.RotatingFileHandler(tmp_path / "r.log", maxBytes=2_000, backupCount=50),
            loopsink.StreamHandler(io.StringIO()),
        )
    )
    logger = logging.getLogger("nonblocking")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    with blockbuster_ctx() as busters:
        # The one deliberate exception: while a worker thread is overdue (starved of the
        # GIL by a saturated loop), run_blocking lets go of the GIL for 0.1 ms.
        busters.functions["time.sleep"].can_block_in("loopsink/_compat.py", "run_blocking")
        # And the lend of the GIL to a sink's writer thread: a lock wait of at most 0.5 ms.
        busters.functions["threading.Lock.acquire"].can_block_in("loopsink/_executor.py", "_lend")
        async with loopsink.install(*sinks, logger=logger) as queue:
            for i in range(2_000):
                logger.info("record %d with %s", i, ["a mutable", "argument"])
                if i % 100 == 0:
                    await anyio.sleep(0)

            def from_a_thread() -> None:
                for i in range(500):
                    logger.warning("thread %d", i)

            await anyio.to_thread.run_sync(from_a_thread)
            await queue.flush()
            assert queue.stats.dropped_total == 0
            assert all(s.errors == 0 for s in queue.stats.sinks)
    text = (tmp_path / "a.log").read_text()
    assert text.count("\n") == 2_500
    _ = threading
