"""Helpers for testing code that logs through loopsink, without any I/O.

``CapturingSink`` keeps what it is given in memory; ``capture_records`` runs a queue with
one and bridges a logger into it for the duration of a ``with`` block::

    async with capture_records() as captured:
        logging.getLogger("app").warning("disk %d%% full", 93)
        await captured.flush()  # delivers what is still queued
        assert captured.messages == ["disk 93% full"]

Every wait here has a default deadline (:data:`DEFAULT_TIMEOUT`), so a test that waits for
a record that never comes fails instead of hanging. ``capture_records`` runs its queue in a
task of its own, so it may be entered and left in different tasks (as pytest-asyncio does
with an async fixture). The pytest plugin (``loopsink_capture``, ``loopsink_queue``) is
built on the same rules; see the guide "Testing your application's logging".
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import anyio

from ._bridge import LoggingBridge
from ._compat import spawn_detached
from ._handler import AsyncHandler
from ._queue import LogQueue

__all__ = ["DEFAULT_TIMEOUT", "Captured", "CapturingSink", "capture_records"]

#: Seconds that ``wait_for`` and ``flush`` wait, unless told otherwise.
DEFAULT_TIMEOUT = 5.0


class CapturingSink(AsyncHandler):
    """A sink that appends every record it gets to :attr:`records`."""

    def __init__(self, level: int | str = logging.NOTSET) -> None:
        super().__init__(level)
        #: The records received, in order.
        self.records: list[logging.LogRecord] = []
        #: How many times ``emit_batch`` was called (useful to check batching).
        self.batches = 0
        #: How many times ``flush`` was called.
        self.flushes = 0
        self._changed: anyio.Event | None = None

    async def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._notify()

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        self.batches += 1
        self.records.extend(records)
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def wait_for(
        self,
        predicate: Callable[[list[logging.LogRecord]], bool],
        *,
        timeout: float | None = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - a default deadline is the point
    ) -> None:
        """Wait until ``predicate(self.records)`` is true, at most ``timeout`` seconds.

        Checked after every batch the sink receives, so no polling is involved.

        Raises:
            TimeoutError: the predicate was still false after ``timeout`` seconds (``None``
                waits for ever); the message lists what was captured.
        """
        with anyio.move_on_after(timeout) as scope:
            while not predicate(self.records):
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()
        if scope.cancelled_caught and not predicate(self.records):
            raise TimeoutError(_timeout_message(timeout, self.messages))

    async def flush(self) -> None:
        self.flushes += 1

    @property
    def messages(self) -> list[str]:
        """The merged messages of the records received, in order."""
        return [r.getMessage() for r in self.records]

    @property
    def lines(self) -> list[str]:
        """The records as this sink's formatter renders them."""
        return [self.format(r) for r in self.records]

    def clear(self) -> None:
        self.records.clear()


def _timeout_message(timeout: float | None, messages: list[str]) -> str:
    shown = messages[-10:]
    more = f" (the last 10 of {len(messages)})" if len(messages) > 10 else ""
    return (
        f"the condition was not met within {timeout} s; captured so far{more}: {shown!r} "
        f"(pass timeout= to wait longer)"
    )


class _DetachedQueue:
    """A running :class:`LogQueue` whose task group lives in a task of its own.

    ``async with queue`` enters the queue's task group in the *calling* task, and leaving it
    from another task is an error (anyio's "exit cancel scope in a different task"). Test
    frameworks set a fixture up and tear it down in different tasks, so here the queue runs
    in a detached task of the loop, and :meth:`start` and :meth:`stop` only signal it.
    """

    def __init__(self, queue: LogQueue, *, close_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.queue = queue
        self.close_timeout = close_timeout
        self._started = anyio.Event()
        self._stop = anyio.Event()
        self._done = anyio.Event()
        self._error: BaseException | None = None

    async def _body(self) -> None:
        try:
            async with self.queue:
                self._started.set()
                await self._stop.wait()
                await self.queue.aclose(self.close_timeout)
        except Exception as exc:  # reported by start() or stop(), in the caller's task
            self._error = exc
        finally:
            self._started.set()
            self._done.set()

    async def start(self) -> None:
        spawn_detached(self._body, name="loopsink-test-queue")
        await self._started.wait()
        if self._error is not None:
            raise self._error

    async def stop(self) -> None:
        """Drain, flush and close the queue (its ``aclose`` deadline applies)."""
        self._stop.set()
        with anyio.CancelScope(shield=True):
            await self._done.wait()
        if self._error is not None:
            raise self._error


class Captured:
    """What :func:`capture_records` yields: the captured records and the queue's flush."""

    def __init__(self, sink: CapturingSink, queue: LogQueue) -> None:
        #: The sink the records reach (a :class:`CapturingSink`).
        self.sink = sink
        #: The queue between the logger and the sink.
        self.queue = queue

    @property
    def records(self) -> list[logging.LogRecord]:
        """The records delivered so far, in order (``await flush()`` delivers the rest)."""
        return self.sink.records

    @property
    def messages(self) -> list[str]:
        """The merged messages of :attr:`records`."""
        return self.sink.messages

    @property
    def lines(self) -> list[str]:
        """:attr:`records` as the sink's formatter renders them."""
        return self.sink.lines

    def clear(self) -> None:
        """Forget the records delivered so far."""
        self.sink.clear()

    async def flush(self, *, timeout: float | None = DEFAULT_TIMEOUT) -> None:  # noqa: ASYNC109
        """Deliver every record logged before the call to :attr:`records`.

        Raises:
            TimeoutError: not delivered within ``timeout`` seconds.
        """
        with anyio.fail_after(timeout):
            await self.queue.flush()

    async def wait_for(
        self,
        predicate: Callable[[list[logging.LogRecord]], bool],
        *,
        timeout: float | None = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - a default deadline is the point
    ) -> None:
        """Wait until ``predicate(records)`` is true, at most ``timeout`` seconds."""
        await self.sink.wait_for(predicate, timeout=timeout)


@asynccontextmanager
async def capture_records(
    logger: logging.Logger | str | None = None,
    level: int | str = logging.NOTSET,
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - the drain's deadline at exit
) -> AsyncIterator[Captured]:
    """Capture what ``logger`` (the root logger by default) logs inside the block.

    Records reach :attr:`Captured.records` through a real :class:`LogQueue`, as they would
    reach your sinks: ``await captured.flush()`` delivers what is still queued; on exit the
    queue is drained (at most ``timeout`` seconds), so after the block ``records`` holds
    everything logged inside it. ``level`` also lowers the logger's own level for the
    duration, so that records at ``level`` are not filtered out before the bridge.

    The queue runs in a task of its own: the block may be entered in one task and left in
    another (an async fixture under pytest-asyncio), on asyncio and on trio.
    """
    target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    sink = CapturingSink()
    previous = target.level
    numeric = logging._checkLevel(level)  # type: ignore[attr-defined]
    queue = LogQueue(sink)
    runner = _DetachedQueue(queue, close_timeout=timeout)
    await runner.start()
    bridge = LoggingBridge(queue, numeric)
    if numeric:
        target.setLevel(numeric)
    target.addHandler(bridge)
    try:
        yield Captured(sink, queue)
    finally:
        target.removeHandler(bridge)
        bridge.close()
        target.setLevel(previous)
        await runner.stop()
