"""WatchedFileHandler under a real logrotate, while records keep arriving.

``create`` mode (rename, then a new file) must lose nothing: the sink writes into the
renamed file until its next batch notices the change and reopens. ``copytruncate``
(copy, then truncate in place) has a known window between the copy and the truncation
where lines are lost whatever the writer does; the test measures it and checks that
nothing worse happens (no duplicates, no NUL holes: the file is opened in append mode).
"""

from __future__ import annotations

import logging
import os

import anyio
import pytest

import loopsink
from servers.logrotate import Logrotate

pytestmark = [pytest.mark.logrotate, pytest.mark.timeout(60)]

ROTATIONS = 6
PER_ROTATION = 3000


async def _log_while_rotating(folder: str, mode: str) -> tuple[int, list[int], bytes]:
    """Log continuously through the bridge while logrotate rotates the file ROTATIONS times.

    Returns how many records were logged, the record numbers found in all files in order
    (oldest file first), and the raw bytes found.
    """
    rotator = Logrotate(folder, "app.log", mode)  # type: ignore[arg-type]
    sink = loopsink.WatchedFileHandler(rotator.log)
    logger = logging.getLogger(f"test.logrotate.{mode}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    sent = 0
    done = anyio.Event()
    milestone = (0, anyio.Event())  # (count to reach, event set when it is reached)

    async def produce() -> None:
        nonlocal sent
        while not done.is_set():
            for _ in range(50):
                logger.info("record %d", sent)
                sent += 1
            if sent >= milestone[0]:
                milestone[1].set()
            await queue.flush()  # pace the producer: writes land while logrotate works

    with anyio.fail_after(40):
        async with loopsink.install(sink, logger=logger) as queue:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(produce)
                for _ in range(ROTATIONS):
                    await rotator.rotate()
                    # let a few thousand records reach each generation of the file
                    milestone = (sent + PER_ROTATION, anyio.Event())
                    await milestone[1].wait()
                done.set()
        assert queue.stats.dropped_total == 0
    assert sink.error_count == 0
    raw = b""
    for path in rotator.files():
        with open(path, "rb") as file:
            raw += file.read()
    found = [int(line.rsplit(b" ", 1)[1]) for line in raw.splitlines() if line]
    return sent, found, raw


async def test_create_mode_loses_nothing(tmp_path: str) -> None:
    sent, found, raw = await _log_while_rotating(str(tmp_path), "create")
    assert len(os.listdir(tmp_path)) >= ROTATIONS + 1
    assert found == list(range(sent))  # every record, once, in order across the files
    assert b"\0" not in raw


async def test_copytruncate_loses_only_the_copy_window(tmp_path: str) -> None:
    sent, found, raw = await _log_while_rotating(str(tmp_path), "copytruncate")
    assert b"\0" not in raw  # append mode: no hole after the truncation
    assert len(set(found)) == len(found)  # nothing twice
    assert found == sorted(found)  # nothing out of order
    present = set(found)
    gaps, previous_missing = 0, False
    for number in range(sent):
        missing = number not in present
        gaps += missing and not previous_missing
        previous_missing = missing
    # What is lost is lost in the copy windows only: at most one run of consecutive
    # records per rotation, never records scattered elsewhere.
    assert gaps <= ROTATIONS
    lost = sent - len(found)
    print(f"copytruncate: {lost} of {sent} records lost in {gaps} windows, {ROTATIONS} rotations")
