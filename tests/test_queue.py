"""LogQueue: ordering, flush, overflow policies, slow and failing sinks, close deadlines."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Sequence

import anyio
import anyio.lowlevel
import pytest

import loopsink
from helpers import GateSink
from loopsink import DropReason, LogQueue
from loopsink._tuning import TRICKLE
from loopsink.testing import CapturingSink


def make_record(i: int, level: int = logging.INFO, name: str = "t") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, "record %d", (i,), None)


class FailingSink(CapturingSink):
    """Raises for every record whose number is divisible by ``every``."""

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every = every
        self.reported: list[logging.LogRecord] = []

    async def emit(self, record: logging.LogRecord) -> None:
        assert isinstance(record.args, tuple)
        if record.args[0] % self.every == 0:
            raise OSError(f"cannot write record {record.args[0]}")
        self.records.append(record)

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        await loopsink.AsyncHandler.emit_batch(self, records)

    def handleError(self, record: logging.LogRecord) -> None:
        self.reported.append(record)
        super().handleError(record)


async def test_records_reach_every_sink_in_order() -> None:
    first, second = CapturingSink(), CapturingSink()
    async with LogQueue(first, second) as queue:
        for i in range(500):
            assert queue.put(make_record(i))
        await queue.flush()
        assert [r.args for r in first.records] == [(i,) for i in range(500)]
        assert [r.args for r in second.records] == [(i,) for i in range(500)]
    stats = queue.stats
    assert stats.enqueued == 500
    assert [s.emitted for s in stats.sinks] == [500, 500]
    assert stats.dropped_total == 0


async def test_records_are_handed_over_in_batches() -> None:
    sink = CapturingSink()
    async with LogQueue(sink) as queue:
        for i in range(1000):
            queue.put(make_record(i))
        await queue.flush()
    # 1000 records put without yielding reach the sink in one batch, not a thousand calls.
    assert sink.batches == 1
    assert len(sink.records) == 1000


async def test_one_record_per_pass_of_the_loop_is_still_batched() -> None:
    """A service that logs one record between awaits: the worker looks again a moment after
    each batch instead of being woken by every put, so a batch carries many passes."""
    sink = CapturingSink()
    async with LogQueue(sink) as queue:
        for i in range(1000):
            queue.put(make_record(i))
            await anyio.lowlevel.checkpoint()
        await queue.flush()
    assert [r.args for r in sink.records] == [(i,) for i in range(1000)]
    # woken by every put, it would take about one batch per record
    assert sink.batches <= 500, sink.batches


async def test_a_record_logged_on_the_loop_after_half_a_look_is_delivered_in_that_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a small batch the worker looks again POLL later. A record the loop's own thread
    logs once half of that has passed wakes it at once, in the same pass of the loop, so
    that its own look rarely comes due: every timer that wakes the loop apart from the
    application's makes the loop's next wait start late (epoll waits in whole ms)."""
    import loopsink._lane
    import loopsink._queue
    from loopsink._tuning import POLL

    skew = [0.0]  # the clock of the queue and its lanes runs ahead by this much; the loop's not
    clock = lambda: time.monotonic() + skew[0]  # noqa: E731
    monkeypatch.setattr(loopsink._queue, "monotonic", clock, raising=False)
    monkeypatch.setattr(loopsink._lane, "monotonic", clock, raising=False)
    sink = CapturingSink()
    async with LogQueue(sink) as queue:
        queue.put(make_record(0))
        await sink.wait_for(lambda records: len(records) == 1)
        # the worker is waiting for its next look, a whole POLL away on the loop's clock;
        # for the queue more than half of it has passed when the application logs again
        skew[0] = POLL * 0.6
        queue.put(make_record(1))
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
            if len(sink.records) == 2:
                break
        assert len(sink.records) == 2  # the put woke the worker, not its own look


