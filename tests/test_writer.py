"""LentWriter's jobs and thread, and how file sinks write behind under a LogQueue."""

from __future__ import annotations

import logging
import pathlib
import threading
from collections.abc import Iterator

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import loopsink
from loopsink import DropReason, LogQueue
from loopsink._tuning import PUSH_CHARS
from loopsink._writer import LentWriter
from loopsink.testing import CapturingSink

#: How long any wait of these tests may take before it counts as a hang.
DEADLINE = 5.0


def make_record(i: int, padding: str = "") -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, "record %d%s", (i, padding), None)


def lines(first: int, stop: int, padding: str = "") -> list[str]:
    return [f"record {i}{padding}" for i in range(first, stop)]


def is_busy(writer: LentWriter) -> bool:
    """``writer.busy``, read afresh: mypy would keep an earlier ``assert writer.busy``."""
    return writer.busy


async def wait_thread_event(event: threading.Event) -> None:
    """Wait, off the loop and with a deadline, for an event a writer thread sets."""
    assert await anyio.to_thread.run_sync(event.wait, DEADLINE), "the writer thread never got there"


@pytest.fixture
def writer() -> Iterator[LentWriter]:
    writer = LentWriter("test-writer")
    yield writer
    writer.stop()


# -- LentWriter -----------------------------------------------------------------------------


async def test_a_quick_job_finishes_within_start(writer: LentWriter) -> None:
    await writer.run(lambda: None)  # the thread is up and waiting for work
    # A lend is a bounded wait (0.5 ms), and a loaded machine may deschedule the thread for
    # longer: ask that most quick jobs finish within start(), not that every one does.
    finished = 0
    for value in range(20):
        if writer.start(lambda v=value: v * 2):
            finished += 1
            assert not writer.busy
            assert writer.result == (True, value * 2)
        else:  # it outlived the lend: collect it before the next one
            with anyio.fail_after(DEADLINE):
                assert await writer.finish() == (True, value * 2)
    assert finished > 0, "no quick job ever finished within start()"


async def test_run_returns_the_jobs_value(writer: LentWriter) -> None:
    assert await writer.run(lambda a, b: a + b, 40, 2) == 42
    assert await writer.run(str.upper, "abc") == "ABC"
    assert not writer.busy


async def test_run_reraises_the_jobs_own_exception(writer: LentWriter) -> None:
    raised = OSError(28, "No space left on device")

    def job() -> None:
        raise raised

    with pytest.raises(OSError) as caught:
        await writer.run(job)
    assert caught.value is raised  # the very object, not a copy or a wrapper
    assert writer.result == (False, raised)
    assert not writer.busy
    assert await writer.run(lambda: "still works") == "still works"


async def test_a_blocking_job_is_collected_once_it_ends(writer: LentWriter) -> None:
    started, release = threading.Event(), threading.Event()

    def blocking() -> str:
        started.set()
        release.wait(DEADLINE)
        return "done"

    assert writer.start(blocking) is False
    await wait_thread_event(started)
    assert writer.busy
    assert writer.collect() is False
    assert writer.busy
    release.set()
    with anyio.fail_after(DEADLINE):
        assert await writer.finish() == (True, "done")
    assert not is_busy(writer)
    assert writer.collect() is True  # nothing left to collect
    assert writer.result == (True, "done")


async def test_start_while_busy_is_refused_and_runs_nothing(writer: LentWriter) -> None:
    started, release = threading.Event(), threading.Event()
    second_ran: list[bool] = []

    def blocking() -> str:
        started.set()
        release.wait(DEADLINE)
        return "first"

    assert writer.start(blocking) is False
    await wait_thread_event(started)
    with pytest.raises(RuntimeError, match="still running a job"):
        writer.start(second_ran.append, True)
    assert writer.busy
    release.set()
    with anyio.fail_after(DEADLINE):
        assert await writer.finish() == (True, "first")
    assert second_ran == []  # refused means refused, not queued


