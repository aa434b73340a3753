"""A lane: one sink's backlog and the worker task that drives the sink from it.

The queue (:mod:`loopsink._queue`) owns the intake, the overflow policy, waking the
workers and the orchestration of ``flush``/``aclose``; a :class:`Lane` owns what happens
between a sink's backlog and the sink: batches handed to ``emit_batch``, turns taken with
other tasks, polling after small batches, writing the output a sink holds once its linger
is over, and the sink's final flush and close. It reads the sink only through
:class:`~loopsink.AsyncHandler`'s public contract.

What a lane needs of its queue while it runs is handed to :meth:`Lane.run` as a
:class:`LaneFeed`: the intake to look at, the fan-out that empties it into every lane, and
the queue's say on whether an idle lane may sleep. Nothing here keeps a reference to the
queue once the worker has ended.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from ._compat import Wakeup
from ._context import apply_bound_fields
from ._context import usage as _usage
from ._handler import AsyncHandler, emit_holding_lock, take_lock
from ._record import QueuedRecord, last_context, unpair, wrap_pairs
from ._sharedtexts import FormatSharing
from ._stats import DropReason, SinkStats
from ._tuning import LINGER as _LINGER
from ._tuning import POLL as _POLL
from ._tuning import TRICKLE as _TRICKLE
from ._tuning import TURN as _TURN
from ._tuning import WRAP_SLICE as _WRAP_SLICE

__all__ = ["AGAIN", "END", "SLEEP", "Lane", "LaneFeed", "Signal"]

#: What :attr:`LaneFeed.idle` tells an idle lane: stop, look at its backlog again, or sleep.
END = 0
AGAIN = 1
SLEEP = 2


class Signal:
    """A re-armable event: ``fire`` wakes every current waiter; later waits wait anew."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    async def wait(self) -> None:
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()

    def fire(self) -> None:
        event, self._event = self._event, None
        if event is not None:
            event.set()


class LaneFeed:
    """What a running lane needs of the queue that feeds it (given to :meth:`Lane.run`)."""

    __slots__ = ("fan_out", "gathering", "idle", "intake", "sharing", "sleeping")

    def __init__(
        self,
        *,
        intake: deque[Any],
        fan_out: Callable[[], None],
        idle: Callable[[Lane, bool], int],
        sleeping: Callable[[Lane], float],
        gathering: Callable[[], bool],
        sharing: FormatSharing | None,
    ) -> None:
        #: the queue's intake: a lane that finds records in it fans them out (``fan_out``)
        self.intake = intake
        #: move what waits in the intake to every lane
        self.fan_out = fan_out
        #: called with the lane and whether it polls, once its backlog is empty: ``END``
        #: (the queue is closing and nothing is left), ``AGAIN`` (records came meanwhile)
        #: or ``SLEEP``; the queue sets ``lane.idle`` and how soon ``put`` wakes the lanes
        self.idle = idle
        #: called with the lane just before it sleeps; returns how long a polling lane waits
        self.sleeping = sleeping
        #: whether the records come from other threads, gathered over a period: a lane
        #: that delivered any then keeps looking on that period, whatever the batch's size,
        #: so that no producer has to wake the loop's thread while records keep coming
        self.gathering = gathering
        #: the texts formatted once for the sinks that share a formatter, or None
        self.sharing = sharing