async def test_records_logged_while_a_sink_waits_on_a_small_batch_wait_for_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sink that waits on its batch (a network send) finds the records logged meanwhile
    when it is done. After a small batch these few wait for more, as those logged after it
    do, instead of going out at once: else such a sink gets a batch, and makes a send, per
    pass of the loop. flush() takes them at once."""
    import loopsink._lane

    now = time.monotonic()
    monkeypatch.setattr(loopsink._lane, "monotonic", lambda: now, raising=False)  # no time passes
    sink = GateSink()
    async with LogQueue(sink) as queue:
        queue.put(make_record(0))
        with anyio.fail_after(5):
            await sink.entered.wait()  # the sink has record 0 and waits
        for i in (1, 2, 3):  # logged while it waits, a pass of the loop apart
            queue.put(make_record(i))
            await anyio.lowlevel.checkpoint()
        sink.release.set()
        with anyio.fail_after(5):
            await sink.wait_for(lambda records: len(records) == 1)
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
        queue.put(make_record(4))
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
        assert [r.args for r in sink.records] == [(0,)]  # 1-3 wait with what comes next
        await queue.flush()
        assert [r.args for r in sink.records] == [(i,) for i in range(5)]
        assert sink.batches == 2


async def test_a_sink_that_takes_a_record_at_a_time_gets_the_next_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch cut short by the sink's max_batch_size is not a small batch: the records
    behind it were waiting before it went out, so they go next, without a wait."""
    import loopsink._lane

    now = time.monotonic()
    monkeypatch.setattr(loopsink._lane, "monotonic", lambda: now, raising=False)  # no time passes
    sink = CapturingSink()
    sink.max_batch_size = 1
    async with LogQueue(sink) as queue:
        for i in range(5):
            queue.put(make_record(i))
        with anyio.fail_after(5):
            await sink.wait_for(lambda records: len(records) == 5)
    assert sink.batches == 5


class LingeringSink(CapturingSink):
    """Holds the output of its batches for a while, as a sink that writes behind does
    (the public contract: ``linger_deadline()`` and ``write_held()``)."""

    def __init__(self, clock: Callable[[], float], linger: float) -> None:
        super().__init__()
        self.clock, self.linger = clock, linger
        self.held_until: float | None = None

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        await super().emit_batch(records)
        if self.held_until is None:
            self.held_until = self.clock() + self.linger

    def linger_deadline(self) -> float | None:
        return self.held_until

    async def write_held(self) -> None:
        self.held_until = None


def lingering_sink(
    monkeypatch: pytest.MonkeyPatch, linger: float
) -> tuple[list[float], LingeringSink]:
    """A LingeringSink and the lanes' clock, which moves only when the test moves it."""
    import loopsink._lane

    now = [time.monotonic()]
    monkeypatch.setattr(loopsink._lane, "monotonic", lambda: now[0], raising=False)
    return now, LingeringSink(lambda: now[0], linger)


async def put_and_wait(queue: LogQueue, sink: CapturingSink, index: int) -> None:
    queue.put(make_record(index))
    with anyio.fail_after(5):
        await sink.wait_for(lambda records: len(records) == index + 1)


async def test_records_for_a_sink_that_holds_its_output_wait_until_it_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a small batch, records for a sink that holds that batch's output for a linger
    wait until the output is due, not only for the short wait after the batch: delivered
    earlier, they would only wait in the sink's held output, and every sink of the queue
    would cost the loop a pass of its worker for every few records. They go out once the
    output is due, in one batch, and flush() takes them at once."""
    from loopsink._tuning import LINGER, POLL

    now, sink = lingering_sink(monkeypatch, LINGER * 0.8)
    async with LogQueue(sink) as queue:
        await put_and_wait(queue, sink, 0)
        assert sink.linger_deadline() is not None
        now[0] += POLL  # past the short wait after the batch; the output is held still
        for i in (1, 2, 3):
            queue.put(make_record(i))
            for _ in range(50):
                await anyio.lowlevel.checkpoint()
        assert [r.args for r in sink.records] == [(0,)]
        now[0] += LINGER  # the held output is due: the records go with it
        with anyio.fail_after(5):
            await sink.wait_for(lambda records: len(records) == 4)
        assert sink.batches == 2
        now[0] += POLL  # nothing held now (written when due): the next record goes at once
        await put_and_wait(queue, sink, 4)
        now[0] += POLL  # its output is held: the next one waits
        queue.put(make_record(5))
        for _ in range(50):
            await anyio.lowlevel.checkpoint()
        assert len(sink.records) == 5
        await queue.flush()  # takes what waits at once
        assert [r.args for r in sink.records] == [(i,) for i in range(6)]


async def test_a_sink_whose_held_output_is_due_later_than_a_linger_gets_records_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No record waits longer than a linger for a sink's held output: a sink whose
    ``linger_deadline()`` lies further ahead (the HTTP sink's next look at a request in
    flight) gets what is logged after the short wait as it comes."""
    from loopsink._tuning import LINGER, POLL

    now, sink = lingering_sink(monkeypatch, LINGER * 4)
    async with LogQueue(sink) as queue:
        await put_and_wait(queue, sink, 0)
        now[0] += POLL
        await put_and_wait(queue, sink, 1)


