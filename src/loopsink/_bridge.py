"""The sync shim: a plain ``logging.Handler`` that hands records to a LogQueue.

``LoggingBridge.handle`` is the hot path of every log call: it takes no lock and does no
I/O, only a filter check, a snapshot of the record and a deque append.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.from_thread

from . import _fork
from ._handler import AsyncHandler
from ._queue import LogQueue

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["LoggingBridge", "ThreadedQueue", "install", "start_in_thread"]

T = TypeVar("T")
_LogRecord = logging.LogRecord
_copy_context = contextvars.copy_context


class LoggingBridge(logging.Handler):
    """A ``logging.Handler`` that puts every record it accepts into a :class:`LogQueue`.

    Attach it to any logger; the log call returns as soon as the record is queued, from the
    loop's thread or any other. What is queued shows the record as it was at the time of the
    call: on the loop's thread, a record whose message, arguments and ``extra=`` values
    cannot change (a ``str`` message, immutable values, no exception) is queued as it is;
    any other is snapshotted on a copy (message merged with its arguments, arguments and
    mutable extra values copied, exception rendered to text), so other handlers of the same
    logger see the record untouched. The ``contextvars.Context`` of the call goes with the
    record: the sinks run their filters and formatters inside it.

    Args:
        queue: the queue to feed. It may start later; records wait for it (bounded).
        level: records below this level are ignored.
    """

    def __init__(self, queue: LogQueue, level: int | str = logging.NOTSET) -> None:
        if not isinstance(queue, LogQueue):
            raise TypeError(f"LoggingBridge needs a loopsink.LogQueue, got {queue!r}")
        super().__init__(level)
        self.queue = queue
        self._runner: ThreadedQueue | None = None

    def handle(self, record: logging.LogRecord) -> bool:
        # The hot path. Filters run first, as in logging.Handler.handle; on 3.12+ a filter
        # may hand back a replacement record.
        if self.filters:
            verdict: object = self.filter(record)
            if not verdict:
                return False
            if isinstance(verdict, _LogRecord):
                record = verdict
        # The context of the call travels with the record (copying it is O(1)): the sinks
        # run their filters and formatters inside it, as the stdlib's handlers do.
        try:
            return self._put_call(record, _copy_context())
        except Exception:  # e.g. a format string that does not match its arguments
            self.handleError(record)
            return False

    @property
    def queue(self) -> LogQueue:
        """The queue this bridge feeds."""
        return self._queue

    @queue.setter
    def queue(self, queue: LogQueue) -> None:
        self._queue = queue
        self._put = queue.put
        self._put_call = queue.put_call

    def emit(self, record: logging.LogRecord) -> None:
        """Queue ``record`` (what ``handle`` does after filtering)."""
        try:
            self._put_call(record, _copy_context())
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Flush the queue when it runs in its own thread (``start_in_thread``).

        On the loop's thread a sync flush would stall the loop: ``await queue.flush()``
        instead. ``logging.shutdown()`` calls this at exit.
        """
        runner = self._runner
        if runner is not None and runner.running and not runner.on_loop_thread():
            try:
                runner.flush()
            except TimeoutError:
                pass

    def close(self) -> None:
        """Detach; when the queue runs in its own thread, drain and stop it first."""
        runner = self._runner
        if runner is not None and runner.running and not runner.on_loop_thread():
            runner.close()
        super().close()

    def __repr__(self) -> str:
        return f"<LoggingBridge ({logging.getLevelName(self.level)}) -> {self.queue!r}>"


def _resolve_logger(logger: logging.Logger | str | None) -> logging.Logger:
    if logger is None or isinstance(logger, str):
        return logging.getLogger(logger)
    if isinstance(logger, logging.Logger):
        return logger
    raise TypeError(f"logger must be a logging.Logger, a logger name or None, got {logger!r}")


@asynccontextmanager
async def install(
    *sinks: AsyncHandler,
    logger: logging.Logger | str | None = None,
    level: int | str = logging.NOTSET,
    **queue_options: Any,
) -> AsyncIterator[LogQueue]:
    """Run a :class:`LogQueue` over ``sinks`` and bridge ``logger`` into it.

    ``logger`` is the root logger by default, so every ``logging.getLogger(...)`` call that
    propagates reaches the sinks. On exit the bridge is detached first, then the queue is
    drained, flushed and closed (see :meth:`LogQueue.aclose`), also when the body raised or
    was cancelled.

    Args:
        *sinks: the sinks to feed.
        logger: the logger (or its name) to attach the bridge to; ``None`` for the root.
        level: the bridge's level; records below it are not queued.
        **queue_options: passed to :class:`LogQueue` (``capacity``, ``overflow``, ``name``).
    """
    target = _resolve_logger(logger)
    queue = LogQueue(*sinks, **queue_options)
    bridge = LoggingBridge(queue, level)
    async with queue:
        target.addHandler(bridge)
        try:
            yield queue
        finally:
            target.removeHandler(bridge)
            bridge.close()


