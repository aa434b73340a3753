"""LogQueue: the event-loop-owned queue that feeds sinks from worker tasks.

Shape of the inside::

    put() ── any thread ──▶ intake (deque, bounded) ──fan-out──▶ lane per sink ──▶ sink
                                                               (backlog + worker task)

This module is the intake, the overflow policies, waking the workers, and the
orchestration of ``flush``/``aclose`` and ``stats``; a lane, its worker and what it does
with its sink are :mod:`loopsink._lane`; counting and reporting dropped records is
:mod:`loopsink._drops`.

``put`` appends to a ``collections.deque`` (atomic in CPython) and only touches the loop
when the workers are asleep: from the loop thread it sets an event, from another thread it
schedules one callback, so a burst of records costs one wake-up, not one per record. Each
sink has a *lane*: its own bounded backlog and worker task, so a slow or hung sink never
delays the others. Whichever worker wakes first fans the intake out to every lane; there
is no separate task in between, which saves a task switch and an event on every pass.
"""

from __future__ import annotations

import contextvars
import enum
import logging
import sys
import threading
import warnings
from collections import deque
from collections.abc import Callable, Coroutine
from itertools import repeat
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio

from ._compat import (
    ThreadsafeScheduler,
    ThreadsafeTimer,
    threadsafe_scheduler,
    threadsafe_timer,
)
from ._drops import DropLedger, warn_stderr
from ._exceptions import QueueClosedError, QueueNotRunningError
from ._handler import AsyncHandler
from ._lane import AGAIN, END, SLEEP, Lane, LaneFeed, Signal
from ._record import (
    IMMUTABLE,
    PLAIN_SIZE,
    QueuedRecord,
    copied,
    extras_fixed,
    snapshot,
    wrap,
)
from ._sharedtexts import FormatSharing
from ._stats import DropReason, QueueStats
from ._tuning import BLOCK_RECHECK as _BLOCK_RECHECK
from ._tuning import CLOSE_GRACE as _CLOSE_GRACE
from ._tuning import POLL as _POLL
from ._tuning import SYNC_GATHER as _GATHER

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["LogQueue", "OverflowPolicy"]

OverflowPolicy = Literal["drop_newest", "drop_oldest", "block"]
_POLICIES: tuple[str, ...] = ("drop_newest", "drop_oldest", "block")

_popleft = deque.popleft
_get_ident = threading.get_ident

#: A put() threshold no intake reaches.
_NEVER = sys.maxsize