class Lane:
    """One sink's backlog, worker and counters. Touched only on the loop's thread."""

    __slots__ = (
        "backlog",
        "capacity",
        "context",
        "cut_context",
        "done",
        "dropped",
        "emitted",
        "filtered",
        "high_water",
        "hold_limit",
        "hold_until",
        "hook_failed",
        "idle",
        "in_flight",
        "late_base",
        "lock",
        "progress",
        "received",
        "scope",
        "settled",
        "sink",
        "wake",
    )

    def __init__(self, sink: AsyncHandler, capacity: int) -> None:
        self.sink = sink
        self.capacity = capacity
        #: intake items as put (records, QueuedRecords and (record, context) pairs): the
        #: lane makes them records when it delivers them (_records)
        self.backlog: deque[Any] = deque()
        #: the context of the last pair the lane has seen: a record alone shares it
        self.context: contextvars.Context | None = None
        #: the context of the last pair among records cut from the end of an offer: the
        #: next record alone that reaches the lane has it (see offer)
        self.cut_context: contextvars.Context | None = None
        self.in_flight = 0
        self.received = 0  # records offered to this lane (dropped ones included)
        self.settled = 0  # records done with: emitted, failed, filtered or dropped here
        self.emitted = 0
        self.filtered = 0
        self.high_water = 0
        self.dropped: dict[str, int] = {}
        self.idle = False
        #: the sink's hooks that raised, reported once each (see held_deadline)
        self.hook_failed: set[str] = set()
        #: after a small batch, records that came while the sink had it wait until then,
        #: unless hold_limit of them do (see holds()); flush() and the close set it to 0
        self.hold_until = 0.0
        self.hold_limit = min(_TRICKLE, capacity // 2)
        self.wake = Wakeup()  # the lane's own worker is its one waiter
        self.progress = Signal()
        self.done = anyio.Event()
        self.scope: anyio.CancelScope | None = None
        self.late_base = sink.late_failures  # what the sink had lost before this queue
        self.lock: anyio.Lock = None  # type: ignore[assignment] # the sink's, set on the loop

    # -- taking records: the queue's fan-out ------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self.backlog) + self.in_flight

    def room(self) -> int:
        return self.capacity - len(self.backlog)

    def holds(self) -> bool:
        """Whether the few records in the backlog wait for more before they are delivered.

        A sink that waits on its batch (a network send) finds the records logged meanwhile
        when it is done: a few, after a small batch. They wait like those that come later
        (see POLL), or such a sink would get a batch, and make a send, per pass of the loop.
        After such a hold, a sink that holds the output of its last batch for a linger
        (a file sink writes behind) has records wait until that output is due: delivered
        earlier, they would only wait in its held output, and each sink of a queue would
        cost the loop a pass of its worker for every few records. Never so many records
        that the backlog could overflow meanwhile; ``flush()`` and the close end any hold
        (``hold_until`` = 0).
        """
        backlog = self.backlog
        if not backlog or len(backlog) >= self.hold_limit or not self.hold_until:
            return False
        now = monotonic()
        if now < self.hold_until:
            return True
        # records wait for held output due within a linger, for nothing further off (the
        # HTTP sink's next look at a request, say)
        held = self.held_deadline()
        return held is not None and now < held <= now + _LINGER

    def held_deadline(self) -> float | None:
        """The sink's ``linger_deadline()``; ``None`` if it raises.

        A sink's hook that raises must not stop its lane, nor, through the fan-out, every
        other sink of the queue: the failure is reported once, and the sink's held output
        is then left to its next batch, ``flush()`` and ``close()``.
        """
        try:
            return self.sink.linger_deadline()
        except Exception:
            self._report_hook("linger_deadline()", "held output waits for its next batch")
            return None

    def sink_needs_context(self) -> bool:
        """The sink's ``needs_context()``; ``True`` (the safe answer) if it raises."""
        try:
            return self.sink.needs_context()
        except Exception:
            self._report_hook("needs_context()", "records keep their contexts")
            return True

    def _report_hook(self, hook: str, instead: str) -> None:
        if hook not in self.hook_failed:
            self.hook_failed.add(hook)
            self.sink.report_error(f"{hook} raised; the queue goes on without it: {instead}")

    def offer(self, records: list[Any], policy: str) -> None:
        """Take ``records`` (intake items) as far as there is room."""
        backlog = self.backlog
        self.received += len(records)
        space = self.capacity - len(backlog)
        if self.cut_context is not None:
            records = self._after_cut(records)
        level = self.sink.level
        if level:
            records = self._at_level(records, level)
            if not records:  # nothing for this sink: no need to wake its worker
                return
        if len(records) <= space or policy == "block":
            backlog.extend(records)
        elif policy == "drop_oldest":
            backlog.extend(records)
            excess = len(backlog) - self.capacity
            for _ in range(excess):
                backlog.popleft()
            self._drop(DropReason.EVICTED, excess)
        else:
            kept = max(space, 0)
            backlog.extend(records[:kept])
            self._drop(DropReason.FULL, len(records) - kept)
            # a pair among the records cut gives its context to the next record alone
            self.cut_context = last_context(records[kept:], self.cut_context)
        pending = self.pending
        if pending > self.high_water:
            self.high_water = pending
        if self.idle and not self.holds():
            self.idle = False
            self.wake.fire()

    def _at_level(self, records: list[Any], level: int) -> list[Any]:
        """``records`` without those below the sink's level, counted as filtered here.

        They would only take room in the backlog (a slow ERROR-only sink would drop errors
        behind a flood of INFO records) and wake the worker for nothing. A record alone
        shares the context of the last pair before it: one that follows a pair left out
        is paired with that pair's context, or the next offer's is (``cut_context``).
        """
        kept: list[Any] = []
        carried: contextvars.Context | None = None  # set by a pair left out
        for item in records:
            paired = type(item) is tuple
            record = item[0] if paired else item
            if record.levelno < level:
                if paired and item[1] is not None:
                    carried = item[1]
                continue
            if carried is not None:
                if paired:
                    if item[1] is not None:  # it sets the context itself
                        carried = None
                elif not isinstance(item, QueuedRecord):
                    item = (item, carried)
                    carried = None
            kept.append(item)
        if len(kept) < len(records):
            if carried is not None:
                self.cut_context = carried
            self._left_out(len(records) - len(kept))
        return kept

    def _left_out(self, count: int) -> None:
        """``count`` records offered were below the sink's level: done with, as filtered."""
        self.filtered += count
        self.settled += count
        self.progress.fire()

    def offer_own(self, record: logging.LogRecord) -> None:
        """Take a record of loopsink's own (the drop summary): past the bound, never dropped."""
        self.received += 1
        if record.levelno < self.sink.level:
            self._left_out(1)
            return
        self.backlog.append(record)
        if self.idle:
            self.idle = False
            self.wake.fire()

    def _after_cut(self, records: list[Any]) -> list[Any]:
        """``records``, the first record alone among them paired with ``cut_context``."""
        for index, item in enumerate(records):
            if type(item) is tuple:  # a pair: it sets the context itself (if it has one)
                if item[1] is not None:
                    break
                continue
            if not isinstance(item, QueuedRecord):  # alone: it had the context cut
                pair = (item, self.cut_context)
                records = [*records[:index], pair, *records[index + 1 :]]
                break
        else:
            return records  # none yet: the next offer's
        self.cut_context = None
        return records

    def _drop(self, reason: str, count: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count
        self.settled += count
        self.progress.fire()

    def snapshot(self) -> SinkStats:
        return SinkStats(
            name=self.sink.describe(),
            emitted=self.emitted - (self.sink.late_failures - self.late_base),
            errors=self.sink.error_count,
            pending=self.pending,
            high_water=self.high_water,
            dropped=dict(self.dropped),
            last_error=self.sink.last_error,
        )

    # -- the worker ---------------------------------------------------------------------------

    async def run(self, feed: LaneFeed, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """The lane's worker: deliver the backlog until the queue closes, then close the sink."""
        # Shielded so that cancelling the body of ``async with queue`` still drains; the
        # queue's aclose() cancels this scope (abandon) when its deadline passes.
        with anyio.CancelScope(shield=True) as scope:
            self.scope = scope
            task_status.started()
            sink = self.sink
            self.lock = sink.io_lock()  # the lane runs on one loop: look its lock up once
            sink.linger_watched = True
            sink.format_sharing = feed.sharing
            intake, fan_out, idle, sleeping = feed.intake, feed.fan_out, feed.idle, feed.sleeping
            gathering = feed.gathering
            backlog = self.backlog
            clock = time.perf_counter
            turn_ends = clock() + _TURN
            poll = False
            poll_ends: float | None = None  # when the look after a small batch is due
            # held output was just written ahead of its linger; if the sink still holds
            # it (its last write still runs), wait for the deadline it gives instead
            wrote_early = False
            try:
                while True:
                    if intake:
                        fan_out()
                    holding = self.holds()
                    if backlog and not holding:
                        # records that trickle in, a few per pass of the loop, are
                        # gathered for a moment; larger batches are taken as they come,
                        # except from other threads, which are gathered anyway
                        waiting = len(backlog)
                        count = await self._deliver()
                        if gathering():  # the gathering's period holds them back already
                            poll = True
                            self.hold_until = 0.0
                        elif count < waiting:  # cut by max_batch_size: the rest goes next
                            poll = False
                            self.hold_until = 0.0
                        elif count < _TRICKLE:
                            poll = True
                            self.hold_until = monotonic() + _POLL / 2
                        else:
                            poll = False
                            self.hold_until = 0.0
                        poll_ends = None
                        wrote_early = False
                        # A sink that returns without suspending (one that holds its
                        # output) and records that keep coming (other threads, or a sink
                        # that logs) would keep this loop going and starve every other
                        # task: take turns with them.
                        if clock() > turn_ends:
                            # a sink whose batches never say their output is due still
                            # gets it written once its linger is over
                            if self._held_output_due():
                                await self._write_held()
                            await anyio.lowlevel.checkpoint()
                            turn_ends = clock() + _TURN
                        continue
                    verdict = idle(self, poll)
                    if verdict == END:
                        break
                    if verdict == AGAIN:
                        continue
                    look_every = sleeping(self)
                    period: float | None = None
                    now = monotonic()
                    if poll:
                        if poll_ends is None:
                            poll_ends = now + look_every
                        period = max(0.0, poll_ends - now)
                    else:
                        poll_ends = None
                    held_until = self.held_deadline()  # asked once per wait
                    if holding:
                        # the records held go out when the hold ends (or once there are
                        # enough of them: offer() wakes the lane then), not at the poll
                        ends = self.hold_until
                        if held_until is not None and held_until <= now + _LINGER:
                            ends = max(ends, held_until)
                        period = max(0.0, ends - now)
                    # Output the sink holds is written once its linger is over, here, if
                    # no batch did it first: a timeout on this wait, not a timer of its
                    # own, so the loop wakes no more often than the lane looks anyway.
                    if held_until is not None:
                        left = held_until - now
                        # Held output whose linger ends before the lane's next look (or,
                        # not polling, within one look period) is written now: few records
                        # could join it before then, and a wake of its own would cost a pass
                        # of the loop (one every linger, for a lane that looks once per
                        # gathering of other threads' records). Once per wait: a sink
                        # whose last write still runs cannot write it yet, and asking it
                        # again at once would spin until that write ends.
                        if left < (look_every if period is None else period) and not wrote_early:
                            self.idle = False
                            await self._write_held()
                            wrote_early = True
                            if self._held_output_due():
                                # a sink whose write_held() leaves its output due: take
                                # turns rather than hold the loop
                                await anyio.lowlevel.checkpoint()
                            continue
                        if period is None or left < period:
                            period = max(left, 0.0)
                    # flush() and aclose() wake the lane before the next look
                    await self.wake.wait(period)
                    self.idle = False
                    wrote_early = False
                    # woken for held output, or by a flush, before the look was due: the
                    # lane still polls (records may still wait for that look)
                    poll = poll_ends is not None and monotonic() < poll_ends
                    turn_ends = clock() + _TURN
                await self._finish_sink()
            finally:
                sink.linger_watched = False
                sink.format_sharing = None
                self.done.set()

    def _held_output_due(self) -> bool:
        """Whether the sink holds output whose linger is over."""
        due = self.held_deadline()
        return due is not None and due <= monotonic()

    async def _write_held(self) -> None:
        """Start writing the output the sink holds: its linger is over."""
        sink = self.sink
        lock = self.lock
        await take_lock(lock)
        try:
            await sink.write_held()
        except Exception:
            sink.report_error("writing held output")
        finally:
            lock.release()

    async def _deliver(self) -> int:
        """Hand the waiting records to the sink, as one batch; return how many."""
        sink = self.sink
        backlog = self.backlog
        count = len(backlog)
        if count <= sink.max_batch_size:  # the common case: take everything, in C
            batch = list(backlog)
            backlog.clear()
        else:
            count = sink.max_batch_size
            pop = backlog.popleft
            batch = [pop() for _ in range(count)]
        self.in_flight = count
        batch = await self._records(batch)
        if sink.filters:  # the level was applied when the lane was offered the records
            accepted = sink.accept_batch(batch)
        else:
            accepted = batch
        errors_before, late_before = sink.error_count, sink.late_failures
        if accepted:
            await emit_holding_lock(sink, accepted, self.lock)
        # failures of earlier batches that surfaced meanwhile are not this batch's
        late = sink.late_failures - late_before
        failed = min(sink.error_count - errors_before - late, len(accepted))
        self.emitted += len(accepted) - failed
        self.filtered += count - len(accepted)
        self.in_flight = 0
        self.settled += count
        self.progress.fire()
        return count

    async def _records(self, items: list[logging.LogRecord]) -> list[logging.LogRecord]:
        """The lane's intake items as records, carrying their contexts if the sink reads them.

        A large batch is made in slices, taking turns with other tasks in between.
        """
        if not (_usage.bound or self.sink_needs_context()):
            # nothing this sink runs reads context variables: the records as they are
            records, self.context = unpair(items, self.context)
            return records
        if len(items) <= _WRAP_SLICE:
            records, self.context = wrap_pairs(items, self.context)
        else:
            records = []
            clock = time.perf_counter
            turn_ends = clock() + _TURN
            for start in range(0, len(items), _WRAP_SLICE):
                if clock() > turn_ends:
                    await anyio.lowlevel.checkpoint()
                    turn_ends = clock() + _TURN
                part, self.context = wrap_pairs(items[start : start + _WRAP_SLICE], self.context)
                records += part
        if _usage.bound:  # someone called loopsink.bind(): fields may ride with the records
            apply_bound_fields(records)
        return records

    async def _finish_sink(self) -> None:
        sink = self.sink
        async with sink.io_lock():
            try:
                await sink.flush()
            except Exception:
                sink.report_error("flush() while the queue was closing")
            try:
                await sink.close()
            except Exception:
                sink.report_error("close() while the queue was closing")

    # -- flush and close: the queue's orchestration -----------------------------------------

    async def flush_to(self, target: int) -> None:
        """Wait until ``target`` records offered here are settled, then flush the sink."""
        if self.settled < target:
            self.hold_until = 0.0
            self.wake.fire()  # a worker between two looks at its backlog looks now
        while self.settled < target and not self.done.is_set():
            await self.progress.wait()
        if self.done.is_set():
            return
        async with self.sink.io_lock():
            try:
                await self.sink.flush()
            except Exception:
                self.sink.report_error("flush()")

    def abandon(self) -> None:
        """The close deadline passed: count what is pending as lost and stop the worker."""
        lost = self.pending
        self.backlog.clear()
        if lost:
            self.dropped[DropReason.DEADLINE] = self.dropped.get(DropReason.DEADLINE, 0) + lost
        if self.scope is not None:
            self.scope.cancel()

    async def close_late(self) -> None:
        """Close the sink of an abandoned lane (its worker never reached its close)."""
        try:
            await self.sink.close()
        except Exception:
            self.sink.report_error("close() after the close deadline")
