"""loopsink's pytest plugin: fixtures for testing an application's logging.

Registered through the ``pytest11`` entry point, so it is active wherever loopsink is
installed. Two fixtures, in the spirit of pytest's ``caplog``:

``loopsink_capture``
    Bridges the root logger into a capturing sink through a real queue for the test.
    ``await loopsink_capture.flush()`` delivers what is still queued,
    ``await loopsink_capture.wait_for(predicate)`` waits (5 s by default) for a condition.
``loopsink_queue``
    ``loopsink_queue.start(*sinks)`` runs a queue over your own sinks for the test; at
    teardown each queue is flushed (the test errors if that times out) and closed.

Both are plain (synchronous) fixtures whose queues run on an event loop in a thread of their
own, so they work unchanged in sync tests, under pytest-asyncio (strict or auto mode, with
function-, module- or session-scoped loops) and under anyio's plugin on asyncio and trio:
no fixture is set up in one task and torn down in another, and no queue is tied to a loop
that the test framework may close or swap. Waiting from a test's event loop happens in a
worker thread (``anyio.to_thread``), so the loop is never blocked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import anyio.to_thread
import pytest

from ._bridge import ThreadedQueue, start_in_thread
from ._handler import AsyncHandler
from .testing import DEFAULT_TIMEOUT, CapturingSink, _timeout_message

__all__ = ["LogCapture", "QueueRunner", "loopsink_capture", "loopsink_queue"]

Predicate = Callable[[list[logging.LogRecord]], bool]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "loopsink_timeout",
        help="seconds that loopsink_capture's flush/wait_for and loopsink_queue's teardown "
        f"flush wait by default ({DEFAULT_TIMEOUT:g})",
        default=str(DEFAULT_TIMEOUT),
    )


def _default_timeout(config: pytest.Config) -> float:
    text = config.getini("loopsink_timeout")
    try:
        value = float(text)
    except ValueError:
        raise pytest.UsageError(f"loopsink_timeout must be seconds, got {text!r}") from None
    if not value > 0:
        raise pytest.UsageError(f"loopsink_timeout must be more than 0 seconds, got {text!r}")
    return value


def _start_queue_thread(*sinks: AsyncHandler, **options: Any) -> ThreadedQueue:
    """``start_in_thread`` called from a thread of its own.

    A queue binds its events to the async library running where it is made, and a fixture
    may be set up where one runs (anyio's trio runner keeps its loop in the main thread
    between calls): made in a fresh thread, the queue belongs to its own loop only.
    """
    made: list[ThreadedQueue] = []
    failed: list[BaseException] = []

    def make() -> None:
        try:
            made.append(start_in_thread(*sinks, **options))
        except BaseException as exc:  # re-raised in the fixture's thread
            failed.append(exc)

    worker = threading.Thread(target=make, name="loopsink-pytest-start")
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return made[0]


class _ThreadSafeSink(CapturingSink):
    """A :class:`CapturingSink` that a thread other than its loop's can wait on."""

    def __init__(self) -> None:
        super().__init__()
        self.condition = threading.Condition()

    async def emit(self, record: logging.LogRecord) -> None:
        await self.emit_batch([record])

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        with self.condition:
            self.batches += 1
            self.records.extend(records)
            self.condition.notify_all()

    def snapshot(self) -> list[logging.LogRecord]:
        with self.condition:
            return list(self.records)

    def wait_blocking(self, predicate: Predicate, timeout: float | None) -> bool:
        with self.condition:
            return self.condition.wait_for(lambda: predicate(list(self.records)), timeout)


