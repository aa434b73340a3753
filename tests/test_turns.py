"""Turns: how a sink's work on the loop is sliced, and when a sink counts as late."""

from __future__ import annotations

import logging
import time

import anyio
import pytest

from helpers import spin
from loopsink._tuning import LATE_SLICE_MAX
from loopsink._turns import Turns, late

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
