"""The drop ledger: a queue's lost records, counted by reason, and the reports about them.

A :class:`~loopsink.LogQueue` loses records in two places: at its intake (``put`` finds no
room, the queue has closed, ``aclose`` gives up on what is left) and in a sink's lane (the
lane's bound; see :mod:`loopsink._lane`). The ledger keeps the intake's counts (on the
loop's thread without a lock, from other threads under one), adds the lanes' own, and says
what was lost: one WARNING record to every sink once the pressure ends (the quiet-time
summary), and on stderr for records logged after the queue closed (at the first such
record, and their count at exit).
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from collections.abc import Sequence

import anyio

from ._lane import Lane
from ._record import own_record
from ._stats import DropReason
from ._tuning import SUMMARY_QUIET_PERIOD as _SUMMARY_QUIET_PERIOD

__all__ = ["DropLedger"]


class DropLedger:
    """Counts one queue's dropped records by reason and reports them."""

    __slots__ = (
        "_capacity",
        "_closed_reported",
        "_lanes",
        "_lock",
        "_loop_drops",
        "_policy",
        "_reported",
        "_thread_drops",
        "final",
        "loop_thread",
        "summarising",
    )

    def __init__(self, lanes: Sequence[Lane], capacity: int, policy: str) -> None:
        self._lanes = lanes
        self._capacity = capacity
        self._policy = policy
        #: the thread of the loop that runs the queue (set by the queue when it starts)
        self.loop_thread: int | None = None
        # loop-thread counts need no lock; other threads share one
        self._loop_drops: dict[str, int] = {}
        self._thread_drops: dict[str, int] = {}
        self._lock = threading.Lock()
        self._reported = 0  # drops told in a summary so far
        self._closed_reported = False  # a "closed" drop was reported on stderr
        self.summarising = False  # a summary task waits for a quiet moment
        self.final = False  # the last summary was delivered: the queue is closing

    def count(self, reason: str, count: int = 1) -> None:
        """Count ``count`` records lost at the intake for ``reason`` (any thread)."""
        if threading.get_ident() == self.loop_thread:
            self._loop_drops[reason] = self._loop_drops.get(reason, 0) + count
        else:
            with self._lock:
                self._thread_drops[reason] = self._thread_drops.get(reason, 0) + count

    def counts(self) -> dict[str, int]:
        """The intake's drops by reason (the lanes' own are in their stats)."""
        with self._lock:
            counts = dict(self._thread_drops)
        for reason, count in self._loop_drops.items():
            counts[reason] = counts.get(reason, 0) + count
        return counts

    def total(self) -> int:
        return sum(self.counts().values()) + sum(sum(lane.dropped.values()) for lane in self._lanes)

    def unreported(self) -> bool:
        """Some drop is not in a summary yet."""
        if not (
            self._loop_drops or self._thread_drops or any(lane.dropped for lane in self._lanes)
        ):
            return False  # the common case, without the lock
        return self.total() > self._reported

    def summary_due(self, lane: Lane) -> bool:
        """``lane`` goes idle: whether a summary task should start to wait for quiet."""
        return (
            not self.summarising
            and bool(self._loop_drops or self._thread_drops or lane.dropped)
            and self.unreported()
        )

    async def summarise_when_quiet(self) -> None:
        """Deliver the summary once no record has been dropped for a quiet period."""
        try:
            while self.unreported() and not self.final:
                before = self.total()
                await anyio.sleep(_SUMMARY_QUIET_PERIOD)
                if self.total() == before:
                    self.deliver_summary()
        finally:
            self.summarising = False

    def deliver_summary(self) -> None:
        """Give every lane one WARNING record that counts the drops not told yet."""
        total = self.total()
        lost = total - self._reported
        if lost <= 0:
            return
        self._reported = total
        parts = [f"{reason}: {n}" for reason, n in sorted(self.counts().items())]
        for lane in self._lanes:
            parts.extend(
                f"{lane.sink.describe()} {reason}: {n}"
                for reason, n in sorted(lane.dropped.items())
            )
        record = own_record(
            "loopsink",
            logging.WARNING,
            "%d records dropped: queue full (capacity %d, overflow %r; totals so far: %s)",
            (lost, self._capacity, self._policy, ", ".join(parts)),
        )
        for lane in self._lanes:
            lane.offer_own(record)

    def deliver_last_summary(self) -> None:
        """The queue is closing and its intake is empty: the summary of what is left."""
        self.deliver_summary()
        self.final = True

    def report_closed(self, queue: object) -> None:
        """Records put after the close are lost: say so at the first, and count them at exit.

        Typical at interpreter exit, where logging.shutdown() closed the queue and daemon
        threads or later exit handlers still log.
        """
        if self._closed_reported:
            return
        self._closed_reported = True
        warn_stderr(
            f"loopsink: a record was logged after {queue!r} had closed: it is dropped, as are "
            f"later ones (counted in stats.dropped['closed']).\n"
        )
        try:
            atexit.register(self.report_closed_at_exit, queue)
        except Exception:  # interpreter already finalizing
            pass

    def report_closed_at_exit(self, queue: object) -> None:
        count = self.counts().get(DropReason.CLOSED, 0)
        if count:
            warn_stderr(
                f"loopsink: {count} log records were dropped because they were logged after "
                f"{queue!r} had closed.\n"
            )


def warn_stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
    except (OSError, ValueError, AttributeError):
        pass
