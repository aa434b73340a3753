"""Context-correct records (#16): a sink's filters and formatters run in the log call's context."""

from __future__ import annotations

import contextvars
import io
import logging
import pickle
import threading

import anyio
import anyio.to_thread
import pytest

import loopsink
from helpers import GateSink
from loopsink.testing import CapturingSink

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class RequestIdFormatter(logging.Formatter):
    """Reads the variable at format time, as an OpenTelemetry-aware formatter would."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{request_id.get()}|{super().format(record)}"


def app_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


def _log_from_thread(logger: logging.Logger) -> None:
    request_id.set("thread")
    logger.info("from a thread")


async def _the_issue_reproduction(logger: logging.Logger) -> None:
    async def handle(i: int) -> None:
        request_id.set(f"req-{i}")
        await anyio.sleep(0)
        logger.info("handled %d", i)

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(handle, i)
    thread = threading.Thread(target=_log_from_thread, args=(logger,))
    thread.start()
    await anyio.to_thread.run_sync(thread.join)


EXPECTED = [
    "req-0 handled 0",
    "req-1 handled 1",
    "req-2 handled 2",
    "req-3 handled 3",
    "req-4 handled 4",
    "thread from a thread",
]


@pytest.mark.parametrize("start", ["loop", "thread"])
async def test_the_issue_reproduction_prints_what_the_stdlib_prints(start: str) -> None:
    out = io.StringIO()
    sink = loopsink.StreamHandler(out)
    sink.addFilter(RequestIdFilter())
    sink.setFormatter(logging.Formatter("%(request_id)s %(message)s"))
    logger = app_logger("ctx.repro")
    if start == "loop":
        async with loopsink.install(sink, logger=logger):
            await _the_issue_reproduction(logger)
    else:
        # made from a thread without a loop, as a program without one would
        runner = await anyio.to_thread.run_sync(
            lambda: loopsink.start_in_thread(sink, logger=logger)
        )
        try:
            await _the_issue_reproduction(logger)
        finally:
            await anyio.to_thread.run_sync(runner.close)
    assert sorted(out.getvalue().splitlines()) == EXPECTED


async def test_a_formatter_reading_a_contextvar_sees_the_callers_value() -> None:
    sink = CapturingSink()
    sink.setFormatter(RequestIdFormatter("%(message)s"))
    logger = app_logger("ctx.formatter")
    async with loopsink.install(sink, logger=logger):
        await _the_issue_reproduction(logger)
    assert sorted(sink.lines) == sorted(e.replace(" ", "|", 1) for e in EXPECTED)


async def test_to_thread_carries_the_callers_context() -> None:
    out = io.StringIO()
    sink = loopsink.StreamHandler(out)
    sink.addFilter(RequestIdFilter())
    sink.setFormatter(logging.Formatter("%(request_id)s %(message)s"))
    logger = app_logger("ctx.to_thread")
    async with loopsink.install(sink, logger=logger):
        request_id.set("caller")
        await anyio.to_thread.run_sync(logger.info, "in a worker thread")
    assert out.getvalue() == "caller in a worker thread\n"


async def test_records_logged_before_the_queue_runs_keep_their_context() -> None:
    out = io.StringIO()
    sink = loopsink.StreamHandler(out)
    sink.addFilter(RequestIdFilter())
    sink.setFormatter(logging.Formatter("%(request_id)s %(message)s"))
    logger = app_logger("ctx.early")
    queue = loopsink.LogQueue(sink)
    logger.addHandler(loopsink.LoggingBridge(queue))
    request_id.set("early")
    logger.info("before the start")
    request_id.set("late")
    async with queue:
        logger.info("after the start")
    assert out.getvalue() == "early before the start\nlate after the start\n"


async def test_a_filter_setting_a_variable_does_not_leak_to_the_next_sink() -> None:
    class Overwrite(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            request_id.set("overwritten")
            return True

    first, second = CapturingSink(), CapturingSink()
    first.addFilter(Overwrite())
    second.addFilter(RequestIdFilter())
    second.setFormatter(logging.Formatter("%(request_id)s"))
    logger = app_logger("ctx.leak")
    async with loopsink.install(first, second, logger=logger):
        request_id.set("mine")
        logger.info("x")
    assert second.lines == ["mine"]
    assert request_id.get() == "mine"


async def test_runs_of_records_sharing_a_context_are_entered_once() -> None:
    entries: list[str] = []

    class CountingFilter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            entries.append(request_id.get())
            return True

    sink = CapturingSink()
    sink.addFilter(CountingFilter())
    logger = app_logger("ctx.runs")
    async with loopsink.install(sink, logger=logger) as queue:
        request_id.set("a")
        for _ in range(3):
            logger.info("a")
        request_id.set("b")
        for _ in range(2):
            logger.info("b")
        await queue.flush()
    assert entries == ["a", "a", "a", "b", "b"]
    records = sink.records
    runs = [len(run) for _, run in loopsink._context.context_runs(records)]
    assert runs == [3, 2]


def test_a_queued_record_pickles_as_a_plain_record_with_its_merged_message() -> None:
    from loopsink._record import snapshot

    items = ["a"]
    record = logging.LogRecord("n", logging.INFO, "p", 1, "items %s", (items,), None)
    copy = snapshot(record, contextvars.copy_context())
    items.append("b")
    restored = pickle.loads(pickle.dumps(copy))
    assert type(restored) is logging.LogRecord
    assert restored.getMessage() == "items ['a']"
    assert copy.getMessage() == "items ['a']"
    assert copy.args == (["a"],)


@pytest.mark.parametrize("overflow", ["drop_newest", "drop_oldest", "block"])
async def test_records_alone_in_the_intake_get_the_right_context(overflow: str) -> None:
    """The fast path queues a record alone when its context equals the previous one's;
    records put directly and records from other threads in between must not disturb that."""
    sink = CapturingSink()
    sink.addFilter(RequestIdFilter())
    sink.setFormatter(logging.Formatter("%(request_id)s %(message)s"))
    logger = app_logger("ctx.alone")
    async with loopsink.LogQueue(sink, overflow=overflow) as queue:  # type: ignore[arg-type]
        logger.addHandler(loopsink.LoggingBridge(queue))
        request_id.set("a")
        logger.info("a1")
        queue.put(logging.LogRecord("direct", logging.INFO, "p", 1, "direct", None, None))
        logger.info("a2")
        thread = threading.Thread(target=_log_from_thread, args=(logger,))
        thread.start()
        await anyio.to_thread.run_sync(thread.join)
        logger.info("a3")
        await queue.flush()  # the worker takes what is there; the next records come later
        logger.info("a4")
        request_id.set("b")
        logger.info("b1")
        logger.info("b2")
    assert sink.lines == [
        "a a1",
        "- direct",  # put directly, outside any log call: the worker's own context
        "a a2",
        "thread from a thread",
        "a a3",
        "a a4",
        "b b1",
        "b b2",
    ]


async def test_a_built_in_sink_with_a_formatter_subclass_still_enters_the_context() -> None:
    """Built-in sinks with the stdlib's own Formatter and no filter skip the context (nothing
    they run can read it); any other formatter class gets it."""
    plain_out, custom_out = io.StringIO(), io.StringIO()
    plain = loopsink.StreamHandler(plain_out)
    plain.setFormatter(logging.Formatter("%(message)s"))
    custom = loopsink.StreamHandler(custom_out)
    custom.setFormatter(RequestIdFormatter("%(message)s"))
    assert not plain.needs_context()
    assert custom.needs_context()
    logger = app_logger("ctx.kinds")
    async with loopsink.install(plain, logger=logger), loopsink.install(custom, logger=logger):
        request_id.set("r-7")
        logger.info("hello")
    assert plain_out.getvalue() == "hello\n"
    assert custom_out.getvalue() == "r-7|hello\n"


def network_sinks() -> list[loopsink.AsyncHandler]:
    return [
        loopsink.SysLogHandler(("127.0.0.1", 514)),
        loopsink.SocketHandler("127.0.0.1", 9020),
        loopsink.DatagramHandler("127.0.0.1", 9021),
    ]


def test_built_in_network_sinks_skip_the_context_unless_something_can_read_it() -> None:
    """The syslog, socket and datagram sinks run their formatter and a fixed encoding per
    record: with the stdlib's Formatter (or none) and no filter, records go to them without
    a context to carry. A filter, a formatter subclass or a sink subclass (which may add
    per-record code of its own) brings the context back."""
    plain = network_sinks()
    assert [sink.needs_context() for sink in plain] == [False] * 3
    for sink in plain:
        sink.setFormatter(logging.Formatter("%(message)s"))
    assert [sink.needs_context() for sink in plain] == [False] * 3

    filtered = network_sinks()
    for sink in filtered:
        sink.addFilter(lambda record: True)
    formatted = network_sinks()
    for sink in formatted:
        sink.setFormatter(RequestIdFormatter("%(message)s"))

    class OwnSysLog(loopsink.SysLogHandler):
        pass

    subclassed = OwnSysLog(("127.0.0.1", 514))
    assert all(sink.needs_context() for sink in [*filtered, *formatted, subclassed])


async def test_a_syslog_sink_with_a_context_reading_formatter_formats_in_the_callers_context() -> (
    None
):
    """The other side of the skip above: records reach a syslog sink whose formatter reads a
    ContextVar with the context of their call, over a real UDP socket."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(10)
        reading = loopsink.SysLogHandler(receiver.getsockname())
        reading.setFormatter(RequestIdFormatter("%(message)s"))
        plain = loopsink.SysLogHandler(receiver.getsockname())
        plain.setFormatter(logging.Formatter("plain %(message)s"))
        logger = app_logger("ctx.syslog")
        async with loopsink.install(reading, plain, logger=logger):
            request_id.set("r-9")
            logger.info("hello")
        got = sorted(receiver.recv(2048) for _ in range(2))
    assert got == [b"<14>plain hello\x00", b"<14>r-9|hello\x00"]


