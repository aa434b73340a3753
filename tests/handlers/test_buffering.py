"""BufferingHandler and MemoryHandler, side by side with the stdlib's on the same records."""

from __future__ import annotations

import logging
import logging.handlers
import threading
from collections.abc import Sequence

import anyio
import anyio.lowlevel
import pytest
from anyio import wait_all_tasks_blocked
from hypothesis import given, settings
from hypothesis import strategies as st

import loopsink
from helpers import ListHandler
from loopsink import BufferingHandler, LogQueue, MemoryHandler
from loopsink.testing import CapturingSink

LEVELS = [
    logging.DEBUG,
    logging.INFO,
    logging.INFO,
    logging.WARNING,
    logging.ERROR,  # flushLevel
    logging.DEBUG,
    logging.INFO,
    logging.DEBUG,
    logging.INFO,  # fills a capacity-4 buffer
    logging.CRITICAL,
    logging.DEBUG,
    logging.INFO,
]


def make_record(i: int, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("buf", level, __file__, 1, "record %d", (i,), None)


def records(levels: Sequence[int] = LEVELS) -> list[logging.LogRecord]:
    return [make_record(i, level) for i, level in enumerate(levels)]


def numbers(recs: Sequence[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in recs]


def cancelled(scope: anyio.CancelScope) -> bool:
    return scope.cancel_called


def timer_of(handler: MemoryHandler) -> anyio.CancelScope | None:
    """The flush_interval timer armed right now, if any (a private detail worth pinning)."""
    return handler._timer


class RecordingStdlibBuffer(logging.handlers.BufferingHandler):
    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.flushed: list[list[str]] = []

    def flush(self) -> None:
        self.flushed.append([r.getMessage() for r in self.buffer])
        super().flush()


class RecordingBuffer(BufferingHandler):
    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.flushed: list[list[str]] = []

    async def flush(self) -> None:
        self.flushed.append([r.getMessage() for r in self.buffer])
        await super().flush()


# -- BufferingHandler -------------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [0, 1, 3, 5])
async def test_buffering_handler_flushes_like_the_stdlib(capacity: int) -> None:
    ours, theirs = RecordingBuffer(capacity), RecordingStdlibBuffer(capacity)
    for record in records():
        await ours.handle(record)
        theirs.handle(record)
        assert [r.getMessage() for r in ours.buffer] == [r.getMessage() for r in theirs.buffer]
    assert ours.flushed == theirs.flushed
    assert ours.flushed  # the sequence is long enough to flush at every capacity tested
    await ours.close()
    theirs.close()
    assert ours.flushed == theirs.flushed
    assert ours.buffer == theirs.buffer == []


async def test_buffering_handler_behind_a_queue_flushes_the_same_bursts() -> None:
    """Fed in batches by a LogQueue, the flushes are the ones handle() gives one by one."""
    ours, theirs = RecordingBuffer(4), RecordingStdlibBuffer(4)
    async with LogQueue(ours) as queue:
        for record in records():
            queue.put(record)
            theirs.handle(record)
        await queue.flush()
        # LogQueue.flush() runs the sink's flush(): the stdlib's equivalent is one flush().
        theirs.flush()
        assert ours.flushed == theirs.flushed
    theirs.close()
    # Closing the queue runs flush() then close() (which flushes too): one more empty flush.
    assert [f for f in ours.flushed if f] == [f for f in theirs.flushed if f]
    assert ours.flushed[-2:] == [[], []]


async def test_subclass_should_flush_is_honoured() -> None:
    class EveryWarning(RecordingBuffer):
        def shouldFlush(self, record: logging.LogRecord) -> bool:
            return record.levelno >= logging.WARNING

    handler = EveryWarning(100)
    for record in records():
        await handler.handle(record)
    assert handler.flushed == [
        ["record 0", "record 1", "record 2", "record 3"],
        ["record 4"],
        ["record 5", "record 6", "record 7", "record 8", "record 9"],
    ]
    assert numbers(handler.buffer) == ["record 10", "record 11"]


@pytest.mark.parametrize(
    ("capacity", "error", "message"),
    [
        (
            "10",
            TypeError,
            r"^BufferingHandler capacity must be an int \(how many records to hold\), got '10'$",
        ),
        (True, TypeError, r"^BufferingHandler capacity must be an int .*, got True$"),
        (-1, ValueError, r"^BufferingHandler capacity must be 0 or more, got -1$"),
    ],
)
def test_bad_capacity_is_refused(capacity: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        BufferingHandler(capacity)  # type: ignore[arg-type]


# -- MemoryHandler: the stdlib's behaviour --------------------------------------------------------


@pytest.mark.parametrize("capacity", [1, 4, 100])
@pytest.mark.parametrize("flush_level", [logging.WARNING, logging.ERROR, logging.CRITICAL])
async def test_memory_handler_sends_what_the_stdlib_sends(capacity: int, flush_level: int) -> None:
    sink, stdlib_target = CapturingSink(), ListHandler()
    ours = MemoryHandler(capacity, flushLevel=flush_level, target=sink)
    theirs = logging.handlers.MemoryHandler(capacity, flushLevel=flush_level, target=stdlib_target)
    for record in records():
        await ours.handle(record)
        theirs.handle(record)
        # After every record: the same records sent, the same ones still buffered.
        assert sink.messages == [r.getMessage() for r in stdlib_target.records]
        assert numbers(ours.buffer) == numbers(theirs.buffer)
    await ours.close()
    theirs.close()
    assert sink.messages == [r.getMessage() for r in stdlib_target.records]
    assert sink.messages == [f"record {i}" for i in range(len(LEVELS))]  # flushOnClose
    assert ours.target is None
    assert theirs.target is None
    assert ours.buffer == theirs.buffer == []


@settings(max_examples=60, deadline=None)
@given(
    levels=st.lists(st.sampled_from([5, 10, 20, 30, 40, 50]), max_size=40),
    capacity=st.integers(min_value=0, max_value=8),
    flush_level=st.sampled_from([10, 20, 30, 40, 50, 60]),
    flush_on_close=st.booleans(),
    target_level=st.sampled_from([0, 20, 40]),
)
async def test_memory_handler_property_same_as_the_stdlib(
    levels: list[int], capacity: int, flush_level: int, flush_on_close: bool, target_level: int
) -> None:
    """Any sequence of levels: the same records reach the target, at the same moments."""
    sink, stdlib_target = CapturingSink(), ListHandler()
    ours = MemoryHandler(capacity, flush_level, sink, flush_on_close)
    theirs = logging.handlers.MemoryHandler(capacity, flush_level, stdlib_target, flush_on_close)
    for record in records(levels):
        await ours.handle(record)
        theirs.handle(record)
        assert sink.messages == numbers(stdlib_target.records)
        assert numbers(ours.buffer) == numbers(theirs.buffer)
    # The target's level: handle() leaves it to the caller, in the stdlib and in loopsink,
    # so the flush on close hands the target every record whatever its level.
    sink.setLevel(target_level)
    stdlib_target.setLevel(target_level)
    await ours.close()
    theirs.close()
    assert sink.messages == numbers(stdlib_target.records)
    assert numbers(ours.buffer) == numbers(theirs.buffer)


@pytest.mark.parametrize("flush_on_close", [True, False])
async def test_close_flushes_only_when_flush_on_close(flush_on_close: bool) -> None:
    sink, stdlib_target = CapturingSink(), ListHandler()
    ours = MemoryHandler(100, target=sink, flushOnClose=flush_on_close)
    theirs = logging.handlers.MemoryHandler(100, target=stdlib_target, flushOnClose=flush_on_close)
    for record in records([logging.INFO] * 3):
        await ours.handle(record)
        theirs.handle(record)
    assert sink.records == stdlib_target.records == []
    await ours.close()
    theirs.close()
    assert sink.messages == [r.getMessage() for r in stdlib_target.records]
    assert len(sink.records) == (3 if flush_on_close else 0)
    # CPython keeps what it did not flush (its docs say it is lost): so do we.
    assert numbers(ours.buffer) == numbers(theirs.buffer)
    assert len(ours.buffer) == (0 if flush_on_close else 3)


async def test_without_a_target_nothing_is_sent_and_nothing_lost() -> None:
    ours = MemoryHandler(2)
    theirs = logging.handlers.MemoryHandler(2)
    for record in records():
        await ours.handle(record)
        theirs.handle(record)
    await ours.flush()
    theirs.flush()
    # Full and past flushLevel many times over, yet everything is still buffered.
    assert numbers(ours.buffer) == numbers(theirs.buffer) == [f"record {i}" for i in range(12)]
    sink, stdlib_target = CapturingSink(), ListHandler()
    ours.setTarget(sink)
    theirs.setTarget(stdlib_target)
    await ours.flush()
    theirs.flush()
    assert sink.messages == [r.getMessage() for r in stdlib_target.records]
    assert sink.messages == [f"record {i}" for i in range(12)]
    assert ours.buffer == []


async def test_set_target_switches_where_records_go() -> None:
    first, second = CapturingSink(), CapturingSink()
    handler = MemoryHandler(2, target=first)
    for record in records([logging.INFO] * 2):
        await handler.handle(record)
    handler.setTarget(second)
    for record in records([logging.INFO] * 2):
        await handler.handle(record)
    assert first.messages == ["record 0", "record 1"]
    assert second.messages == ["record 0", "record 1"]


async def test_the_target_level_and_filters_apply() -> None:
    sink = CapturingSink(level=logging.WARNING)
    sink.addFilter(lambda r: r.getMessage() != "record 9")
    stdlib_target = ListHandler(level=logging.WARNING)
    stdlib_target.addFilter(lambda r: r.getMessage() != "record 9")
    ours = MemoryHandler(3, target=sink)
    theirs = logging.handlers.MemoryHandler(3, target=stdlib_target)
    for record in records():
        await ours.handle(record)
        theirs.handle(record)
    await ours.close()
    theirs.close()
    # logging.Handler.handle() does not check the handler's own level (Logger does), so
    # every target sees the records below WARNING; only the filters apply.
    expected = [f"record {i}" for i in range(12) if i != 9]
    assert sink.messages == expected
    assert [r.getMessage() for r in stdlib_target.records] == expected


async def test_the_issue_20_case_a_buffering_target_with_level_error() -> None:
    """A target's level does not stop MemoryHandler.flush: CPython 3.13 gives 1 record."""
    target = BufferingHandler(100)
    target.setLevel(logging.ERROR)
    memory = MemoryHandler(10, target=target)
    await memory.handle(logging.makeLogRecord({"msg": "i", "levelno": 20, "levelname": "INFO"}))
    await memory.flush()
    assert [r.getMessage() for r in target.buffer] == ["i"]


async def test_own_filters_apply_before_buffering_and_its_level_behind_a_queue() -> None:
    sink = CapturingSink()
    handler = MemoryHandler(100, target=sink)
    handler.setLevel(logging.INFO)
    handler.addFilter(lambda r: r.getMessage() != "record 4")
    for record in records():
        await handler.handle(record)  # the stdlib's handle(): filters, not the level
    # record 4 (the ERROR) was filtered out, so CRITICAL record 9 is the one that flushed.
    assert sink.messages == [f"record {i}" for i in range(10) if i != 4]
    assert numbers(handler.buffer) == ["record 10", "record 11"]

    queued_sink = CapturingSink()
    queued = MemoryHandler(100, target=queued_sink)
    queued.setLevel(logging.INFO)
    queued.addFilter(lambda r: r.getMessage() != "record 4")
    async with LogQueue(queued) as queue:  # the queue checks the level, as a logger would
        for record in records():
            queue.put(record)
        await queue.flush()
    assert queued_sink.messages[:6] == [
        "record 1",
        "record 2",
        "record 3",
        "record 6",
        "record 8",
        "record 9",
    ]


# -- MemoryHandler: targets off the loop --------------------------------------------------------


async def test_a_stdlib_target_runs_in_a_worker_thread() -> None:
    target = ListHandler()
    handler = MemoryHandler(2, target=target)
    for record in records([logging.INFO] * 4):
        await handler.handle(record)
    assert [r.getMessage() for r in target.records] == [f"record {i}" for i in range(4)]
    assert threading.get_ident() not in target.threads


async def test_a_blocking_stdlib_target_does_not_stall_the_loop() -> None:
    """The target blocks until a task on the loop releases it: a blocked loop would hang."""
    release = threading.Event()

    class Blocking(ListHandler):
        def emit(self, record: logging.LogRecord) -> None:
            if not release.wait(10):
                raise TimeoutError("the loop never released the target")
            super().emit(record)

    target = Blocking()
    handler = MemoryHandler(10, target=target)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(handler.handle, make_record(0, logging.ERROR))
            await wait_all_tasks_blocked()
            assert target.records == []
            release.set()
    assert [r.getMessage() for r in target.records] == ["record 0"]


async def test_a_loopsink_target_is_flushed_under_its_own_lock() -> None:
    sink = CapturingSink()
    handler = MemoryHandler(100, target=sink)
    await handler.handle(make_record(0))
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            async with sink.io_lock():
                tg.start_soon(handler.handle, make_record(1, logging.ERROR))
                await wait_all_tasks_blocked()
                assert sink.records == []  # waiting for the lock the queue's worker would hold
    assert sink.messages == ["record 0", "record 1"]
    assert sink.batches == 1  # one burst, one emit_batch


async def test_a_cancelled_flush_keeps_the_records_not_handed_over() -> None:
    sink = CapturingSink()
    handler = MemoryHandler(100, target=sink)
    for record in records([logging.INFO] * 3):
        await handler.handle(record)
    await handler.emit(make_record(3))
    with anyio.fail_after(5), anyio.CancelScope() as scope:
        async with sink.io_lock():
            async with anyio.create_task_group() as tg:
                tg.start_soon(handler.flush)
                await wait_all_tasks_blocked()
                scope.cancel()
    assert numbers(handler.buffer) == [f"record {i}" for i in range(4)]
    await handler.flush()
    assert sink.messages == [f"record {i}" for i in range(4)]


async def test_a_failing_target_is_reported_and_the_handler_carries_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Failing(CapturingSink):
        async def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "record 1":
                raise OSError("disk full")
            self.records.append(record)

        async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
            await loopsink.AsyncHandler.emit_batch(self, records)

    sink = Failing()
    handler = MemoryHandler(3, target=sink)
    for record in records([logging.INFO] * 6):
        await handler.handle(record)
    assert sink.messages == ["record 0", "record 2", "record 3", "record 4", "record 5"]
    assert sink.error_count == 1
    assert handler.error_count == 0
    assert "OSError: disk full" in capsys.readouterr().err


async def test_a_target_with_a_custom_handle_gets_each_record() -> None:
    class Custom(CapturingSink):
        async def handle(self, record: logging.LogRecord) -> bool:
            self.records.append(record)
            return True

    sink = Custom(level=logging.CRITICAL)  # its handle() ignores the level: honoured as is
    handler = MemoryHandler(2, target=sink)
    for record in records([logging.INFO] * 2):
        await handler.handle(record)
    assert sink.messages == ["record 0", "record 1"]


def test_bad_targets_are_refused() -> None:
    with pytest.raises(
        TypeError,
        match=r"^MemoryHandler target must be a loopsink sink, a logging.Handler or None, "
        r"got 'stderr'$",
    ):
        MemoryHandler(10, target="stderr")  # type: ignore[arg-type]
    handler = MemoryHandler(10)
    with pytest.raises(ValueError, match=r"^MemoryHandler cannot be its own target$"):
        handler.setTarget(handler)


# -- MemoryHandler behind the queue and the bridge -------------------------------------------------


async def test_memory_handler_behind_the_bridge() -> None:
    sink = CapturingSink()
    memory = MemoryHandler(100, flushLevel=logging.ERROR, target=sink, flushOnClose=False)
    logger = logging.getLogger("test_buffering.bridge")
    logger.setLevel(logging.DEBUG)
    async with loopsink.install(memory, logger=logger) as queue:
        logger.debug("step %d", 1)
        logger.info("step %d", 2)
        await queue.flush()
        # LogQueue.flush() runs MemoryHandler.flush(), which hands the buffer over.
        assert sink.messages == ["step 1", "step 2"]
        logger.debug("step %d", 3)
        logger.error("failed")
        await queue.flush()
        assert sink.messages == ["step 1", "step 2", "step 3", "failed"]


# -- flush_interval ------------------------------------------------------------------------------


class SignallingSink(CapturingSink):
    def __init__(self) -> None:
        super().__init__()
        self.arrived = anyio.Event()

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        await super().emit_batch(records)
        self.arrived.set()


async def test_flush_interval_gets_a_quiet_buffer_out() -> None:
    sink = SignallingSink()
    handler = MemoryHandler(100, target=sink, flush_interval=0.05)
    start = anyio.current_time()
    await handler.handle(make_record(0))
    await handler.handle(make_record(1))
    assert sink.records == []  # below flushLevel, buffer not full: waiting
    with anyio.fail_after(5):
        await sink.arrived.wait()
    assert anyio.current_time() - start >= 0.05
    assert sink.messages == ["record 0", "record 1"]
    assert handler.buffer == []
    # The timer re-arms for the next quiet record.
    sink.arrived = anyio.Event()
    await handler.handle(make_record(2))
    with anyio.fail_after(5):
        await sink.arrived.wait()
    assert sink.messages == ["record 0", "record 1", "record 2"]
    await handler.close()


async def test_flush_interval_through_a_queue() -> None:
    sink = SignallingSink()
    handler = MemoryHandler(100, target=sink, flush_interval=0.05)
    async with LogQueue(handler) as queue:
        queue.put(make_record(0))
        with anyio.fail_after(5):
            await sink.arrived.wait()
        assert sink.messages == ["record 0"]


async def test_a_flush_disarms_the_timer_and_close_stops_it() -> None:
    sink = CapturingSink()
    handler = MemoryHandler(100, target=sink, flush_interval=30, flushOnClose=False)
    await handler.handle(make_record(0))
    timer = timer_of(handler)
    assert timer is not None
    assert not cancelled(timer)
    await handler.handle(make_record(1, logging.ERROR))  # flushes: timer no longer needed
    assert cancelled(timer)
    assert timer_of(handler) is None
    assert sink.messages == ["record 0", "record 1"]
    await handler.handle(make_record(2))
    timer = timer_of(handler)
    assert timer is not None
    await handler.close()
    assert cancelled(timer)
    assert timer_of(handler) is None
    assert sink.messages == ["record 0", "record 1"]  # flushOnClose=False: not sent
    await anyio.lowlevel.checkpoint()


async def test_emit_flushes_a_buffer_older_than_the_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A busy service below flushLevel: the next record after the interval flushes at once."""
    from loopsink.handlers import _buffering

    offset = 0.0
    monkeypatch.setattr(_buffering, "_now", lambda: anyio.current_time() + offset)
    sink = CapturingSink()
    handler = MemoryHandler(100, target=sink, flush_interval=30)
    await handler.handle(make_record(0))
    offset = 29.0
    await handler.handle(make_record(1))
    assert sink.records == []  # 29 s old: not yet
    offset = 30.5
    await handler.handle(make_record(2))  # the oldest is now 30.5 s old
    assert sink.messages == ["record 0", "record 1", "record 2"]
    assert timer_of(handler) is None
    await handler.close()


async def test_no_timer_without_a_target() -> None:
    handler = MemoryHandler(100, flush_interval=0.01)
    await handler.handle(make_record(0))
    assert timer_of(handler) is None
    assert numbers(handler.buffer) == ["record 0"]


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, r"^flush_interval must be more than 0 seconds, got 0$"),
        (-1.5, ValueError, r"^flush_interval must be more than 0 seconds, got -1.5$"),
        ("5", TypeError, r"^flush_interval must be a number of seconds or None, got '5'$"),
    ],
)
def test_bad_flush_interval_is_refused(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        MemoryHandler(10, flush_interval=value)  # type: ignore[arg-type]