async def test_records_logged_while_a_sink_waits_go_out_once_there_are_enough() -> None:
    """The wait after a small batch ends as soon as TRICKLE records wait (or half the lane's
    capacity, whichever is fewer): it never makes the backlog overflow."""
    sink = GateSink()
    async with LogQueue(sink, capacity=16) as queue:
        queue.put(make_record(0))
        with anyio.fail_after(5):
            await sink.entered.wait()
        for i in range(1, 9):  # half the capacity
            queue.put(make_record(i))
        sink.release.set()
        with anyio.fail_after(5):
            await sink.wait_for(lambda records: len(records) == 9)
        stats = queue.stats
    assert sink.batches == 2
    assert stats.dropped_total == 0


async def test_a_record_logged_soon_after_a_look_waits_for_the_next_one() -> None:
    """The other half: a record logged less than half a look after the last one does not
    wake the worker, which then takes it with what follows, at its own look."""
    sink = CapturingSink()
    async with LogQueue(sink) as queue:
        queue.put(make_record(0))
        await sink.wait_for(lambda records: len(records) == 1)
        await anyio.lowlevel.checkpoint()
        queue.put(make_record(1))
        queue.put(make_record(2))
        with anyio.fail_after(5):
            await sink.wait_for(lambda records: len(records) == 3)
    assert sink.batches == 2


async def test_flush_delivers_a_record_put_between_two_looks() -> None:
    sink = CapturingSink()
    async with LogQueue(sink) as queue:
        queue.put(make_record(0))
        await sink.wait_for(lambda records: len(records) == 1)
        queue.put(make_record(1))  # the worker is between two looks: nothing wakes it
        with anyio.fail_after(5):
            await queue.flush()
        assert len(sink.records) == 2


async def test_flush_waits_for_emission_and_flushes_each_sink() -> None:
    gate = GateSink()
    async with LogQueue(gate) as queue:
        queue.put(make_record(1))
        flushed = anyio.Event()

        async def flush() -> None:
            await queue.flush()
            flushed.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(flush)
            with anyio.fail_after(5):
                await gate.entered.wait()
            await anyio.wait_all_tasks_blocked()
            assert not flushed.is_set(), "flush returned before the record was emitted"
            assert gate.flushes == 0
            gate.release.set()
        assert flushed.is_set()
        assert len(gate.records) == 1
        assert gate.flushes == 1


async def test_records_put_before_start_are_delivered() -> None:
    sink = CapturingSink()
    queue = LogQueue(sink)
    for i in range(10):
        queue.put(make_record(i))
    async with queue:
        await queue.flush()
    assert [r.args for r in sink.records] == [(i,) for i in range(10)]


async def test_drop_newest_counts_exactly_and_summarises_once() -> None:
    sink = CapturingSink()
    queue = LogQueue(sink, capacity=10, overflow="drop_newest")
    async with queue:
        accepted = [queue.put(make_record(i)) for i in range(25)]  # no yield: the intake fills
        assert accepted == [True] * 10 + [False] * 15
        assert queue.stats.dropped == {DropReason.FULL: 15}
        with anyio.fail_after(5):  # the summary comes once drops have stopped for a moment
            await sink.wait_for(lambda records: any(r.name == "loopsink" for r in records))
    kept = [r for r in sink.records if r.name == "t"]
    summaries = [r for r in sink.records if r.name == "loopsink"]
    assert [r.args for r in kept] == [(i,) for i in range(10)]
    assert len(summaries) == 1
    assert summaries[0].levelno == logging.WARNING
    assert summaries[0].getMessage().startswith("15 records dropped: queue full")


