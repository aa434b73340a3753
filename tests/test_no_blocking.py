"""The loop never blocks: blockbuster fails any blocking call made on the asyncio loop.

One call is allowed, and only where it is made: an I/O thread's GIL lend when the loop
hands it a job, a lock wait of at most 0.5 ms (see loopsink._executor).

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
        # The one deliberate exception: the lend of the GIL to a sink's I/O thread when a
        # job is handed over, a lock wait of at most 0.5 ms.
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
