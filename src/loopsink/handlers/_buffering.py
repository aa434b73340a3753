"""BufferingHandler and MemoryHandler: hold records in memory, hand them on in bursts.

``MemoryHandler`` is the stdlib's "buffer until something important happens" handler. Its
target may be a loopsink sink (awaited, under that sink's own I/O lock, honouring its level
and filters) or a plain ``logging.Handler`` (called from a worker thread, so a blocking
stdlib handler such as ``SMTPHandler`` cannot stall the event loop).

Beyond the stdlib, ``flush_interval=`` bounds how long a record may wait in the buffer: a
quiet service still gets its buffered INFO lines out. It needs no permanent background task:
``emit`` flushes a buffer that has grown too old, and a one-shot timer, armed when the first
record enters an empty buffer and disarmed by every flush and by ``close``, covers the case
where no further record arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio

from .._compat import spawn_detached
from .._executor import executor_of
from .._handler import AsyncHandler

__all__ = ["BufferingHandler", "MemoryHandler"]

#: The event loop's clock (the one ``anyio.sleep_until`` uses); a name tests can replace.
_now = anyio.current_time

#: What a MemoryHandler can flush to.
Target = AsyncHandler | logging.Handler


def _check_capacity(capacity: object, owner: str) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise TypeError(
            f"{owner} capacity must be an int (how many records to hold), got {capacity!r}"
        )
    if capacity < 0:
        raise ValueError(f"{owner} capacity must be 0 or more, got {capacity}")
    return capacity


class BufferingHandler(AsyncHandler):
    """Keeps records in :attr:`buffer` until :meth:`shouldFlush` says to :meth:`flush`.

    As in the stdlib this is the base for handlers that send records in bursts: subclasses
    override :meth:`shouldFlush` (when) and :meth:`flush` (what). This class's own
    :meth:`flush` just empties the buffer.

    Args:
        capacity: how many records the buffer holds before :meth:`shouldFlush` is true.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = _check_capacity(capacity, type(self).__name__)
        #: The records waiting, oldest first. Kept as the same list object for its lifetime.
        self.buffer: list[logging.LogRecord] = []

    def shouldFlush(self, record: logging.LogRecord) -> bool:
        """True when the buffer has reached :attr:`capacity`."""
        return len(self.buffer) >= self.capacity

    async def emit(self, record: logging.LogRecord) -> None:
        """Append ``record``; flush when :meth:`shouldFlush` says so."""
        self.buffer.append(record)
        if self.shouldFlush(record):
            await self.flush()

    async def flush(self) -> None:
        """Empty the buffer. Subclasses send the records somewhere first."""
        self.buffer.clear()

    async def close(self) -> None:
        """Flush, then close, as the stdlib does."""
        try:
            await self.flush()
        finally:
            await super().close()