async def test_the_drop_summary_honours_each_sinks_level() -> None:
    """The summary (a WARNING of loopsink's own) reaches the sinks whose level lets it in,
    and no other."""
    every, errors = CapturingSink(), CapturingSink(level=logging.ERROR)
    queue = LogQueue(every, errors, capacity=10, overflow="drop_newest")
    async with queue:
        for i in range(25):  # no yield: the intake fills
            queue.put(make_record(i, logging.ERROR))
        with anyio.fail_after(5):  # the summary comes once drops have stopped for a moment
            await every.wait_for(lambda records: any(r.name == "loopsink" for r in records))
        await queue.flush()
    assert [r.args for r in errors.records] == [(i,) for i in range(10)]
    assert queue.stats.sinks[1].pending == 0


async def test_drop_oldest_keeps_the_newest_records() -> None:
    sink = CapturingSink()
    async with LogQueue(sink, capacity=10, overflow="drop_oldest") as queue:
        assert all(queue.put(make_record(i)) for i in range(25))
        assert queue.stats.dropped == {DropReason.EVICTED: 15}
        await queue.flush()
    kept = [r.args for r in sink.records if r.name == "t"]
    assert kept == [(i,) for i in range(15, 25)]
    assert [r.getMessage()[:21] for r in sink.records if r.name == "loopsink"] == [
        "15 records dropped: q"
    ]


async def test_block_on_the_loop_thread_drops_instead_of_deadlocking() -> None:
    sink = CapturingSink()
    async with LogQueue(sink, capacity=5, overflow="block") as queue:
        results = [queue.put(make_record(i)) for i in range(8)]
        assert results == [True] * 5 + [False] * 3
        assert queue.stats.dropped == {DropReason.FULL: 3}


async def test_block_makes_foreign_threads_wait_and_loses_nothing() -> None:
    sink = CapturingSink()
    total = 5_000
    async with LogQueue(sink, capacity=16, overflow="block") as queue:

        def produce() -> None:
            for i in range(total):
                assert queue.put(make_record(i))

        await anyio.to_thread.run_sync(produce)
        await queue.flush()
        stats = queue.stats
    assert stats.dropped_total == 0
    assert [r.args for r in sink.records] == [(i,) for i in range(total)]
    assert stats.sinks[0].high_water <= 32


async def test_slow_sink_backlog_overflow_is_counted_per_sink() -> None:
    gate, fast = GateSink(), CapturingSink()
    async with LogQueue(gate, fast, capacity=10) as queue:
        queue.put(make_record(0))
        with anyio.fail_after(5):
            await gate.entered.wait()  # the gate now holds record 0 in flight
        for i in range(1, 31):
            queue.put(make_record(i))
            with anyio.fail_after(5):  # each record reaches the fast sink while the gate holds
                await fast.wait_for(lambda records, n=i: any(r.args == (n,) for r in records))
        stats = queue.stats
        assert stats.dropped == {}
        assert stats.sinks[0].dropped == {DropReason.FULL: 20}
        # Drop summaries bypass the capacity (each lane gets every one); on a slow machine
        # more than one may have come, since each follows a quiet moment.
        summaries = sum(r.name == "loopsink" for r in fast.records)
        assert stats.sinks[0].pending - summaries == 11  # ten waiting plus the one in flight
        assert stats.sinks[1].dropped == {}
        assert sum(r.name == "t" for r in fast.records) == 31  # the fast sink was not held back
        gate.release.set()
        await queue.flush()
    assert [r.args for r in gate.records if r.name == "t"] == [(i,) for i in range(11)]


async def test_hung_sink_does_not_delay_a_file_sink(tmp_path: object) -> None:
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    path = tmp_path / "beside.log"
    written = threading.Event()

    class SignallingFile(loopsink.FileHandler):
        def _write_blocking(self, text: str) -> None:  # runs on the sink's writer thread
            super()._write_blocking(text)
            if "record 99\n" in text:
                written.set()

    gate = GateSink()
    queue = LogQueue(gate, SignallingFile(path))
    async with queue:
        for i in range(100):
            queue.put(make_record(i))
        with anyio.fail_after(5):
            await gate.entered.wait()
        # The file sink holds its text for at most a few ms, then writes it on its own.
        assert await anyio.to_thread.run_sync(written.wait, 5)
        assert queue.stats.sinks[1].emitted == 100
        lines = path.read_text().splitlines()
        assert lines == [f"record {i}" for i in range(100)]
        gate.release.set()