async def test_a_record_alone_after_records_cut_from_a_full_sink_keeps_its_context() -> None:
    """A sink whose backlog is full drops the end of what the intake hands it. When a
    context change was among the records dropped, the next record queued alone (same
    context as the dropped change) must still carry it, not the sink's last one."""
    fast, gated = CapturingSink(), GateSink()
    for sink in (fast, gated):
        sink.addFilter(RequestIdFilter())
        sink.setFormatter(logging.Formatter("%(request_id)s %(message)s"))
    logger = app_logger("ctx.cut")
    async with loopsink.LogQueue(fast, gated, capacity=2) as queue:
        logger.addHandler(loopsink.LoggingBridge(queue))
        request_id.set("a")
        logger.info("a1")
        with anyio.fail_after(5):
            await gated.entered.wait()  # a1 is in flight; the gated backlog is empty
        logger.info("a2")
        logger.info("a3")
        # the fast lane drains the intake into both lanes
        await fast.wait_for(lambda records: len(records) == 3)
        request_id.set("b")
        logger.info("b1")  # a context change, cut from the full gated backlog
        await fast.wait_for(lambda records: len(records) == 4)
        assert queue.stats.sinks[1].dropped == {"full": 1}
        gated.release.set()
        await gated.wait_for(lambda records: len(records) == 3)
        logger.info("b2")  # queued alone: its context equals b1's
    assert fast.lines[:5] == ["a a1", "a a2", "a a3", "b b1", "b b2"]
    assert gated.lines[:3] == ["a a1", "a a2", "a a3"]
    assert [line for line in gated.lines[3:] if "b2" in line] == ["b b2"]
