"""Turns on the event loop: how long a sink's own CPU work runs before other tasks run.

Sinks that format or encode on the loop (every sink's texts through ``format_lines``, the
syslog sink's frames, the rotating sink's texts, the SMTP sink's digests, the HTTP sink's
bodies, the socket sink's pickles) work in slices and yield between them, so a timer that
fell due meanwhile runs before the next slice. A slice is short while the loop is quiet,
the loop's lag being what matters then.
On a loop that never idles a fixed short slice loses the race: other tasks run for
milliseconds between two slices, and a sink that gets a fraction of a millisecond per
pass falls behind its application until the queue drops its records. So after other
tasks ran longer than the shortest slice, the next one lasts as long as they ran, up to
a cap: the sink takes turns evenly with a busy service.

Even turns can stay below what a saturated service logs (a pause of the sink may let the
other tasks run twice, and they may run several milliseconds each time). A batch whose
first record is already late (logged more than ``LATE_AFTER`` ago) is losing that race,
and takes turns up to ``LATE_SLICE_MAX`` until the sink has caught up: a longer wait for
the other tasks rather than records lost. A sink that keeps up never gets there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence

import anyio.lowlevel

from ._tuning import (
    FORMAT_CHECK_EVERY,
    FORMAT_SLICE_MAX,
    FORMAT_SLICE_SECONDS,
    LATE_AFTER,
    LATE_SLICE_MAX,
)

__all__ = ["Turns", "formatting", "formatting_steps", "late"]


class Turns:
    """The slices of one batch's work: call :meth:`due` between steps, :meth:`pause` when due.

    Args:
        records: the batch (its first record says whether the sink is late).
        shortest: the slice while the loop is quiet, in seconds.
        longest: the cap of a slice after other tasks ran long.
        checkpoints: how many times a pause yields. On asyncio a task's next step is
            already in the ready queue when the due timers are moved there, so after one
            checkpoint it would run before them, and a timer would wait two slices; a
            second checkpoint only re-queues the task, behind whatever fell due.
        per_look: how many records a step takes (:attr:`per_look`), for work done a step
            of several records at a time. A step that alone runs longer than ``longest``
            (a formatter that costs much a record) makes the next ones smaller, in
            proportion, to about ``shortest`` each, so that such a batch still yields about
            every slice; steps of cheap records stay as large as given.
    """

    __slots__ = ("_checkpoints", "_longest", "_looked", "_shortest", "deadline", "per_look")

    def __init__(
        self,
        records: Sequence[logging.LogRecord],
        shortest: float,
        longest: float,
        *,
        checkpoints: int = 1,
        per_look: int = 1,
    ) -> None:
        self._shortest = shortest
        self._longest = max(longest, LATE_SLICE_MAX) if late(records) else longest
        self._checkpoints = checkpoints
        #: how many records the next step takes before the next call of :meth:`due`
        self.per_look = per_look
        self._looked = time.perf_counter()
        self.deadline = self._looked + shortest

    def due(self) -> bool:
        """Whether this slice is over (call it once per step)."""
        now = time.perf_counter()
        step = now - self._looked
        if step > self._longest and self.per_look > 1:
            self.per_look = max(1, int(self.per_look * self._shortest / step))
        self._looked = now
        return now > self.deadline

    async def pause(self) -> None:
        """Let the other tasks run, then start the next slice."""
        # What the other tasks ran is the loop thread's CPU time meanwhile: time spent
        # idle in select, waiting for the GIL or descheduled by the machine is not theirs,
        # and must not lengthen the next slice (a timer due meanwhile would wait for it).
        ran = time.thread_time()
        for _ in range(self._checkpoints):
            await anyio.lowlevel.checkpoint()
        ran = time.thread_time() - ran
        self._looked = now = time.perf_counter()
        self.deadline = now + min(max(self._shortest, ran), self._longest)


def late(records: Sequence[logging.LogRecord]) -> bool:
    """Whether the first of ``records`` was logged more than ``LATE_AFTER`` ago."""
    created = getattr(records[0], "created", None) if records else None
    if type(created) is not float and type(created) is not int:
        return False  # a record made by hand may carry anything
    return time.time() - created > LATE_AFTER


def formatting(records: Sequence[logging.LogRecord]) -> Turns:
    """The turns of formatting ``records`` into texts on the loop (one rule for every sink)."""
    return Turns(records, FORMAT_SLICE_SECONDS, FORMAT_SLICE_MAX, per_look=FORMAT_CHECK_EVERY)


async def formatting_steps(
    records: Sequence[logging.LogRecord],
) -> AsyncIterator[tuple[int, Sequence[logging.LogRecord]]]:
    """``records`` in steps to format, as ``(index of the first, step)``, taking turns with
    the other tasks between steps (see :func:`formatting`)."""
    turns = formatting(records)
    start = 0
    while start < len(records):
        if start and turns.due():
            await turns.pause()
        step = records[start : start + turns.per_look]
        yield start, step
        start += len(step)