async def test_raising_sink_reports_counts_and_keeps_going(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = FailingSink(every=10)
    async with LogQueue(sink) as queue:
        for i in range(100):
            queue.put(make_record(i))
        await queue.flush()
        stats = queue.stats.sinks[0]
    assert [r.args[0] for r in sink.reported] == list(range(0, 100, 10))  # type: ignore[index]
    assert len(sink.records) == 90
    assert stats.errors == 10
    assert stats.emitted == 90
    assert stats.last_error == "OSError('cannot write record 90')"
    err = capsys.readouterr().err
    assert err.count("--- Logging error ---") == 10
    assert "OSError: cannot write record 0" in err
    assert f"Logged from file {__file__}, line 1" in err


async def test_handle_error_is_silent_without_raise_exceptions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logging.raiseExceptions = False
    sink = FailingSink(every=2)
    async with LogQueue(sink) as queue:
        for i in range(4):
            queue.put(make_record(i))
    assert queue.stats.sinks[0].errors == 2
    assert capsys.readouterr().err == ""


async def test_batch_failure_is_reported_once_and_counted_per_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Broken(CapturingSink):
        async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
            raise ConnectionError("peer went away")

    sink = Broken()
    async with LogQueue(sink) as queue:
        for i in range(5):
            queue.put(make_record(i))
    assert queue.stats.sinks[0].errors == 5
    assert queue.stats.sinks[0].emitted == 0
    assert capsys.readouterr().err.count("--- Logging error ---") == 1


async def test_sink_level_and_filters_apply() -> None:
    sink = CapturingSink(level=logging.WARNING)
    sink.addFilter(lambda r: "secret" not in r.getMessage())
    async with LogQueue(sink) as queue:
        queue.put(make_record(1, logging.INFO))
        queue.put(make_record(2, logging.ERROR))
        queue.put(logging.LogRecord("t", logging.ERROR, __file__, 1, "secret", None, None))
        await queue.flush()
    assert [r.args for r in sink.records] == [(2,)]


async def test_records_below_a_sinks_level_never_take_its_room() -> None:
    """A slow ERROR-only sink (a mail sink, say) beside a flood of INFO records: the records
    it would never send filled its backlog, and the errors that came next were dropped."""
    gate, fast = GateSink(), CapturingSink()
    gate.setLevel(logging.ERROR)
    async with LogQueue(gate, fast, capacity=10) as queue:
        queue.put(make_record(0, logging.ERROR))
        with anyio.fail_after(5):
            await gate.entered.wait()  # the gate now holds record 0 in flight
        for i in range(1, 61):
            level = logging.ERROR if i % 10 == 0 else logging.INFO
            queue.put(make_record(i, level))
            with anyio.fail_after(5):  # each record reaches the fast sink while the gate holds
                await fast.wait_for(lambda records, n=i: any(r.args == (n,) for r in records))
        assert queue.stats.sinks[0].dropped == {}
        assert queue.stats.sinks[0].pending == 7  # six errors waiting, one in flight
        gate.release.set()
        await queue.flush()
    assert [r.args for r in gate.records] == [(i,) for i in range(0, 61, 10)]
    assert len(fast.records) == 61


async def test_a_record_below_a_sinks_level_hands_on_its_context() -> None:
    """On the loop's thread a record whose context is that of the record before it is queued
    alone and shares that context; when the one before is below a sink's level, the sink
    still runs the next one's filters in the right context."""
    request = contextvars.ContextVar("request", default="-")
    sink = CapturingSink(level=logging.ERROR)
    seen: list[str] = []

    def remember(record: logging.LogRecord) -> bool:
        seen.append(request.get())
        return True

    sink.addFilter(remember)
    logger = logging.getLogger("test_queue.level_context")
    logger.propagate = False
    logger.setLevel(logging.INFO)

    async def handle(name: str) -> None:
        request.set(name)
        logger.info("below the sink's level")
        logger.error("request %s", name)

    async with loopsink.install(sink, logger=logger):
        for name in ("a", "b", "c"):
            async with anyio.create_task_group() as tg:  # each task in a context of its own
                tg.start_soon(handle, name)
    assert [r.getMessage() for r in sink.records] == ["request a", "request b", "request c"]
    assert seen == ["a", "b", "c"]


async def test_close_flushes_and_closes_every_sink() -> None:
    closed: list[str] = []

    class Tracking(CapturingSink):
        async def close(self) -> None:
            closed.append(f"{self.name}:{len(self.records)}:{self.flushes}")
            await super().close()

    a, b = Tracking(), Tracking()
    a.name, b.name = "a", "b"
    async with LogQueue(a, b) as queue:
        for i in range(3):
            queue.put(make_record(i))
    assert sorted(closed) == ["a:3:1", "b:3:1"]
    assert queue.closed
    assert not queue.put(make_record(99))
    assert queue.stats.dropped == {DropReason.CLOSED: 1}


async def test_close_deadline_counts_and_reports_what_is_lost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gate, fast = GateSink(), CapturingSink()
    queue = LogQueue(gate, fast)
    async with queue:
        for i in range(5):
            queue.put(make_record(i))
        with anyio.fail_after(5):
            await gate.entered.wait()
        with anyio.fail_after(5):
            await queue.aclose(timeout=0.05)
    stats = queue.stats
    assert stats.sinks[0].dropped == {DropReason.DEADLINE: 5}
    assert stats.sinks[1].emitted == 5
    assert "aclose(timeout=0.05) ran out of time" in capsys.readouterr().err


async def test_cancelled_body_still_drains() -> None:
    sink = CapturingSink()
    with anyio.CancelScope() as scope:
        async with LogQueue(sink) as queue:
            for i in range(50):
                queue.put(make_record(i))
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert len(sink.records) == 50
    assert queue.closed


async def test_body_exception_still_drains_and_propagates() -> None:
    sink = CapturingSink()

    async def body() -> None:
        async with LogQueue(sink) as queue:
            queue.put(make_record(1))
            raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await body()
    assert len(sink.records) == 1


async def test_per_thread_order_with_many_threads_and_the_loop() -> None:
    sink = CapturingSink()
    threads, per_thread = 8, 10_000
    async with LogQueue(sink, capacity=threads * per_thread + 1000) as queue:

        def produce(t: int) -> None:
            for i in range(per_thread):
                queue.put(logging.LogRecord(f"t{t}", logging.INFO, "", 0, "%d", (i,), None))

        workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for i in range(1000):
            queue.put(logging.LogRecord("loop", logging.INFO, "", 0, "%d", (i,), None))
            if i % 100 == 0:
                await anyio.sleep(0)
        await anyio.to_thread.run_sync(lambda: [w.join() for w in workers])
        await queue.flush()
    seen: dict[str, list[int]] = {}
    for r in sink.records:
        seen.setdefault(r.name, []).append(r.args[0])  # type: ignore[index]
    assert seen.pop("loop") == list(range(1000))
    assert sorted(seen) == [f"t{t}" for t in range(threads)]
    for name, numbers in seen.items():
        assert numbers == list(range(per_thread)), name
    assert queue.stats.dropped_total == 0


async def test_queue_runs_once() -> None:
    queue = LogQueue(CapturingSink())
    async with queue:
        pass
    with pytest.raises(
        loopsink.QueueClosedError, match=r"^this LogQueue is closed; a queue runs once"
    ):
        async with queue:
            pass


async def test_flush_needs_a_running_queue() -> None:
    queue = LogQueue(CapturingSink())
    with pytest.raises(loopsink.QueueNotRunningError, match=r"inside 'async with queue:'"):
        await queue.flush()
    async with queue:
        pass
    with pytest.raises(loopsink.QueueClosedError, match=r"after the queue was closed"):
        await queue.flush()


def test_closing_an_unstarted_queue_reports_the_records(capsys: pytest.CaptureFixture[str]) -> None:
    queue = LogQueue(CapturingSink())
    queue.put(make_record(1))
    anyio.run(queue.aclose)
    assert queue.stats.dropped == {DropReason.CLOSED: 1}
    assert "1 log records were never delivered" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((), {}, ValueError, r"^LogQueue needs at least one sink"),
        ((logging.StreamHandler(),), {}, TypeError, r"use loopsink\.StreamHandler instead"),
        (("x",), {}, TypeError, r"^LogQueue sinks must be loopsink sinks"),
        ((CapturingSink(),), {"capacity": 0}, ValueError, r"^capacity must be at least 1, got 0$"),
        ((CapturingSink(),), {"capacity": 1.5}, TypeError, r"^capacity must be an int, got 1.5$"),
        (
            (CapturingSink(),),
            {"overflow": "drop"},
            ValueError,
            r"^overflow must be one of 'drop_newest', 'drop_oldest', 'block', got 'drop'$",
        ),
    ],
)
def test_bad_arguments(
    args: tuple[object, ...], kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        LogQueue(*args, **kwargs)  # type: ignore[arg-type]


def test_same_sink_twice_is_refused() -> None:
    sink = CapturingSink()
    with pytest.raises(ValueError, match="the same sink was given to LogQueue twice"):
        LogQueue(sink, sink)


def test_a_forgotten_queue_with_records_warns() -> None:
    def forget() -> None:
        queue = LogQueue(CapturingSink())
        queue.put(make_record(1))
        # the last reference goes here, and CPython finalises the queue at once

    with pytest.warns(ResourceWarning, match=r"garbage-collected with 1 records never delivered"):
        forget()


def test_a_forgotten_empty_queue_is_quiet() -> None:
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        queue = LogQueue(CapturingSink())
        del queue
        gc.collect()


async def test_a_worker_kept_busy_still_takes_turns_with_other_tasks() -> None:
    """Every batch brings more records (a sink that logs, or threads that keep logging):
    the worker must still let the rest of the program run, not loop until it runs dry.
    TRICKLE of them, so that the worker takes them at once instead of waiting for more."""
    watchdog_fired = threading.Event()

    class Echo(CapturingSink):
        stop = False
        queue: LogQueue | None = None

        async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
            await super().emit_batch(records)
            if not self.stop and self.queue is not None:
                for _ in range(TRICKLE):
                    self.queue.put(make_record(len(self.records)))

    sink = Echo()

    def give_up() -> None:  # a worker that never yields would hold the loop until this
        watchdog_fired.set()
        sink.stop = True

    watchdog = threading.Timer(5.0, give_up)
    async with LogQueue(sink) as queue:
        sink.queue = queue
        queue.put(make_record(0))
        watchdog.start()
        try:
            for _ in range(20):  # each of these needs the busy worker to step aside
                await anyio.lowlevel.checkpoint()
            assert not watchdog_fired.is_set(), "this task ran only once the worker ran dry"
            assert len(sink.records) > 1  # and the worker was busy meanwhile
        finally:
            sink.stop = True
            watchdog.cancel()


# -- #19: the close deadline holds, and late records are not lost silently ----------------------


class HangingSink(CapturingSink):
    """A sink whose writes and whose close() never finish (a dead NFS mount, say)."""

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        await anyio.sleep_forever()

    async def close(self) -> None:
        await anyio.sleep_forever()


async def test_aclose_timeout_counts_the_grace_for_a_hanging_close(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Once: aclose(timeout=1) took 2 s, a second of undocumented grace after the deadline."""
    hanging, fine = HangingSink(), CapturingSink()
    queue = LogQueue(hanging, HangingSink(), fine)
    async with queue:
        queue.put(logging.makeLogRecord({"msg": "stuck"}))
        with anyio.fail_after(5):
            await fine.wait_for(lambda records: len(records) == 1)
        start = anyio.current_time()
        await queue.aclose(timeout=0.5)
        took = anyio.current_time() - start
    assert took < 0.5 + 0.25, f"aclose(timeout=0.5) took {took:.2f} s"
    err = capsys.readouterr().err
    assert "aclose(timeout=0.5) ran out of time; records lost: 1 pending for HangingSink; " in err


class StalledWriteSink(loopsink.AsyncHandler):
    """Hands its output to write_behind(); its thread's write blocks until the gate opens
    (a dead NFS mount, a pipe nobody reads)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = threading.Event()
        self.gate = threading.Event()

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        await self.write_behind("".join(f"{r.getMessage()}\n" for r in records), records)

    def write_blocking(self, data: str) -> None:
        self.inside.set()
        self.gate.wait(30)


async def close_while_a_write_stalls(
    sink: loopsink.AsyncHandler, inside: threading.Event, gate: threading.Event
) -> None:
    """Three records whose write stalls, two held behind it, then a close that runs out of
    time; the gate opens afterwards."""
    queue = LogQueue(sink)
    try:
        async with queue:
            for n in range(3):
                queue.put(logging.makeLogRecord({"msg": f"first {n}"}))
            assert await anyio.to_thread.run_sync(inside.wait, 5.0)  # the write stalls
            for n in range(2):
                queue.put(logging.makeLogRecord({"msg": f"then {n}"}))  # held behind it
            with anyio.fail_after(5):
                while sink.unwritten < 5:
                    await anyio.sleep(0.005)  # the worker hands them over in its own time
            assert queue.stats.sinks[0].emitted == 5
            await queue.aclose(timeout=0.2)
    finally:
        gate.set()


async def test_a_close_that_runs_out_of_time_names_the_output_not_written_yet(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Once: records handed to a sink whose write never ended were lost at the close
    deadline while the report said "records lost: 0 pending"."""
    sink = StalledWriteSink()
    await close_while_a_write_stalls(sink, sink.inside, sink.gate)
    err = capsys.readouterr().err
    assert (
        "aclose(timeout=0.2) ran out of time; records lost: 0 pending for StalledWriteSink "
        "and 5 handed to it but not written yet." in err
    ), err


class StallingStream:
    """A blocking stream whose write waits until the gate opens (a pipe nobody reads)."""

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.gate = threading.Event()

    def write(self, text: str) -> int:
        self.inside.set()
        self.gate.wait(30)
        return len(text)

    def flush(self) -> None:
        pass


async def test_a_built_in_stream_sink_names_its_output_not_written_yet_at_the_close(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A StreamHandler holds its text and writes it on its own thread, as write_behind()
    does, but reported 0 unwritten: a close that ran out of time while its write stalled
    said "0 pending" of the records it lost."""
    stream = StallingStream()
    await close_while_a_write_stalls(loopsink.StreamHandler(stream), stream.inside, stream.gate)
    err = capsys.readouterr().err
    assert (
        "aclose(timeout=0.2) ran out of time; records lost: 0 pending for StreamHandler "
        "and 5 handed to it but not written yet." in err
    ), err


async def test_a_record_put_after_close_is_reported_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = LogQueue(CapturingSink())
    async with queue:
        pass
    for i in range(3):
        assert not queue.put(logging.makeLogRecord({"msg": f"late {i}"}))
    assert queue.stats.dropped == {DropReason.CLOSED: 3}
    err = capsys.readouterr().err
    assert err.count("was logged after") == 1  # once, not once per record
    assert "counted in stats.dropped['closed']" in err


def test_records_dropped_as_closed_are_counted_on_stderr_at_exit() -> None:
    """Once: drops counted as "closed" at interpreter exit were never reported."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import logging, threading, loopsink
        runner = loopsink.start_in_thread(loopsink.NullHandler())
        log = logging.getLogger("app")
        runner.close()
        queue = runner.queue
        for i in range(5):  # as a daemon thread or a later exit handler would
            queue.put(logging.makeLogRecord({"msg": "late"}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "loopsink: 5 log records were dropped because they were logged after" in done.stderr


async def test_held_output_is_written_while_the_worker_stays_busy() -> None:
    """A sink that holds its output its own way (linger_deadline/write_held) and whose
    batches never say that output is due: records that keep coming keep the worker from
    going idle, and it still writes the held output once its linger is over, at the end of
    a turn."""

    class Holding(CapturingSink):
        queue: LogQueue | None = None

        def __init__(self) -> None:
            super().__init__()
            self.held: list[logging.LogRecord] = []
            self.since: float | None = None
            self.writes: list[int] = []
            self.stop = False

        async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
            if not self.held:
                self.since = time.monotonic()
            self.held += records
            if not self.stop and self.queue is not None:  # the worker never runs dry
                self.queue.put(make_record(0))

        def linger_deadline(self) -> float | None:
            return None if self.since is None else self.since + 0.005

        async def write_held(self) -> None:
            self.writes.append(len(self.held))
            self.records += self.held
            self.held, self.since = [], None

    sink = Holding()
    async with LogQueue(sink) as queue:
        sink.queue = queue
        queue.put(make_record(0))
        with anyio.fail_after(5):
            while len(sink.writes) < 3:  # other tasks run: the worker takes turns
                await anyio.lowlevel.checkpoint()
        sink.stop = True
    assert all(count > 0 for count in sink.writes)