async def test_jobs_run_in_order_on_one_thread_that_is_not_the_loops(writer: LentWriter) -> None:
    ran: list[tuple[int, int]] = []

    def job(i: int) -> int:
        ran.append((i, threading.get_ident()))
        return i

    assert [await writer.run(job, i) for i in range(20)] == list(range(20))
    assert [i for i, _ in ran] == list(range(20))
    threads = {ident for _, ident in ran}
    assert len(threads) == 1
    assert threading.get_ident() not in threads


async def test_run_waits_for_the_busy_job_before_its_own(writer: LentWriter) -> None:
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        order.append("first starts")
        started.set()
        release.wait(DEADLINE)
        order.append("first ends")

    def second() -> str:
        order.append("second")
        return "second's value"

    results: list[object] = []

    async def run_second() -> None:
        results.append(await writer.run(second))

    assert writer.start(first) is False
    await wait_thread_event(started)
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_second)
            await anyio.wait_all_tasks_blocked()
            assert order == ["first starts"]  # run() has not slipped its job in
            assert results == []
            release.set()
    assert order == ["first starts", "first ends", "second"]
    assert results == ["second's value"]  # its own job's value, not the busy one's


async def test_a_stopped_writer_runs_the_next_job_on_a_new_thread(writer: LentWriter) -> None:
    first = await writer.run(threading.current_thread)
    assert first.name == "test-writer"
    assert first.daemon
    writer.stop()
    await anyio.to_thread.run_sync(first.join, DEADLINE)
    assert not first.is_alive(), "stop() did not end the idle thread"
    # Thread objects, not idents: an ended thread's ident is often reused by the next one.
    second = await writer.run(threading.current_thread)
    assert second is not first
    assert second.is_alive()
    assert await writer.run(lambda: "works") == "works"


async def test_stop_leaves_a_busy_thread_be(writer: LentWriter) -> None:
    started, release = threading.Event(), threading.Event()

    def blocking() -> threading.Thread:
        started.set()
        release.wait(DEADLINE)
        return threading.current_thread()

    assert writer.start(blocking) is False
    await wait_thread_event(started)
    writer.stop()  # busy: ignored
    assert writer.busy
    release.set()
    with anyio.fail_after(DEADLINE):
        ok, thread = await writer.finish()
    assert ok
    assert await writer.run(threading.current_thread) is thread  # the same thread goes on


@pytest.mark.parametrize("lend", [0.0, 0.0005])
async def test_tasks_running_jobs_at_once_each_get_their_own_outcome(lend: float) -> None:
    """A sink's close() may run while its emit() waits: neither may get the other's result."""
    writer = LentWriter("test-shared", lend=lend)
    release = threading.Event()
    outcomes: dict[str, object] = {}

    def first() -> str:
        release.wait(DEADLINE)
        raise OSError("the first job failed")

    async def run_first() -> None:
        try:
            await writer.run(first)
        except OSError as exc:
            outcomes["first"] = exc

    async def run_second() -> None:
        outcomes["second"] = await writer.run(lambda: "second")

    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run_first)
            await anyio.wait_all_tasks_blocked()
            tasks.start_soon(run_second)
            await anyio.wait_all_tasks_blocked()
            release.set()
    writer.stop()
    assert outcomes["second"] == "second"
    assert str(outcomes["first"]) == "the first job failed"


async def test_a_writer_that_lends_nothing_lets_the_loop_run_while_its_job_waits() -> None:
    """lend=0, for jobs that wait on the network: the loop only looks for the outcome."""
    writer = LentWriter("test-network", lend=0.0)
    release = threading.Event()
    assert writer.start(release.wait, DEADLINE) is False  # handed over, not waited for
    ticks = 0
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(writer.finish)
            while ticks < 20:  # the loop keeps running its timers meanwhile
                ticks += 1
                await anyio.sleep(0.001)
            assert writer.busy
            release.set()  # the job ends only now: finish() picks it up on its next look
    assert writer.result == (True, True)
    assert await writer.run(lambda: "next") == "next"
    writer.stop()


# -- file sinks under a queue ---------------------------------------------------------------


