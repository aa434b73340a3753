"""QueueHandler and QueueListener, side by side with the stdlib's, on every kind of queue."""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import pytest

from helpers import ListHandler, until
from loopsink import LogQueue, QueueHandler, QueueListener, _tuning
from loopsink.testing import CapturingSink


def make_record(i: int, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("qh", level, __file__, 10 + i, "record %d", (i,), None)


def messages(items: Sequence[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in items]


def rich_records() -> list[logging.LogRecord]:
    """Records exercising every attribute prepare() touches."""
    plain = make_record(0)
    with_dict_arg = logging.LogRecord(
        "qh", logging.INFO, __file__, 2, "user %(name)s", ({"name": "ann"},), None
    )
    try:
        raise ValueError("boom")
    except ValueError:
        with_exc = logging.LogRecord(
            "qh", logging.ERROR, __file__, 3, "failed %s", ("op",), sys.exc_info()
        )
    with_stack = logging.LogRecord(
        "qh",
        logging.WARNING,
        __file__,
        4,
        "here",
        None,
        None,
        sinfo="Stack (most recent call last):\n  frame",
    )
    not_a_str = logging.LogRecord(
        "qh", logging.INFO, __file__, 5, ValueError("obj msg"), None, None
    )
    return [plain, with_dict_arg, with_exc, with_stack, not_a_str]


FORMATTERS: list[logging.Formatter | None] = [
    None,
    logging.Formatter("%(levelname)s %(name)s: %(message)s"),
]


# -- prepare --------------------------------------------------------------------------------------


@pytest.mark.parametrize("formatter", FORMATTERS, ids=["default", "custom"])
def test_prepare_matches_the_stdlib(formatter: logging.Formatter | None) -> None:
    ours = QueueHandler(queue.Queue())
    theirs = logging.handlers.QueueHandler(queue.Queue())
    ours.setFormatter(formatter)
    theirs.setFormatter(formatter)
    for record in rich_records():
        before = dict(record.__dict__)
        mine, stdlib = ours.prepare(record), theirs.prepare(record)
        assert mine.__dict__ == stdlib.__dict__
        assert mine is not record
        assert mine.args is None
        assert mine.exc_info is None
        assert mine.exc_text is None
        assert mine.stack_info is None
        # The original keeps its args, exception and stack for the other handlers.
        before.pop("exc_text", None)
        after = dict(record.__dict__)
        after.pop("exc_text", None)
        after.pop("message", None)
        before.pop("message", None)
        assert after == before
    exc_record = rich_records()[2]
    assert "ValueError: boom" in ours.prepare(exc_record).msg
    assert type(ours.prepare(exc_record)) is logging.LogRecord


def test_prepare_copies_a_record_class_with_its_own_copy_its_way() -> None:
    """The direct copy of a plain LogRecord must not bypass a record factory's __copy__."""

    class Tagged(logging.LogRecord):
        def __copy__(self) -> Tagged:
            copied = Tagged.__new__(Tagged)
            copied.__dict__.update(self.__dict__)
            copied.copied_by = "Tagged.__copy__"
            return copied

    record = Tagged("qh", logging.INFO, __file__, 1, "tagged", None, None)
    for handler in (QueueHandler(queue.Queue()), logging.handlers.QueueHandler(queue.Queue())):
        prepared = handler.prepare(record)
        assert type(prepared) is Tagged
        assert prepared.copied_by == "Tagged.__copy__"
        assert not hasattr(record, "copied_by")


# -- QueueHandler on each kind of queue ------------------------------------------------------------


async def test_handler_has_the_listener_attribute_of_python_3_12() -> None:
    q: queue.Queue[Any] = queue.Queue()
    handler = QueueHandler(q)
    assert handler.listener is None  # CPython 3.12+: None until a listener is attached
    sink = CapturingSink()
    handler.listener = QueueListener(q, sink)
    async with handler.listener:
        await handler.handle(make_record(1))
    assert messages(sink.records) == ["record 1"]


async def test_handler_puts_on_a_queue_queue_and_simple_queue() -> None:
    queues: list[Any] = [queue.Queue(), queue.SimpleQueue()]
    for q in queues:
        handler = QueueHandler(q)
        async with LogQueue(handler) as log_queue:
            for i in range(5):
                log_queue.put(make_record(i))
            await log_queue.flush()
        got = []
        while not q.empty():
            got.append(q.get_nowait())
        assert messages(got) == [f"record {i}" for i in range(5)]
        assert all(r.args is None for r in got)


async def test_handler_puts_on_an_anyio_stream() -> None:
    send, receive = anyio.create_memory_object_stream[logging.LogRecord](10)
    with send, receive:
        handler = QueueHandler(send)
        for i in range(3):
            await handler.handle(make_record(i))
        assert messages([receive.receive_nowait() for _ in range(3)]) == [
            "record 0",
            "record 1",
            "record 2",
        ]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_handler_puts_on_an_asyncio_queue() -> None:
    import asyncio

    q: asyncio.Queue[logging.LogRecord] = asyncio.Queue()
    handler = QueueHandler(q)
    for i in range(3):
        await handler.handle(make_record(i))
    assert messages([q.get_nowait() for _ in range(3)]) == ["record 0", "record 1", "record 2"]


async def test_handler_puts_on_a_multiprocessing_queue() -> None:
    q: Any = multiprocessing.get_context("spawn").Queue()
    try:
        handler = QueueHandler(q)
        for i in range(3):
            await handler.handle(make_record(i))
        got = [await anyio.to_thread.run_sync(q.get, True, 5) for _ in range(3)]
        assert messages(got) == ["record 0", "record 1", "record 2"]
    finally:
        q.close()
        q.join_thread()


async def test_a_queue_whose_put_blocks_is_written_from_a_worker_thread() -> None:
    """A put() that waits on the loop to let it go would deadlock if called on the loop."""
    release = threading.Event()

    class BlockingQueue:
        def __init__(self) -> None:
            self.items: list[logging.LogRecord] = []
            self.threads: set[int] = set()

        def put(self, item: logging.LogRecord) -> None:
            if not release.wait(10):
                raise TimeoutError("never released")
            self.threads.add(threading.get_ident())
            self.items.append(item)

    q = BlockingQueue()
    handler = QueueHandler(q)
    with anyio.fail_after(5):
        async with LogQueue(handler) as log_queue:
            for i in range(4):
                log_queue.put(make_record(i))
            await anyio.wait_all_tasks_blocked()
            assert q.items == []
            release.set()
            await log_queue.flush()
    assert messages(q.items) == [f"record {i}" for i in range(4)]
    assert threading.get_ident() not in q.threads


def _queue_queue() -> tuple[Any, Callable[[], None]]:
    return queue.Queue(maxsize=2), lambda: None


def _anyio_stream() -> tuple[Any, Callable[[], None]]:
    send, receive = anyio.create_memory_object_stream[Any](2)

    def close() -> None:
        send.close()
        receive.close()

    return send, close


@pytest.mark.parametrize("factory", [_queue_queue, _anyio_stream], ids=["queue.Queue", "anyio"])
async def test_a_full_bounded_queue_is_reported_not_waited_on(
    factory: Callable[[], tuple[Any, Callable[[], None]]], capsys: pytest.CaptureFixture[str]
) -> None:
    q, close = factory()
    handler = QueueHandler(q)
    try:
        with anyio.fail_after(5):
            async with LogQueue(handler) as log_queue:
                for i in range(5):
                    log_queue.put(make_record(i))
                await log_queue.flush()
    finally:
        close()
    assert handler.error_count == 3
    err = capsys.readouterr().err
    assert err.count("--- Logging error ---") == 3
    assert (
        "queue.Full: QueueHandler: the queue is full (maxsize 2), so the record was dropped "
        "rather than stall the event loop; give the queue a larger maxsize or consume it faster"
    ) in err
    assert "Message: 'record %d'\nArguments: (2,)" in err


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_full_asyncio_queue_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    handler = QueueHandler(asyncio.Queue(maxsize=1))
    await handler.handle(make_record(0))
    await handler.handle(make_record(1))
    assert handler.error_count == 1
    assert "the queue is full (maxsize 1)" in capsys.readouterr().err


def test_the_wrong_end_or_kind_is_refused() -> None:
    send, receive = anyio.create_memory_object_stream[Any](1)
    with send, receive:
        with pytest.raises(TypeError, match=r"^QueueHandler needs the send end of a memory object"):
            QueueHandler(receive)
        with pytest.raises(TypeError, match=r"^QueueListener needs the receive end of a memory"):
            QueueListener(send)
    with pytest.raises(
        TypeError, match=r"^QueueHandler needs a queue with put_nowait\(\) or put\(\)"
    ):
        QueueHandler([])
    with pytest.raises(TypeError, match=r"^QueueListener needs a queue with get\(\)"):
        QueueListener(object())
    with pytest.raises(TypeError, match=r"^QueueListener handlers must be loopsink sinks"):
        QueueListener(queue.Queue(), "stderr")  # type: ignore[arg-type]
    simple = multiprocessing.get_context("spawn").SimpleQueue()
    try:
        with pytest.raises(
            TypeError, match=r"^QueueListener cannot read a multiprocessing.SimpleQueue"
        ):
            QueueListener(simple)
    finally:
        simple.close()


async def test_enqueue_can_be_overridden() -> None:
    got: list[logging.LogRecord] = []

    class ToList(QueueHandler):
        async def enqueue(self, record: logging.LogRecord) -> None:
            got.append(record)

    handler = ToList(queue.Queue())
    async with LogQueue(handler) as log_queue:
        log_queue.put(make_record(0))
        log_queue.put(make_record(1))
    assert messages(got) == ["record 0", "record 1"]
    assert handler.queue.empty()


async def test_an_overridden_emit_sees_every_record_from_the_queue() -> None:
    class Tagging(QueueHandler):
        async def emit(self, record: logging.LogRecord) -> None:
            record.tag = "seen"
            await super().emit(record)

    q: queue.Queue[Any] = queue.Queue()
    async with LogQueue(Tagging(q)) as log_queue:
        for i in range(3):
            log_queue.put(make_record(i))
    got = [q.get_nowait() for _ in range(3)]
    assert [getattr(r, "tag", None) for r in got] == ["seen"] * 3


# -- QueueListener --------------------------------------------------------------------------------


def is_running(listener: QueueListener) -> bool:
    return listener.running  # a call, so that mypy does not narrow it between checks


LEVELS = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL] * 3


def _run_stdlib_listener(
    items: list[logging.LogRecord], respect: bool, *handlers: logging.Handler
) -> None:
    q: queue.Queue[Any] = queue.Queue()
    listener = logging.handlers.QueueListener(q, *handlers, respect_handler_level=respect)
    listener.start()
    for item in items:
        q.put(item)
    listener.stop()


@pytest.mark.parametrize("respect", [False, True])
async def test_listener_hands_on_what_the_stdlib_listener_hands_on(respect: bool) -> None:
    items = [make_record(i, level) for i, level in enumerate(LEVELS)]

    def build() -> tuple[ListHandler, ListHandler]:
        warn = ListHandler(logging.WARNING)
        filtered = ListHandler()
        filtered.addFilter(lambda r: r.levelno != logging.ERROR)
        return warn, filtered

    ref_warn, ref_filtered = build()
    _run_stdlib_listener(items, respect, ref_warn, ref_filtered)

    # The same stdlib handlers behind our listener, and loopsink sinks set up the same way.
    std_warn, std_filtered = build()
    sink_warn = CapturingSink(logging.WARNING)
    sink_filtered = CapturingSink()
    sink_filtered.addFilter(lambda r: r.levelno != logging.ERROR)
    q: queue.Queue[Any] = queue.Queue()
    listener = QueueListener(
        q, std_warn, sink_warn, std_filtered, sink_filtered, respect_handler_level=respect
    )
    with anyio.fail_after(10):
        await listener.start()
        for item in items:
            q.put_nowait(item)
        await listener.stop()
    for reference, stdlib_twin, sink in (
        (ref_warn, std_warn, sink_warn),
        (ref_filtered, std_filtered, sink_filtered),
    ):
        assert messages(stdlib_twin.records) == messages(reference.records)
        assert sink.messages == messages(reference.records)
    expected_warn = [r for r in items if not respect or r.levelno >= logging.WARNING]
    assert sink_warn.messages == messages(expected_warn)
    assert threading.get_ident() not in std_warn.threads  # stdlib handlers: a worker thread
    assert q.unfinished_tasks == 0  # task_done() for every record and the sentinel


class _BurstCounting(CapturingSink):
    """Keeps the size of every burst it was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.bursts: list[int] = []

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        self.bursts.append(len(records))
        await super().emit_batch(records)


async def test_a_trickle_on_a_blocking_queue_reaches_the_sinks_in_few_bursts() -> None:
    """Every burst the listener's thread hands back wakes the event loop: records that
    trickle in from another thread are gathered for a linger, not handed on one by one."""
    q: queue.Queue[Any] = queue.Queue()
    sink = _BurstCounting()
    count = 30

    def produce() -> float:
        started = time.perf_counter()
        for i in range(count):
            q.put(logging.makeLogRecord({"msg": f"r{i}"}))
            time.sleep(0.001)  # the pace of a trickle, not a synchronisation
        return time.perf_counter() - started

    async with QueueListener(q, sink):
        span = await anyio.to_thread.run_sync(produce)
        await until(lambda: len(sink.records) == count)
    assert [r.getMessage() for r in sink.records] == [f"r{i}" for i in range(count)]
    # one burst per linger the trickle lasted (and one more for its tail), not one per record
    assert len(sink.bursts) <= span / _tuning.LINGER + 2, (span, sink.bursts)


async def test_listener_async_with_and_stop_drains_everything() -> None:
    q: queue.Queue[Any] = queue.Queue()
    sink = CapturingSink()
    with anyio.fail_after(10):
        async with QueueListener(q, sink) as listener:
            assert is_running(listener)
            for i in range(3000):
                q.put_nowait(make_record(i))
        assert not is_running(listener)
    assert sink.messages == [f"record {i}" for i in range(3000)]
    assert sink.batches < 3000  # taken a burst at a time, not one thread hop per record


async def test_listener_on_an_anyio_stream_stops_without_closing_it() -> None:
    send, receive = anyio.create_memory_object_stream[Any](100)
    sink = CapturingSink()
    with send, receive, anyio.fail_after(10):
        listener = QueueListener(receive, sink)
        await listener.start()
        for i in range(5):
            send.send_nowait(make_record(i))
        await listener.stop()
        assert sink.messages == [f"record {i}" for i in range(5)]
        # The stream is still usable: a second run picks up where the first stopped.
        send.send_nowait(make_record(5))
        async with listener:
            send.send_nowait(make_record(6))
    assert sink.messages == [f"record {i}" for i in range(7)]


async def test_listener_on_an_anyio_stream_ends_with_the_stream() -> None:
    send, receive = anyio.create_memory_object_stream[Any](100)
    sink = CapturingSink()
    with receive, anyio.fail_after(10):
        listener = QueueListener(receive, sink)
        await listener.start()
        handler = QueueHandler(send)
        for i in range(3):
            await handler.handle(make_record(i))
        send.close()
        while listener.running:
            await anyio.wait_all_tasks_blocked()
        await listener.stop()
    assert sink.messages == ["record 0", "record 1", "record 2"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_listener_on_an_asyncio_queue() -> None:
    import asyncio

    q: asyncio.Queue[Any] = asyncio.Queue()
    sink, stdlib_target = CapturingSink(), ListHandler()
    handler = QueueHandler(q)
    async with QueueListener(q, sink, stdlib_target):
        for i in range(6):
            await handler.handle(make_record(i))
    assert sink.messages == [f"record {i}" for i in range(6)]
    assert messages(stdlib_target.records) == sink.messages
    await asyncio.wait_for(q.join(), 5)


async def test_stop_waits_for_room_for_the_sentinel() -> None:
    """A full bounded queue at stop(): the sentinel waits, nothing ahead of it is lost."""
    q: queue.Queue[Any] = queue.Queue(maxsize=3)
    entered, gate = threading.Event(), threading.Event()

    class Slow(ListHandler):
        def emit(self, record: logging.LogRecord) -> None:
            entered.set()
            gate.wait(10)
            super().emit(record)

    target = Slow()
    listener = QueueListener(q, target)
    with anyio.fail_after(10):
        await listener.start()
        q.put_nowait(make_record(0))
        await anyio.to_thread.run_sync(entered.wait, 5)  # the listener is stuck in the handler
        for i in range(1, 4):
            q.put_nowait(make_record(i))
        assert q.full()
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.stop)
            await anyio.wait_all_tasks_blocked()
            assert is_running(listener)
            gate.set()
    assert not listener.running
    assert messages(target.records) == [f"record {i}" for i in range(4)]


async def test_stop_and_start_misuse() -> None:
    listener = QueueListener(queue.Queue(), CapturingSink())
    await listener.stop()  # never started: nothing to do
    async with listener:
        with pytest.raises(
            RuntimeError, match=r"^this QueueListener is already running; call stop\(\) first$"
        ):
            await listener.start()
    assert not listener.running


async def test_overridden_steps_are_used() -> None:
    """dequeue, prepare and handle are the stdlib's hooks: subclasses replace them."""
    q: queue.Queue[Any] = queue.Queue()
    sink = CapturingSink()
    seen: list[str] = []

    class Decoding(QueueListener):
        async def dequeue(self, block: bool) -> Any:
            item = await super().dequeue(block)
            seen.append("dequeue")
            return item

        def prepare(self, record: Any) -> Any:
            return logging.makeLogRecord(record) if isinstance(record, dict) else record

        async def handle(self, record: Any) -> None:
            seen.append("handle")
            await super().handle(record)

    with anyio.fail_after(10):
        async with Decoding(q, sink):
            q.put({"msg": "from a dict", "levelno": logging.INFO})
            q.put(make_record(1))
    assert sink.messages == ["from a dict", "record 1"]
    assert seen == ["dequeue", "handle", "dequeue", "handle", "dequeue"]


async def test_failing_handlers_are_reported_and_the_listener_carries_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise OSError("stdlib handler down")

    class BrokenSink(CapturingSink):
        async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
            raise OSError("sink down")

    q: queue.Queue[Any] = queue.Queue()
    healthy = CapturingSink()
    broken_sink = BrokenSink()
    with anyio.fail_after(10):
        async with QueueListener(q, Broken(), broken_sink, healthy):
            for i in range(3):
                q.put(make_record(i))
    assert healthy.messages == ["record 0", "record 1", "record 2"]
    assert broken_sink.error_count == 3
    err = capsys.readouterr().err
    assert "OSError: stdlib handler down" in err
    assert "OSError: sink down" in err


async def test_stop_with_a_timeout_gives_up_on_a_hung_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Hung(CapturingSink):
        async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
            await anyio.sleep_forever()

    q: queue.Queue[Any] = queue.Queue()
    listener = QueueListener(q, Hung())
    with anyio.fail_after(10):
        await listener.start()
        q.put(make_record(0))
        q.put(make_record(1))
        await listener.stop(timeout=0.3)
    assert not listener.running
    assert "stop(timeout=0.3) ran out of time; what was not handled yet is left in the queue" in (
        capsys.readouterr().err
    )


async def test_a_failing_prepare_loses_one_record_not_the_listener(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Picky(QueueListener):
        def prepare(self, record: Any) -> Any:
            if record.getMessage() == "record 1":
                raise ValueError("cannot decode")
            return record

    q: queue.Queue[Any] = queue.Queue()
    sink = CapturingSink()
    with anyio.fail_after(10):
        async with Picky(q, sink):
            for i in range(3):
                q.put(make_record(i))
    assert sink.messages == ["record 0", "record 2"]
    err = capsys.readouterr().err
    assert "ValueError: cannot decode" in err
    assert "prepare() raised; the record is lost" in err


async def test_cancel_stops_an_idle_listener_on_a_blocking_queue() -> None:
    q: queue.Queue[Any] = queue.Queue()
    listener = QueueListener(q, CapturingSink())
    with anyio.fail_after(5):
        await listener.start()
        await anyio.wait_all_tasks_blocked()
        listener.cancel()
        await listener.stop()  # the worker thread polls, so this takes at most ~0.2 s
    assert not listener.running
    assert q.empty()  # no sentinel left behind for the next start()
    q.put(make_record(0))
    sink = listener.handlers[0]
    assert isinstance(sink, CapturingSink)
    with anyio.fail_after(5):
        async with listener:
            pass
    assert sink.messages == ["record 0"]


async def test_listener_over_a_multiprocessing_queue_in_process() -> None:
    q: Any = multiprocessing.get_context("spawn").Queue()
    sink = CapturingSink()
    try:
        with anyio.fail_after(10):
            async with QueueListener(q, sink):
                handler = QueueHandler(q)
                for i in range(50):
                    await handler.handle(make_record(i))
        assert sink.messages == [f"record {i}" for i in range(50)]
    finally:
        q.close()
        q.join_thread()


async def test_a_manager_queue_proxy_is_used_from_worker_threads() -> None:
    """Every call on a manager proxy is a round trip to the manager's process."""
    manager: Any = await anyio.to_thread.run_sync(multiprocessing.get_context("spawn").Manager)
    try:
        q = await anyio.to_thread.run_sync(manager.Queue)
        sink = CapturingSink()
        with anyio.fail_after(20):
            async with QueueListener(q, sink), LogQueue(QueueHandler(q)) as log_queue:
                for i in range(20):
                    log_queue.put(make_record(i))
                await log_queue.flush()
        assert sink.messages == [f"record {i}" for i in range(20)]
    finally:
        await anyio.to_thread.run_sync(manager.shutdown)


async def test_a_listener_waiting_on_a_thread_queue_lends_the_loop_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The listener's thread waits on the queue (a blocking get) for its next burst. The
    loop lent the GIL to that wait at every burst, up to 0.5 ms with nothing to run while
    the queue was empty: with records trickling in, more than half of the loop's time.

    Only that hand-over's lend is checked: the short lend of a loop that never idled for a
    while (WAKE_LEND, the executor's rule for a busy loop) may still come when the machine
    stalls this test's loop for milliseconds."""
    from loopsink._executor import Job
    from loopsink._tuning import LEND

    lent: list[tuple[str, float]] = []
    lend = Job._lend

    def recording(job: Job[Any], seconds: float) -> bool:
        lent.append((getattr(job._func, "__name__", "?"), seconds))
        return lend(job, seconds)

    monkeypatch.setattr(Job, "_lend", recording)
    q: queue.Queue[Any] = queue.Queue()
    target = ListHandler()
    handler = logging.handlers.QueueHandler(q)
    async with QueueListener(q, target):
        for i in range(20):
            handler.handle(logging.LogRecord("t", logging.INFO, __file__, 1, "m%d", (i,), None))
            await anyio.sleep(0.001)  # records trickle in: the listener waits in between
    assert [r.getMessage() for r in target.records] == [f"m{i}" for i in range(20)]
    assert ("_take_burst", LEND) not in lent  # the handler's own calls may still be lent to