class MemoryHandler(BufferingHandler):
    """Buffers records and sends them to :attr:`target` when full or on a severe record.

    A record at :attr:`flushLevel` or above, or a full buffer, flushes the whole buffer to
    the target in order. Without a target nothing is sent and nothing is dropped: the
    records stay buffered until :meth:`setTarget` gives them somewhere to go (the buffer
    then grows past ``capacity``, as in the stdlib). :meth:`close` flushes first when
    ``flushOnClose`` is true, then forgets the target.

    Args:
        capacity: how many records to hold before flushing.
        flushLevel: a record at this level or above flushes the buffer (default ERROR).
        target: a loopsink sink or a stdlib ``logging.Handler``; ``None`` to set it later.
        flushOnClose: flush on :meth:`close` (default True); False leaves the buffer unsent.
        flush_interval: keyword-only, loopsink only. When set (seconds), no record waits in
            the buffer longer than this: the buffer is flushed to the target even if no
            further record arrives. Off by default, as in the stdlib.
    """

    def __init__(
        self,
        capacity: int,
        flushLevel: int | str = logging.ERROR,
        target: Target | None = None,
        flushOnClose: bool = True,
        *,
        flush_interval: float | None = None,
    ) -> None:
        super().__init__(capacity)
        self.flushLevel: int = logging._checkLevel(flushLevel)  # type: ignore[attr-defined]
        self.target: Target | None = None
        self.setTarget(target)
        self.flushOnClose = flushOnClose
        if flush_interval is not None:
            if isinstance(flush_interval, bool) or not isinstance(flush_interval, (int, float)):
                raise TypeError(
                    f"flush_interval must be a number of seconds or None, got {flush_interval!r}"
                )
            if not flush_interval > 0:
                raise ValueError(
                    f"flush_interval must be more than 0 seconds, got {flush_interval!r}"
                )
        self.flush_interval = flush_interval
        self._oldest_at: float | None = None  # loop time the oldest buffered record arrived
        self._timer: anyio.CancelScope | None = None
        self._handed = 0  # records of the flush in progress already given to the target

    def setTarget(self, target: Target | None) -> None:
        """Set where flushed records go: a loopsink sink, a stdlib handler, or ``None``."""
        if target is not None and not isinstance(target, (AsyncHandler, logging.Handler)):
            raise TypeError(
                f"{type(self).__name__} target must be a loopsink sink, a logging.Handler "
                f"or None, got {target!r}"
            )
        if target is self:
            raise ValueError(f"{type(self).__name__} cannot be its own target")
        self.target = target

    def shouldFlush(self, record: logging.LogRecord) -> bool:
        """True when the buffer is full or ``record`` is at :attr:`flushLevel` or above."""
        return len(self.buffer) >= self.capacity or record.levelno >= self.flushLevel

    async def emit(self, record: logging.LogRecord) -> None:
        if self.flush_interval is not None:
            now = _now()
            if self._oldest_at is None or not self.buffer:
                self._oldest_at = now
            self.buffer.append(record)
            if self.shouldFlush(record) or now - self._oldest_at >= self.flush_interval:
                await self.flush()
            else:
                self._arm_timer()
            return
        self.buffer.append(record)
        if self.shouldFlush(record):
            await self.flush()

    async def flush(self) -> None:
        """Send the buffered records to the target, in order, and empty the buffer.

        With no target the buffer is kept. If the flush is cancelled part-way, the records
        not yet handed over go back to the front of the buffer.
        """
        target = self.target
        if target is None:
            return
        self._disarm_timer()
        records = self.buffer[:]
        if not records:
            return
        del self.buffer[: len(records)]
        self._oldest_at = _now() if self.buffer else None
        self._handed = 0
        try:
            if isinstance(target, AsyncHandler):
                await self._flush_to_sink(target, records)
            else:
                await executor_of(self).run(self._flush_to_stdlib, target, records)
                self._handed = len(records)
        except BaseException:
            # Cancelled (or an unexpected failure): keep what was not handed over.
            self.buffer[0:0] = records[self._handed :]
            if self._oldest_at is None and self.buffer:
                self._oldest_at = _now()
            raise

    async def _flush_to_sink(self, target: AsyncHandler, records: list[logging.LogRecord]) -> None:
        """Hand ``records`` to a loopsink sink, counting in ``_handed`` how many it got."""
        if type(target).handle is not AsyncHandler.handle:
            # The target customises handle(): honour it, one record at a time.
            for record in records:
                try:
                    await target.handle(record)
                except Exception:
                    self.handleError(record)
                self._handed += 1
            return
        # What target.handle() does, for the whole burst at once: its filters (not its
        # level: the stdlib's MemoryHandler hands every record to target.handle), then one
        # emit_batch under its I/O lock (one file write instead of one per record).
        accepted: list[logging.LogRecord] = []
        for record in records:
            try:
                verdict = target.apply_filters(record) if target.filters else record
            except Exception:  # a filter that raises is the target's error, on this record
                target.handleError(record)
                continue
            if verdict is not None:
                accepted.append(verdict)
        if not accepted:
            self._handed = len(records)
            return
        async with target.io_lock():
            self._handed = len(records)
            try:
                await target.emit_batch(accepted)
            except Exception:
                target.report_batch_failure(accepted)

    @staticmethod
    def _flush_to_stdlib(target: logging.Handler, records: Sequence[logging.LogRecord]) -> None:
        """Runs in a worker thread: ``target.handle`` each record, as the stdlib does."""
        for record in records:
            try:
                target.handle(record)
            except Exception:  # noqa: PERF203 - one bad record must not cost the others
                target.handleError(record)

    async def close(self) -> None:
        """Flush if ``flushOnClose``, then forget the target and stop the timer.

        As CPython does (its docs say the buffer is lost, its code keeps it): records not
        flushed stay in :attr:`buffer`, where nothing will send them any more.
        """
        try:
            if self.flushOnClose:
                await self.flush()
        finally:
            self._disarm_timer()
            self.target = None
            await super().close()  # BufferingHandler.close: flush() with no target, a no-op

    # -- flush_interval's timer -------------------------------------------------------------

    def _arm_timer(self) -> None:
        if self._timer is not None or self.target is None or self._closed:
            return
        if self._oldest_at is None or self.flush_interval is None:
            return
        deadline = self._oldest_at + self.flush_interval
        self._timer = spawn_detached(
            lambda: self._flush_when_due(deadline), name=f"{self.describe()} flush_interval timer"
        )

    def _disarm_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    async def _flush_when_due(self, deadline: float) -> None:
        """The timer's body: at the deadline, flush under the sink's lock like the queue does."""
        await anyio.sleep_until(deadline)
        async with self.io_lock():
            self._timer = None
            if not self.buffer or self._closed:
                return
            try:
                await self.flush()
            except Exception:
                self.report_error("flush() by flush_interval")
            if self.buffer and self.target is not None:
                self._arm_timer()

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<{type(self).__name__} ({level}) capacity={self.capacity} target={self.target!r}>"