class SignallingFile(loopsink.FileHandler):
    """Sets ``written`` after each write; counts calls to ``flush``."""

    def __init__(self, path: pathlib.Path) -> None:
        super().__init__(path, encoding="utf-8")
        self.written = threading.Event()
        self.writes: list[str] = []
        self.flushes = 0

    def _write_blocking(self, text: str) -> None:
        super()._write_blocking(text)
        self.writes.append(text)
        self.written.set()

    async def flush(self) -> None:
        self.flushes += 1
        await super().flush()


async def test_held_output_is_written_without_a_flush(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "a.log"
    sink = SignallingFile(path)
    async with LogQueue(sink) as queue:
        assert queue.put(make_record(0))
        await wait_thread_event(sink.written)  # the linger watch wrote it, nobody else
        assert sink.flushes == 0
        assert sink.writes == ["record 0\n"]
        assert path.read_text(encoding="utf-8") == "record 0\n"
        assert queue.stats.sinks[0].emitted == 1


async def test_emit_batch_without_a_queue_writes_before_it_returns(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "a.log"
    sink = loopsink.FileHandler(path, encoding="utf-8")
    try:
        await sink.emit_batch([make_record(i) for i in range(3)])
        assert path.read_text(encoding="utf-8") == "record 0\nrecord 1\nrecord 2\n"
        # a second batch right after the first, well within a linger: written at once too
        await sink.emit_batch([make_record(3)])
        assert path.read_text(encoding="utf-8") == "record 0\nrecord 1\nrecord 2\nrecord 3\n"
    finally:
        await sink.close()


class GatedFile(loopsink.FileHandler):
    """Every write waits for ``release`` (once ``entered`` is set): slower than any lend."""

    def __init__(self, path: pathlib.Path) -> None:
        super().__init__(path, encoding="utf-8")
        self.entered = threading.Event()
        self.release = threading.Event()

    def _write_blocking(self, text: str) -> None:
        self.entered.set()
        self.release.wait(DEADLINE)
        super()._write_blocking(text)


async def test_emit_batch_without_a_queue_waits_for_a_write_that_outlives_its_lend(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "a.log"
    sink = GatedFile(path)

    async def release_once_entered() -> None:
        await wait_thread_event(sink.entered)
        sink.release.set()  # from the loop: only once emit_batch has yielded to it

    try:
        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as tg:
                tg.start_soon(release_once_entered)
                await sink.emit_batch([make_record(i) for i in range(3)])
                assert path.read_text(encoding="utf-8") == "record 0\nrecord 1\nrecord 2\n"
    finally:
        sink.release.set()
        await sink.close()


class FailsFirstWrite(loopsink.FileHandler):
    """The first write fails, as on a full disk (after waiting for ``release`` if given);
    ``lost`` keeps the lines it held."""

    def __init__(self, path: pathlib.Path, release: threading.Event | None = None) -> None:
        super().__init__(path, encoding="utf-8")
        self.release = release
        self.lost: list[str] | None = None
        self.failing = threading.Event()

    def _write_blocking(self, text: str) -> None:
        if self.lost is None:
            self.lost = text.splitlines()
            self.failing.set()
            if self.release is not None:
                self.release.wait(DEADLINE)
            raise OSError(28, "No space left on device")
        super()._write_blocking(text)


async def test_a_failed_write_is_taken_out_of_emitted_and_counted_as_errors(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a.log"
    sink = FailsFirstWrite(path)
    async with LogQueue(sink) as queue:
        for i in range(20):  # one batch, held, then written by the linger watch: it fails
            assert queue.put(make_record(i))
        await wait_thread_event(sink.failing)
        for i in range(20, 50):
            assert queue.put(make_record(i))
        with anyio.fail_after(DEADLINE):
            await queue.flush()
        stats = queue.stats.sinks[0]
    assert sink.lost == lines(0, 20)
    assert stats.errors == 20
    assert stats.emitted == 30
    assert stats.dropped == {}
    assert "No space left on device" in (stats.last_error or "")
    assert path.read_text(encoding="utf-8").splitlines() == lines(20, 50)
    err = capsys.readouterr().err
    assert err.count("--- Logging error ---") == 1
    assert "Arguments: (0, '')" in err  # reported for the first record of the lost write
    assert queue.stats.sinks[0] == stats  # closing changed nothing


async def test_a_stalled_write_that_fails_is_accounted_exactly(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records keep coming while the failing write stalls, and after it fails; wherever
    the failure surfaces (a batch, the linger watch, the flush) it is counted once."""
    path = tmp_path / "a.log"
    release = threading.Event()
    sink = FailsFirstWrite(path, release)
    async with LogQueue(sink) as queue:
        for i in range(20):
            assert queue.put(make_record(i))
        await wait_thread_event(sink.failing)
        for i in range(20, 50):
            assert queue.put(make_record(i))
            await anyio.lowlevel.checkpoint()
        release.set()
        for i in range(50, 80):
            assert queue.put(make_record(i))
            await anyio.lowlevel.checkpoint()
        with anyio.fail_after(DEADLINE):
            await queue.flush()
        stats = queue.stats.sinks[0]
    assert sink.lost == lines(0, 20)
    assert (stats.errors, stats.emitted) == (20, 60)
    assert path.read_text(encoding="utf-8").splitlines() == lines(20, 80)
    assert capsys.readouterr().err.count("--- Logging error ---") == 1


class StallsFirstWrite(loopsink.FileHandler):
    """The first write waits for ``release`` before writing, as on a stalled disk."""

    def __init__(self, path: pathlib.Path) -> None:
        super().__init__(path, encoding="utf-8")
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.writes = 0

    def _write_blocking(self, text: str) -> None:
        if not self.stalled.is_set():
            self.stalled.set()
            self.release.wait(DEADLINE)
        super()._write_blocking(text)
        self.writes += 1


async def test_records_are_held_while_a_write_stalls_and_written_once_in_order(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "a.log"
    sink = StallsFirstWrite(path)
    padding = " " + "x" * 100  # enough text to pass PUSH_CHARS while the write stalls
    count = 3_000
    assert count * len(padding) > PUSH_CHARS
    async with LogQueue(sink) as queue:
        assert queue.put(make_record(0, padding))
        await wait_thread_event(sink.stalled)
        for i in range(1, count):
            assert queue.put(make_record(i, padding))
            if i % 50 == 0:
                await anyio.lowlevel.checkpoint()
        with anyio.fail_after(DEADLINE):
            await anyio.wait_all_tasks_blocked()
        assert path.read_text(encoding="utf-8") == ""  # nothing overtook the stalled write
        assert sink.writes == 0
        sink.release.set()
        with anyio.fail_after(DEADLINE):
            await queue.flush()
        assert path.read_text(encoding="utf-8").splitlines() == lines(0, count, padding)
        stats = queue.stats
    assert stats.dropped_total == 0
    assert (stats.sinks[0].emitted, stats.sinks[0].errors) == (count, 0)
    assert path.read_text(encoding="utf-8").splitlines() == lines(0, count, padding)


# -- the drop summary -----------------------------------------------------------------------


async def test_the_drop_summary_arrives_while_records_keep_flowing() -> None:
    sink = CapturingSink()

    def summaries() -> list[logging.LogRecord]:
        return [r for r in sink.records if r.name == "loopsink"]

    async with LogQueue(sink, capacity=10, overflow="drop_newest") as queue:
        accepted = [queue.put(make_record(i)) for i in range(25)]  # no yield: 15 dropped
        assert accepted == [True] * 10 + [False] * 15
        with anyio.fail_after(DEADLINE):  # the burst has left the intake
            await sink.wait_for(lambda records: len(records) >= 10)
        i = 25
        with anyio.fail_after(DEADLINE):
            while not summaries():  # one record a pass of the loop: the stream never pauses
                assert queue.put(make_record(i)), "a record was dropped after the burst"
                i += 1
                await anyio.lowlevel.checkpoint()
        await queue.flush()
        stats = queue.stats
    assert len(summaries()) == 1
    summary = summaries()[0]
    assert summary.levelno == logging.WARNING
    assert summary.getMessage().startswith("15 records dropped: queue full (capacity 10")
    assert stats.dropped == {DropReason.FULL: 15}
    kept = [r.args[0] for r in sink.records if r.name == "t"]  # type: ignore[index]
    assert kept == [*range(10), *range(25, i)]
