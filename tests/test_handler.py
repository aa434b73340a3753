"""AsyncHandler: the logging.Handler surface with coroutine I/O."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Sequence

import pytest

import loopsink
from loopsink._record import wrap
from loopsink.testing import CapturingSink


def record(
    msg: str = "hello %s", args: tuple[object, ...] = ("world",), level: int = 20
) -> logging.LogRecord:
    return logging.LogRecord("h", level, __file__, 7, msg, args, None)


class OneByOne(loopsink.AsyncHandler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    async def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_mirrors_the_stdlib_handler_surface() -> None:
    sink = OneByOne()
    assert sink.level == logging.NOTSET
    sink.setLevel("WARNING")
    assert sink.level == logging.WARNING
    sink.name = "mine"
    assert sink.get_name() == "mine"
    sink.set_name("other")
    assert sink.name == "other"
    assert repr(sink) == "<OneByOne other (WARNING)>"
    fmt = logging.Formatter("%(levelname)s|%(message)s")
    sink.setFormatter(fmt)
    assert sink.formatter is fmt
    assert sink.format(record(level=logging.ERROR)) == "ERROR|hello world"
    only_errors = logging.Filter("h")
    sink.addFilter(only_errors)
    assert sink.filters == [only_errors]
    sink.removeFilter(only_errors)
    assert sink.filters == []


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown level: 'LOUD'"):
        OneByOne().setLevel("LOUD")


async def test_handle_filters_then_emits_and_returns_the_record() -> None:
    sink = OneByOne()
    sink.addFilter(lambda r: r.getMessage() != "hello nobody")
    passed = record()
    assert await sink.handle(passed) is passed  # CPython 3.12+: the record, not True
    assert await sink.handle(record(args=("nobody",))) is False
    assert sink.lines == ["hello world"]


async def test_handle_leaves_the_level_to_its_caller() -> None:
    """The stdlib's Handler.handle ignores the handler's level: the logger checks it."""
    sink = OneByOne()
    sink.setLevel(logging.ERROR)
    debug = record(level=logging.DEBUG)
    assert await sink.handle(debug) is debug
    assert sink.lines == ["hello world"]


async def test_a_queue_still_applies_each_sinks_level() -> None:
    """What Logger.callHandlers does: the queue checks the level before the sink sees it."""
    sink = OneByOne()
    sink.setLevel(logging.ERROR)
    async with loopsink.LogQueue(sink) as queue:
        queue.put(record(level=logging.INFO))
        queue.put(record("error %s", level=logging.ERROR))
        await queue.flush()
    assert sink.lines == ["error world"]


async def test_handle_emits_a_filters_replacement_record() -> None:
    """CPython 3.12+ on every Python: later filters and the sink see the replacement."""
    sink = OneByOne()
    seen: list[str] = []

    def replace(rec: logging.LogRecord) -> logging.LogRecord:
        return logging.makeLogRecord({**rec.__dict__, "msg": "replaced", "args": None})

    def watch(rec: logging.LogRecord) -> bool:
        seen.append(rec.getMessage())
        return True

    sink.addFilter(replace)
    sink.addFilter(watch)
    original = record()
    emitted = await sink.handle(original)
    assert isinstance(emitted, logging.LogRecord)
    assert emitted is not original
    assert emitted.getMessage() == "replaced"
    assert seen == ["replaced"]
    assert sink.lines == ["replaced"]
    assert original.getMessage() == "hello world"  # the caller's record is untouched


async def test_handle_reports_emit_errors(capsys: pytest.CaptureFixture[str]) -> None:
    class Broken(loopsink.AsyncHandler):
        async def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("disk on fire")

    sink = Broken()
    failed = record()
    assert await sink.handle(failed) is failed  # it passed the filters; emit failed
    assert sink.error_count == 1
    assert sink.last_error == "RuntimeError('disk on fire')"
    err = capsys.readouterr().err
    assert err.startswith("--- Logging error ---\nTraceback")
    assert "RuntimeError: disk on fire" in err
    assert "Sink: Broken\n" in err
    assert f"Logged from file {__file__}, line 7 (logger 'h', level INFO)" in err
    assert "Message: 'hello %s'\nArguments: ('world',)" in err


async def test_emit_must_be_overridden() -> None:
    sink = loopsink.AsyncHandler()
    with pytest.raises(NotImplementedError, match="AsyncHandler must override emit"):
        await sink.emit(record())


async def test_default_emit_batch_emits_each_and_isolates_failures() -> None:
    class Picky(OneByOne):
        async def emit(self, record: logging.LogRecord) -> None:
            if record.args == ("bad",):
                raise ValueError("bad record")
            await super().emit(record)

    sink = Picky()
    logging.raiseExceptions = False
    await sink.emit_batch([record(args=("a",)), record(args=("bad",)), record(args=("b",))])
    assert sink.lines == ["hello a", "hello b"]
    assert sink.error_count == 1


async def test_async_context_manager_closes() -> None:
    closed: list[bool] = []

    class Tracks(OneByOne):
        async def close(self) -> None:
            closed.append(True)
            await super().close()

    async with Tracks() as sink:
        await sink.handle(record())
    assert closed == [True]
    await sink.aclose()
    assert closed == [True, True]


async def test_format_lines_skips_records_that_fail_to_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = CapturingSink()
    good, bad = record(), record("%d", ("x",))
    text, written = await sink.format_lines([good, bad, good], "\n")
    assert text == "hello world\nhello world\n"
    assert written == [good, good]
    assert sink.error_count == 1
    assert "TypeError" in capsys.readouterr().err


async def test_format_lines_uses_an_overridden_format() -> None:
    class Upper(CapturingSink):
        def format(self, record: logging.LogRecord) -> str:
            return super().format(record).upper()

    text, _ = await Upper().format_lines([record()], "|")
    assert text == "HELLO WORLD|"


def test_format_many_gives_what_format_gives_for_each_record() -> None:
    sink = CapturingSink()
    sink.setFormatter(logging.Formatter("%(levelname)s %(name)s:%(lineno)d %(message)s"))
    records = [record(), record("%s and %s", ("a", "b"), level=40), record("plain", ())]
    texts = sink.format_many(records)
    assert texts == ["INFO h:7 hello world", "ERROR h:7 a and b", "INFO h:7 plain"]
    assert [r.message for r in records] == ["hello world", "a and b", "plain"]


def test_format_many_raises_what_format_raises_for_the_first_failing_record() -> None:
    sink = CapturingSink()
    with pytest.raises(TypeError, match="real number"):
        sink.format_many([record(), record("%d", ("x",)), record("%d", (1.5, 2))])
    assert sink.error_count == 0  # raising is the caller's to report


def test_format_many_runs_each_record_in_its_own_context() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

    class RequestIdFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"{request_id.get()} {record.getMessage()}"

    sink = CapturingSink()
    sink.setFormatter(RequestIdFormatter())
    queued = []
    for value in ("req-1", "req-2"):
        request_id.set(value)
        queued.append(wrap(record(), contextvars.copy_context()))
    request_id.set("loop")
    assert sink.format_many(queued) == ["req-1 hello world", "req-2 hello world"]


async def test_report_batch_failure_counts_every_record(capsys: pytest.CaptureFixture[str]) -> None:
    sink = CapturingSink()
    records: Sequence[logging.LogRecord] = [record(), record(), record()]
    try:
        raise OSError("gone")
    except OSError:
        sink.report_batch_failure(records)
    assert sink.error_count == 3
    assert capsys.readouterr().err.count("--- Logging error ---") == 1
