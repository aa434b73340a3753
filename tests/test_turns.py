"""Turns: how a sink's work on the loop is sliced, and when a sink counts as late."""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

import loopsink
from helpers import Ticker, spin
from loopsink._compat import current_backend
from loopsink._tuning import FORMAT_CHECK_EVERY, LATE_SLICE_MAX
from loopsink._turns import Turns, late
from servers.smtpd import running_smtpd

pytestmark = pytest.mark.anyio


def record(age: object) -> logging.LogRecord:
    made = logging.makeLogRecord({"msg": "m"})
    if isinstance(age, float) and age == age:
        made.created = time.time() - age
    else:
        made.created = age  # type: ignore[assignment]
    return made


@pytest.mark.parametrize(
    ("age", "is_late"),
    [
        (1.0, True),  # logged a second ago
        (0.0, False),  # just now
        ("yesterday", False),  # a record made by hand may carry anything
        (None, False),
        (float("nan"), False),
    ],
)
def test_only_a_batch_whose_first_record_is_old_counts_as_late(age: object, is_late: bool) -> None:
    assert late([record(age), record(0.0)]) is is_late
    assert late([]) is False


async def test_a_slice_lasts_as_long_as_the_other_tasks_ran_up_to_its_cap() -> None:
    """Measured in the loop thread's CPU time: a task that spins 5 ms between two slices
    makes the next one last the cap (1 ms here, or LATE_SLICE_MAX for a late batch)."""

    async def busy() -> None:
        spin(0.005)

    for first, cap in ((record(0.0), 0.001), (record(10.0), LATE_SLICE_MAX)):
        before = time.perf_counter()
        turns = Turns([first], 0.0001, 0.001, checkpoints=2)  # trio: the spin runs in one
        after = time.perf_counter()
        assert before + 0.0001 <= turns.deadline <= after + 0.0001  # the first: the shortest
        async with anyio.create_task_group() as tg:
            tg.start_soon(busy)
            await turns.pause()
            left = turns.deadline - time.perf_counter()
        assert cap / 2 < left <= cap, (cap, left)


def test_a_step_longer_than_a_slice_makes_the_next_steps_smaller() -> None:
    """A step of 64 records that ran past the longest slice, 9 shortest slices, makes the
    next step 7 records or fewer (fewer if the machine stretched it in wall time); a step
    within the longest slice, or a step of one record, leaves the size as it is."""
    turns = Turns([record(0.0)], 0.005, 0.01, per_look=64)
    spin(0.002)  # within the longest slice: unchanged
    turns.due()
    assert turns.per_look == 64
    spin(0.045)  # 64 * 0.005 / 0.045 = 7.1
    assert turns.due()
    assert 1 <= turns.per_look <= 7, turns.per_look
    one = Turns([record(0.0)], 0.001, 0.002)
    spin(0.005)
    assert one.due()
    assert one.per_look == 1


# -- every sink that formats on the loop slices by time, not by count --------------------------

COST = 0.0015  # a formatter's CPU time per record: longer than the longest slice
BATCH = FORMAT_CHECK_EVERY + 16


class CostlyFormatter(logging.Formatter):
    """A formatter that costs COST of CPU a record (a structlog chain, a large template), and
    notes the ticker's count as it formats each one."""

    def __init__(self, ticker: Ticker) -> None:
        super().__init__("%(message)s")
        self.ticker = ticker
        self.seen: list[int] = []

    def format(self, record: logging.LogRecord) -> str:
        spin(COST)
        self.seen.append(self.ticker.count)
        return super().format(record)


@contextlib.asynccontextmanager
async def costly_sink(kind: str, folder: Path) -> AsyncIterator[loopsink.AsyncHandler]:
    """A sink of ``kind`` with a real destination, closed when the block ends."""
    sink: loopsink.AsyncHandler
    with contextlib.ExitStack() as stack:
        if kind == "file":
            sink = loopsink.FileHandler(folder / "file.log")
        elif kind == "rotating":
            sink = loopsink.RotatingFileHandler(folder / "r.log", maxBytes=1 << 30)
        elif kind == "syslog":
            receiver = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            receiver.bind(("127.0.0.1", 0))
            sink = loopsink.SysLogHandler(address=receiver.getsockname())
        elif kind == "smtp":
            server = stack.enter_context(running_smtpd())
            sink = loopsink.SMTPHandler(
                server.mailhost, "app@example.com", ["ops@example.com"], "s", digest_interval=60
            )
        else:
            send, receive = anyio.create_memory_object_stream[object](BATCH)
            stack.enter_context(send)
            stack.enter_context(receive)
            sink = loopsink.QueueHandler(send)
        try:
            yield sink
        finally:
            await sink.aclose()


@pytest.mark.parametrize("kind", ["file", "rotating", "syslog", "smtp", "queue"])
async def test_a_costly_formatter_takes_turns_with_the_other_tasks(
    kind: str, tmp_path: Path
) -> None:
    """Past the first step (at most FORMAT_CHECK_EVERY records), a formatter that costs more
    than a slice a record lets the other tasks run after each record, on every sink that
    formats on the loop. (Slicing by count let 64 or 128 such records, 96 or 190 ms, run
    without a break.)"""
    ticker = Ticker()
    formatter = CostlyFormatter(ticker)
    records = [logging.makeLogRecord({"msg": f"record {i}"}) for i in range(BATCH)]
    async with costly_sink(kind, tmp_path) as sink:
        sink.setFormatter(formatter)
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker.run)
            await sink.emit_batch(records)
            ticker.stop.set()
    assert sink.error_count == 0
    assert len(formatter.seen) == BATCH
    # Trio runs the runnable tasks of a pass in a random order, so the sink's step of one
    # pass and of the next can follow each other: two records, never three, between two
    # steps of the ticker. (asyncio keeps the order: one.)
    most = 1 if current_backend() == "asyncio" else 2
    after_first_step = collections.Counter(formatter.seen[FORMAT_CHECK_EVERY - 1 :])
    assert max(after_first_step.values()) <= most, formatter.seen