# _POLL, _GATHER, _CLOSE_GRACE and _BLOCK_RECHECK (and the lanes' _TURN, _TRICKLE and
# _WRAP_SLICE, the drop ledger's _SUMMARY_QUIET_PERIOD): see _tuning, which says what each
# trades and which bench row guards it.


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class LogQueue:
    """A bounded queue, owned by one event loop, that feeds records to async sinks.

    ``put`` may be called from any thread and never blocks the loop. Inside
    ``async with queue:`` one worker task per sink hands records to the sink's
    :meth:`~loopsink.AsyncHandler.emit_batch`, as many at a time as are waiting. Leaving
    the block drains, flushes and closes every sink (``aclose``), also when the body raised
    or was cancelled.

    Args:
        *sinks: the sinks to feed; each gets every record, in the order put.
        capacity: how many records may wait, in the intake and in each sink's backlog.
        overflow: what ``put`` does when the queue is full: ``"drop_newest"`` refuses the
            new record, ``"drop_oldest"`` evicts the oldest waiting one, ``"block"`` makes
            the calling thread wait for room (threads other than the loop's only: on the
            loop thread waiting would deadlock, so the record is dropped and counted).
        name: a label used in the drop summary and in ``repr``.

    Records that are dropped are counted by reason in :attr:`stats`, and once the pressure
    ends one WARNING record from the ``loopsink`` logger tells every sink how many were lost.
    """

    def __init__(
        self,
        *sinks: AsyncHandler,
        capacity: int = 10_000,
        overflow: OverflowPolicy = "drop_newest",
        name: str | None = None,
    ) -> None:
        if not sinks:
            raise ValueError(
                "LogQueue needs at least one sink, e.g. LogQueue(loopsink.StreamHandler())"
            )
        for sink in cast("tuple[object, ...]", sinks):
            if not isinstance(sink, AsyncHandler):
                hint = (
                    f"; use loopsink.{type(sink).__name__} instead of the stdlib's"
                    if isinstance(sink, logging.Handler)
                    else ""
                )
                raise TypeError(
                    f"LogQueue sinks must be loopsink sinks (AsyncHandler subclasses), "
                    f"got {sink!r}{hint}"
                )
        if len({id(s) for s in sinks}) != len(sinks):
            raise ValueError("the same sink was given to LogQueue twice; give each sink once")
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise TypeError(f"capacity must be an int, got {capacity!r}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if overflow not in _POLICIES:
            raise ValueError(
                f"overflow must be one of {', '.join(map(repr, _POLICIES))}, got {overflow!r}"
            )
        self._sinks = sinks
        self._capacity = capacity
        self._policy: str = overflow
        self.name = name
        #: QueuedRecords, (record, context) pairs, and records alone from the bridge's fast
        #: path (see _fast_context and wrap_pairs): what reads the intake must unpack them
        self._intake: deque[logging.LogRecord] = deque()
        self._lanes = [Lane(sink, capacity) for sink in sinks]
        #: texts formatted once for the sinks that share a formatter (none to share: None)
        self._sharing = FormatSharing() if len(sinks) > 1 else None
        self._state = _State.UNOPENED
        self._accepting = True
        self._loop_thread: int | None = None
        #: the loop's thread while the queue runs and accepts records, else None: the one
        #: attribute the bridge's fast path checks
        self._fast_thread: int | None = None
        #: The fast path (put_call) puts a record alone when its context equals this one
        #: (the context of its last pair); each lane carries the same thing on its side
        #: (Lane.context). Not with "drop_oldest": evicting a pair would leave the
        #: records after it with another record's context.
        self._fast_context: contextvars.Context | None = None
        self._remember_context = overflow != "drop_oldest"
        self._schedule: ThreadsafeScheduler | None = None
        self._schedule_later: ThreadsafeTimer | None = None
        #: how long an idle-bound worker waits for more records after a small batch: _POLL
        #: when the loop's own thread woke it, _GATHER when another thread did
        self._poll_period = _POLL
        self._task_group: anyio.abc.TaskGroup | None = None
        # fan-out state
        #: put() on the loop's thread wakes a worker once the intake holds more than this
        #: many records: 0 while a worker sleeps or looks on the gathering's period, half
        #: the capacity just after a look (the next one is a moment away), _NEVER once a
        #: wake-up is on its way. One comparison on the hot path.
        self._wake_at = _NEVER
        #: the same for put() from other threads: half the capacity while a gathering is
        #: under way (a wake-up is armed, or the workers look on its period anyway)
        self._thread_wake_at = _NEVER
        self._half = capacity // 2
        #: until when a put() from the loop's thread leaves polling workers to their own
        #: look (see _lane_idle)
        self._early_until = 0.0
        self._progress = Signal()  # fired whenever records leave the intake
        self._intake_closed = False  # closing, and the intake is empty for good
        self._drained = 0  # records moved out of the intake
        #: what was dropped, by reason, and the reports about it
        self._drops = DropLedger(self._lanes, capacity, overflow)
        #: counting a drop is the ledger's (bound here: put() calls it directly)
        self._count_drop = self._drops.count
        # overflow="block": producer threads wait here for room
        self._room = threading.Condition(threading.Lock())

    # -- producer side: any thread -----------------------------------------------------------

    def put(self, record: logging.LogRecord) -> bool:
        """Queue ``record`` for every sink; ``False`` if it was dropped.

        Never blocks the event loop: from the loop's own thread it returns at once, whatever
        the overflow policy. Records put before the queue starts wait (bounded) and are
        delivered once it runs.
        """
        if not self._accepting:
            self._count_drop(DropReason.CLOSED)
            self._report_closed_drop()
            return False
        intake = self._intake
        if len(intake) >= self._capacity and not self._make_room():
            return False
        if isinstance(record, QueuedRecord):
            intake.append(record)
        else:  # a record of the caller's own, with no context (see _fast_context)
            intake.append((record, None))  # type: ignore[arg-type]
        if _get_ident() == self._loop_thread:
            if len(intake) > self._wake_at:
                self._wake_at = _NEVER
                self._wake_workers()
        elif len(intake) > self._thread_wake_at:
            self._thread_wake_at = _NEVER
            self._wake_from_thread()
        return True

    def put_call(self, record: logging.LogRecord, context: contextvars.Context | None) -> bool:
        """Queue ``record`` as a log call has just made it, with the call's context.

        What a bridge calls for every record (:class:`LoggingBridge` does): the record is
        queued as it was at the call. A record that cannot change afterwards (a ``str``
        message, arguments and ``extra=`` values of immutable types, no exception) goes in
        as it is on the loop's thread, with ``context`` beside it, and as a copy of its
        attributes from any other thread (the caller's other handlers may still be at work
        on it there); any other is queued as a :func:`snapshot` copy, so the caller's other
        handlers see it untouched. Raises what formatting the message raises on that last
        path (a format string that does not match its arguments): the bridge reports it
        through its ``handleError``; on the others the sink reports it when it formats.

        Returns ``False`` if the record was dropped, as :meth:`put` does.
        """
        # The hot path of every log call: put()'s checks, inlined for the loop's thread.
        if type(record.msg) is str and not record.exc_info:
            # whether every argument is of a type whose value cannot change after the call,
            # unrolled for the common counts: this check is a good part of the call's cost
            args = record.args
            if not args:
                immutable = True
            elif type(args) is not tuple:
                immutable = False
            elif len(args) == 2:
                immutable = type(args[0]) in IMMUTABLE and type(args[1]) in IMMUTABLE
            elif len(args) == 1:
                immutable = type(args[0]) in IMMUTABLE
            else:
                immutable = IMMUTABLE.issuperset(map(type, args))
            state = record.__dict__
            if immutable and (len(state) <= PLAIN_SIZE or extras_fixed(state)):
                if _get_ident() != self._fast_thread:
                    return self.put(copied(record, context))
                # The record goes in with its context as a pair, or alone when its context
                # equals the one of the previous pair (the same task, no ContextVar set in
                # between: equal contexts compare in O(1)); the lane that delivers it makes
                # the pair a record (wrap_pairs), which keeps that allocation off this call.
                intake = self._intake
                if len(intake) < self._capacity:
                    if context == self._fast_context:
                        intake.append(record)
                    else:
                        intake.append((record, context))  # type: ignore[arg-type]
                        if self._remember_context:
                            self._fast_context = context
                    if len(intake) > self._wake_at:
                        self._wake_at = _NEVER
                        self._wake_workers()
                    return True
                return self.put(wrap(record, context))
        return self.put(snapshot(record, context))

    def _make_room(self) -> bool:
        """The intake is full: apply the overflow policy; ``True`` if the record may go in."""
        policy = self._policy
        if policy == "drop_oldest":
            try:
                self._intake.popleft()
            except IndexError:  # the workers emptied it meanwhile
                return True
            self._count_drop(DropReason.EVICTED)
            return True
        if policy == "block" and self._state is _State.OPEN and not self._on_loop_thread():
            with self._room:
                while len(self._intake) >= self._capacity and self._accepting:
                    self._room.wait(_BLOCK_RECHECK)
            if self._accepting:
                return True
            self._count_drop(DropReason.CLOSED)
            self._report_closed_drop()
            return False
        self._count_drop(DropReason.FULL)
        return False

    def _report_closed_drop(self) -> None:
        """A record was put after the close (see DropLedger.report_closed)."""
        self._drops.report_closed(self)

    def _on_loop_thread(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def _wake_workers(self) -> None:
        """Records the loop's own thread put are waiting: wake a worker, unless one looked a
        moment ago and looks again soon by itself. A gathering for other threads' records
        under way or not, these go out at once: the workers poll on POLL again."""
        if monotonic() < self._early_until and len(self._intake) <= self._half:
            # the workers looked a moment ago and look again soon by themselves
            self._wake_at = self._half
            return
        self._poll_period = _POLL
        self._rouse()

    def _wake_from_thread(self) -> None:
        """Records from another thread are waiting: wake a worker a gathering later."""
        schedule, later = self._schedule, self._schedule_later
        if schedule is None or later is None:
            return
        try:
            if len(self._intake) > self._half:  # a burst: now, or "block" would wait
                schedule(self._rouse)
            else:
                # The first record after the workers went idle: wake them a moment later,
                # so the records of the requests in between share that pass. An intake
                # that reaches half the capacity meanwhile wakes them at once (put() calls
                # this again past _thread_wake_at), as flush() and aclose() do themselves.
                self._poll_period = _GATHER
                self._thread_wake_at = self._half
                later(_GATHER, self._rouse)
        except RuntimeError:  # the loop has stopped; aclose() accounts for the records
            pass

    def _rouse(self) -> None:
        """Wake one idle worker (loop thread): it fans the intake out and wakes the others."""
        for lane in self._lanes:
            if lane.idle:
                lane.idle = False
                lane.wake.fire()
                return

    def _rouse_all(self) -> None:
        for lane in self._lanes:
            lane.idle = False
            lane.hold_until = 0.0
            lane.wake.fire()

    # -- the fan-out: loop thread -------------------------------------------------------------

    def _drain_intake(self) -> None:
        """Move what waits in the intake to every lane (as much as fits, for "block")."""
        intake = self._intake
        count = len(intake)
        if not count:
            return
        if self._policy == "block":
            count = min(count, *(lane.room() for lane in self._lanes))
            if count <= 0:
                return
        moved: list[logging.LogRecord]
        if self._policy != "drop_oldest":  # only this thread takes from the intake: the
            moved = list(map(_popleft, repeat(intake, count)))  # loop runs in C
        else:
            moved = []
            take, pop = moved.append, intake.popleft
            try:
                for _ in range(count):
                    take(pop())
            except IndexError:  # another thread evicted some meanwhile
                pass
        self._drained += len(moved)
        # The items go to the lanes as they are: each lane makes them records when it
        # delivers them (_records), in slices, so a burst never costs the loop one long step.
        for lane in self._lanes:
            lane.offer(moved, self._policy)
        if self._policy == "block":
            with self._room:
                self._room.notify_all()
        self._progress.fire()

    def _blocked(self) -> bool:
        """overflow="block" and some lane is full: the intake must wait where it is."""
        return self._policy == "block" and min(lane.room() for lane in self._lanes) <= 0

    def _close_intake(self) -> None:
        """Closing and the intake is empty: deliver the last summary, let the workers end."""
        if self._intake_closed:
            return
        self._drops.deliver_last_summary()
        self._intake_closed = True
        self._progress.fire()
        self._rouse_all()

    # -- the lanes' view of the queue: loop thread -------------------------------------------

    def _lane_idle(self, lane: Lane, poll: bool) -> int:
        """``lane`` found its backlog empty, or holds a few records for a moment (see
        ``Lane.hold_until``): whether it ends, looks again or may sleep."""
        if lane.backlog and self._state is not _State.OPEN:  # closing: nothing waits
            lane.hold_until = 0.0
            return AGAIN
        if self._intake_closed:
            return END
        if self._state is not _State.OPEN and not self._intake:
            self._close_intake()
            return AGAIN
        lane.idle = True
        # After a batch more records will come: look again in a moment. Records the loop's
        # own thread logs wake the lanes as soon as half that moment has passed, in the
        # pass of the loop that logged them, so that a lane's own look rarely comes due:
        # every timer that wakes the loop apart from the application's own makes the
        # loop's next wait start late, and epoll rounds waits up to whole milliseconds.
        # A lane that looks on the gathering's period (records from other threads) is
        # woken by them only if the intake fills up meanwhile; by the loop's own at once.
        if poll and self._poll_period == _POLL:
            wake_at = thread_wake_at = 0
            self._early_until = monotonic() + _POLL / 2
        else:
            wake_at = 0
            thread_wake_at = self._half if poll else 0
            self._early_until = 0.0
        if wake_at < self._wake_at:
            self._wake_at = wake_at
        if thread_wake_at < self._thread_wake_at:
            self._thread_wake_at = thread_wake_at
        if (lane.backlog and not lane.holds()) or (self._intake and not self._blocked()):
            lane.idle = False
            return AGAIN
        return SLEEP

    def _gathering(self) -> bool:
        """Whether another thread's records woke the lanes last: they look on SYNC_GATHER."""
        return self._poll_period == _GATHER

    def _lane_sleeping(self, lane: Lane) -> float:
        """``lane`` is about to sleep: start the drop summary if one is due; the poll period."""
        drops = self._drops
        if drops.summary_due(lane):
            drops.summarising = True
            self._start(drops.summarise_when_quiet)
        return self._poll_period

    def _start(self, func: Callable[..., Coroutine[Any, Any, None]], *args: object) -> None:
        assert self._task_group is not None
        self._task_group.start_soon(func, *args)

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is not _State.UNOPENED:
            raise QueueClosedError(
                f"this LogQueue is {self._state.value}; a queue runs once: make a new one"
            )
        self._loop_thread = self._fast_thread = self._drops.loop_thread = threading.get_ident()
        self._schedule = threadsafe_scheduler()
        self._schedule_later = threadsafe_timer()
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._state = _State.OPEN
        try:
            feed = LaneFeed(
                intake=self._intake,
                fan_out=self._drain_intake,
                idle=self._lane_idle,
                sleeping=self._lane_sleeping,
                gathering=self._gathering,
                sharing=self._sharing,
            )
            for lane in self._lanes:
                await task_group.start(lane.run, feed)
            if self._intake:  # records put before the start
                self._rouse()
        except BaseException:
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(*sys.exc_info())
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            await self.aclose()
        finally:
            task_group, self._task_group = self._task_group, None
            if task_group is not None:
                # Every task has finished (aclose waited or cancelled them), so this returns
                # at once; the body's own exception, if any, propagates unwrapped.
                await task_group.__aexit__(None, None, None)
        return None

    async def aclose(self, timeout: float | None = 5.0) -> None:  # noqa: ASYNC109 - the contract
        """Drain, flush and close every sink; give up on what is left after ``timeout`` s.

        Records still pending at the deadline are counted as dropped (reason
        ``"deadline"``) and reported on stderr. Runs shielded from cancellation, so a
        cancelled caller still gets its drain (bounded by ``timeout``). Idempotent.
        """
        if self._state is _State.CLOSED or self._state is _State.CLOSING:
            return
        self._accepting = False  # from now on put() refuses records: reason "closed"
        self._fast_thread = None
        if self._state is _State.UNOPENED:
            self._state = _State.CLOSED
            left = self._intake_leftovers(DropReason.CLOSED)
            if left:
                warn_stderr(
                    f"loopsink: {left} log records were never delivered: the queue was closed "
                    f"before it ran.\n"
                )
            return
        self._state = _State.CLOSING
        with self._room:
            self._room.notify_all()
        self._rouse_all()
        with anyio.CancelScope(shield=True):
            deadline = None if timeout is None else anyio.current_time() + timeout
            with anyio.move_on_after(timeout):
                for lane in self._lanes:
                    await lane.done.wait()
            unfinished = [lane for lane in self._lanes if not lane.done.is_set()]
            lost = self._intake_leftovers(DropReason.DEADLINE)
            for lane in unfinished:
                lane.abandon()
            for lane in unfinished:
                await lane.done.wait()
            if unfinished:
                grace = _CLOSE_GRACE
                if deadline is not None:
                    grace = max(deadline - anyio.current_time(), _CLOSE_GRACE)
                with anyio.move_on_after(grace):
                    async with anyio.create_task_group() as closing:
                        for lane in unfinished:
                            closing.start_soon(lane.close_late)
            if lost or unfinished:
                self._report_deadline(lost, unfinished, timeout)
        self._state = _State.CLOSED

    def _intake_leftovers(self, reason: str) -> int:
        left = len(self._intake)
        self._intake.clear()
        if left:
            self._count_drop(reason, left)
        return left

    def _report_deadline(self, intake_lost: int, lanes: list[Lane], timeout: float | None) -> None:
        details = [f"{intake_lost} still in the intake"] if intake_lost else []
        for lane in lanes:
            detail = (
                f"{lane.dropped.get(DropReason.DEADLINE, 0)} pending for {lane.sink.describe()}"
            )
            try:
                unwritten = lane.sink.unwritten
            except Exception:  # a sink's own override: the report goes out anyway
                unwritten = 0
            if unwritten:
                detail += f" and {unwritten} handed to it but not written yet"
            details.append(detail)
        warn_stderr(
            f"loopsink: LogQueue.aclose(timeout={timeout}) ran out of time; records lost: "
            f"{'; '.join(details)}. Give aclose() a longer timeout or find the slow sink in "
            f"queue.stats.\n"
        )

    async def flush(self) -> None:
        """Return once every record put before the call is emitted and every sink flushed.

        Bound the wait with a cancel scope (``anyio.fail_after``) if a sink may hang.
        """
        self._require_open("flush")
        target = self._drained + len(self._intake)
        self._drain_intake()
        while self._drained < target and not self._intake_closed:
            self._rouse()
            await self._progress.wait()
        async with anyio.create_task_group() as task_group:
            for lane in self._lanes:
                task_group.start_soon(lane.flush_to, lane.received)

    def _require_open(self, what: str) -> None:
        if self._state is _State.UNOPENED:
            raise QueueNotRunningError(
                f"LogQueue.{what}() needs the running queue: call it inside 'async with queue:'"
            )
        if self._state is not _State.OPEN:
            raise QueueClosedError(f"LogQueue.{what}() was called after the queue was closed")

    # -- introspection ----------------------------------------------------------------------

    @property
    def sinks(self) -> tuple[AsyncHandler, ...]:
        """The sinks this queue feeds, in the order given."""
        return self._sinks

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def overflow(self) -> str:
        return self._policy

    @property
    def full(self) -> bool:
        """The intake holds ``capacity`` records: a ``put`` now applies the overflow policy."""
        return len(self._intake) >= self._capacity

    @property
    def running(self) -> bool:
        """True between entering ``async with`` and the start of ``aclose``."""
        return self._state is _State.OPEN

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    @property
    def stats(self) -> QueueStats:
        """A consistent snapshot of the counters (take it on the loop thread)."""
        drops = self._drops.counts()
        waiting = len(self._intake)
        return QueueStats(
            enqueued=self._drained + waiting + drops.get(DropReason.EVICTED, 0),
            dropped=drops,
            sinks=tuple(lane.snapshot() for lane in self._lanes),
        )

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return (
            f"<LogQueue{label} {self._state.value} sinks={len(self._sinks)} "
            f"capacity={self._capacity} overflow={self._policy!r}>"
        )

    def __del__(self) -> None:
        if getattr(self, "_state", _State.CLOSED) is not _State.CLOSED and getattr(
            self, "_intake", None
        ):
            warnings.warn(
                f"{self!r} was garbage-collected with {len(self._intake)} records never "
                f"delivered; use 'async with queue:' or await queue.aclose()",
                ResourceWarning,
                source=self,
                stacklevel=1,
            )