class LogCapture:
    """What ``loopsink_capture`` gives a test: the records its loggers sent through loopsink.

    The root logger is bridged into a :class:`~loopsink.testing.CapturingSink` through a
    real :class:`~loopsink.LogQueue`, so records arrive as they would at your sinks: after
    the queue has delivered them. ``await flush()`` (or ``flush_sync()`` in a sync test)
    makes sure that has happened.
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        #: The default of every ``timeout`` argument here, in seconds.
        self.timeout = timeout
        self.sink = _ThreadSafeSink()
        self._levels: dict[logging.Logger, int] = {}
        self._queue: ThreadedQueue = _start_queue_thread(self.sink, timeout=timeout)

    @property
    def records(self) -> list[logging.LogRecord]:
        """The records delivered so far, in order (a copy)."""
        return self.sink.snapshot()

    @property
    def messages(self) -> list[str]:
        """The merged messages of :attr:`records`."""
        return [record.getMessage() for record in self.records]

    @property
    def text(self) -> str:
        """:attr:`records` formatted by the sink's formatter, one per line."""
        return "".join(f"{self.sink.format(record)}\n" for record in self.records)

    def clear(self) -> None:
        """Forget the records delivered so far."""
        with self.sink.condition:
            self.sink.records.clear()

    def set_level(self, level: int | str, logger: str | None = None) -> None:
        """Set ``logger``'s level (the root's by default) for this test only, as caplog does."""
        target = logging.getLogger(logger)
        self._levels.setdefault(target, target.level)
        target.setLevel(level)

    def flush_sync(self, *, timeout: float | None = None) -> None:
        """Block until every record logged before the call is delivered (for sync tests)."""
        self._queue.flush(self.timeout if timeout is None else timeout)

    async def flush(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 - the caplog-like API
        """Deliver every record logged before the call; waits in a worker thread.

        Raises:
            TimeoutError: not delivered within ``timeout`` seconds.
        """
        await anyio.to_thread.run_sync(
            self._queue.flush, self.timeout if timeout is None else timeout
        )

    async def wait_for(
        self,
        predicate: Predicate,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a default deadline is the point
    ) -> None:
        """Wait until ``predicate(records)`` is true; at most ``timeout`` seconds.

        Raises:
            TimeoutError: still false after ``timeout`` seconds; the message lists what was
                captured.
        """
        seconds = self.timeout if timeout is None else timeout
        met = await anyio.to_thread.run_sync(
            self.sink.wait_blocking, predicate, seconds, abandon_on_cancel=True
        )
        if not met:
            raise TimeoutError(_timeout_message(seconds, self.messages))

    def _close(self) -> None:
        try:
            self._queue.close(self.timeout)
        finally:
            for target, level in self._levels.items():
                target.setLevel(level)


class QueueRunner:
    """What ``loopsink_queue`` gives a test: queues over your sinks, flushed at teardown."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        #: How long the teardown flush (and ``flush``) may take per queue, in seconds.
        self.timeout = timeout
        self.queues: list[ThreadedQueue] = []

    def start(
        self,
        *sinks: AsyncHandler,
        logger: logging.Logger | str | None = None,
        level: int | str = logging.NOTSET,
        **queue_options: Any,
    ) -> ThreadedQueue:
        """Run a queue over ``sinks`` and bridge ``logger`` (the root by default) into it.

        The queue runs on an event loop in a thread of its own (see
        :func:`loopsink.start_in_thread`); the test's teardown flushes and closes it.
        """
        queue = _start_queue_thread(
            *sinks, logger=logger, level=level, timeout=self.timeout, **queue_options
        )
        self.queues.append(queue)
        return queue

    async def flush(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 - the caplog-like API
        """Deliver every record logged before the call, through every queue started here."""
        seconds = self.timeout if timeout is None else timeout
        for queue in self.queues:
            await anyio.to_thread.run_sync(queue.flush, seconds)

    def _close(self) -> None:
        errors: list[BaseException] = []
        for queue in reversed(self.queues):
            try:
                queue.flush(self.timeout)
            except BaseException as exc:  # reported after every queue is closed
                errors.append(exc)
            queue.close(self.timeout)
        if errors:
            raise errors[0]


@pytest.fixture
def loopsink_capture(request: pytest.FixtureRequest) -> Iterator[LogCapture]:
    """Capture the records logged during the test, through a real loopsink queue."""
    capture = LogCapture(timeout=_default_timeout(request.config))
    try:
        yield capture
    finally:
        capture._close()


@pytest.fixture
def loopsink_queue(request: pytest.FixtureRequest) -> Iterator[QueueRunner]:
    """Run queues over the test's sinks (``loopsink_queue.start(...)``); flush them at teardown."""
    runner = QueueRunner(timeout=_default_timeout(request.config))
    try:
        yield runner
    finally:
        runner._close()