class ThreadedQueue:
    """A :class:`LogQueue` running on an event loop in a daemon thread of its own.

    Made by :func:`start_in_thread` for programs that never run an event loop themselves.
    Its ``flush`` and ``close`` block the *calling* thread (with a deadline), never a loop.

    ``bridge`` is the bridge that feeds ``queue`` and ``logger`` the logger it is attached
    to: ``close`` detaches and closes it. Without them (``None``, as for a bridge declared
    in a logging configuration, which ``dictConfig`` attaches and ``logging.shutdown()``
    closes) the runner only runs the queue.
    """

    def __init__(
        self,
        queue: LogQueue,
        bridge: LoggingBridge | None = None,
        logger: logging.Logger | None = None,
        *,
        backend: str,
        default_timeout: float,
    ) -> None:
        self.queue = queue
        self.bridge = bridge
        self.logger = logger
        self.default_timeout = default_timeout
        self._backend = backend
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._started = threading.Event()
        self._stop: anyio.Event | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="loopsink-queue", daemon=True)
        self._fork_pending = False  # a forked child's stand-in queue awaits its first record
        _fork.register(self)

    def _start(self) -> None:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            anyio.run(self._main, backend=self._backend)
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._started.set()

    async def _main(self) -> None:
        async with anyio.from_thread.BlockingPortal() as portal, self.queue:
            self._stop = anyio.Event()
            self._portal = portal
            self._started.set()
            await self._stop.wait()

    def _renew_after_fork(self) -> None:
        """In a forked child (called by ``_fork``): set the parent's queue aside.

        The parent's thread did not come along and its pending records are the parent's to
        write. The bridge gets a stand-in whose first ``put`` makes a fresh queue over the
        same sinks and starts a thread for it here (:meth:`_renew_in_child`).
        """
        if self._closed or self._portal is None:
            return
        self._parent_queue = self.queue
        self._fork_pending = True
        _fork.abandon(self.queue)
        self._fork_lock = threading.Lock()
        self._portal = None
        self._stop = None
        self._error = None
        pending = _fork.PendingQueue(self._renew_in_child)
        self.queue = pending  # type: ignore[assignment]
        if self.bridge is not None:
            self.bridge.queue = pending  # type: ignore[assignment]
            self.bridge._put = pending.put

    def _renew_in_child(self) -> LogQueue:
        with self._fork_lock:
            if not self._fork_pending:  # another thread was first
                return self.queue
            old = self._parent_queue
            queue = LogQueue(
                *old.sinks,
                capacity=old.capacity,
                overflow=old.overflow,  # type: ignore[arg-type]
                name=old.name,
            )
            self._fork_pending = False
            self.queue = queue
            if self.bridge is not None:
                self.bridge.queue = queue
                self.bridge._put = queue.put
            self._started = threading.Event()
            self._thread = threading.Thread(target=self._run, name="loopsink-queue", daemon=True)
            self._start()
            _fork.at_child_exit(self._close_at_exit)
            return queue

    def _close_at_exit(self) -> None:
        try:
            self.close()
        except Exception as exc:
            _fork.report(f"loopsink: draining {self!r} at exit failed: {exc!r}")

    @property
    def running(self) -> bool:
        return self._portal is not None and not self._closed

    def on_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _call(self, func: Callable[[], Awaitable[T]]) -> T:
        portal = self._portal
        if portal is None or self._closed:
            raise RuntimeError("this ThreadedQueue is closed")
        return portal.call(func)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every record logged before the call is written, or raise TimeoutError."""
        deadline = self.default_timeout if timeout is None else timeout

        async def flush_with_deadline() -> None:
            with anyio.fail_after(deadline):
                await self.queue.flush()

        self._call(flush_with_deadline)

    def close(self, timeout: float | None = None) -> None:
        """Detach the bridge, drain the queue (at most ``timeout`` s), and stop the thread."""
        if self._closed:
            return
        if self._fork_pending:  # a forked child that never logged
            self._closed = True
            self._detach()
            return
        deadline = self.default_timeout if timeout is None else timeout
        self._detach()

        async def close_queue() -> None:
            await self.queue.aclose(deadline)
            assert self._stop is not None
            self._stop.set()

        try:
            self._call(close_queue)
        finally:
            self._closed = True
            self._thread.join(deadline + 1.0)
            if self.bridge is not None:
                self.bridge.close()

    def _detach(self) -> None:
        if self.bridge is not None and self.logger is not None:
            self.logger.removeHandler(self.bridge)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "closed"
        return f"<ThreadedQueue {state} {self.queue!r}>"


def start_in_thread(
    *sinks: AsyncHandler,
    logger: logging.Logger | str | None = None,
    level: int | str = logging.NOTSET,
    backend: str = "asyncio",
    timeout: float = 5.0,
    **queue_options: Any,
) -> ThreadedQueue:
    """Run the sinks on an event loop in a daemon thread, for programs without a loop.

    The bridge is attached to ``logger`` (the root logger by default). ``logging.shutdown()``
    (which Python runs at exit) flushes and closes it, so a script that simply ends loses
    nothing; ``timeout`` bounds that drain. Every producer here is a foreign thread, so the
    default overflow policy is ``"block"``: a burst makes the logging threads wait rather
    than lose records. Pass ``overflow="drop_newest"`` to prefer dropping.
    """
    queue_options.setdefault("overflow", "block")
    target = _resolve_logger(logger)
    queue = LogQueue(*sinks, **queue_options)
    bridge = LoggingBridge(queue, level)
    runner = ThreadedQueue(queue, bridge, target, backend=backend, default_timeout=timeout)
    bridge._runner = runner
    runner._start()
    target.addHandler(bridge)
    return runner
