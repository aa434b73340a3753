"""The lent-GIL writer thread and the write-behind of file and stream sinks."""

from __future__ import annotations

import logging
import pathlib
import threading
import time

import anyio
import pytest

import loopsink
from loopsink import LogQueue
from loopsink._writer import LentWriter
from loopsink.testing import CapturingSink

DEADLINE = 5.0


def make_record(i: int) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, "record %d", (i,), None)


async def wait_thread_event(event: threading.Event) -> None:
    """Wait for a ``threading.Event`` set by a writer thread, with a deadline."""
    assert await anyio.to_thread.run_sync(event.wait, DEADLINE), "the writer never got there"


# -- LentWriter ---------------------------------------------------------------------------


async def test_a_quick_job_runs_on_its_own_thread_and_returns_its_value() -> None:
    writer = LentWriter("test-writer")
    idents: list[int] = []

    def job(value: int) -> int:
        idents.append(threading.get_ident())
        return value * 2

    assert await writer.run(job, 21) == 42
    assert await writer.run(job, 1) == 2
    assert len(set(idents)) == 1  # one thread for every job
    assert idents[0] != threading.get_ident()  # and not the loop's
    writer.stop()


async def test_a_failing_job_raises_its_own_exception() -> None:
    writer = LentWriter("test-writer")

    def job() -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        await writer.run(job)
    assert await writer.run(lambda: "still works") == "still works"
    writer.stop()


async def test_a_job_that_outlives_its_lend_is_collected_later() -> None:
    writer = LentWriter("test-writer")
    release = threading.Event()
    started = threading.Event()

    def slow() -> str:
        started.set()
        release.wait(DEADLINE)
        return "done"

    assert writer.start(slow) is False  # the loop stopped waiting after the lend
    await wait_thread_event(started)
    assert writer.busy
    assert writer.collect() is False
    with pytest.raises(RuntimeError, match="still running a job"):
        writer.start(lambda: None)
    release.set()
    with anyio.fail_after(DEADLINE):
        assert await writer.finish() == (True, "done")
    assert not writer.busy
    writer.stop()


async def test_a_stopped_writer_starts_a_new_thread_for_the_next_job() -> None:
    writer = LentWriter("test-writer")
    first = await writer.run(threading.get_ident)
    writer.stop()
    second = await writer.run(threading.get_ident)
    assert first != second
    writer.stop()


# -- write-behind under a queue -----------------------------------------------------------


class SignallingFile(loopsink.FileHandler):
    """Sets ``written`` once the writer thread has written the line ``record <last>``."""

    def __init__(self, path: pathlib.Path, last: int) -> None:
        super().__init__(path)
        self.last = f"record {last}\n"
        self.written = threading.Event()

    def _write_blocking(self, text: str) -> None:
        super()._write_blocking(text)
        if self.last in text:
            self.written.set()


async def test_held_text_is_written_without_a_flush(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "a.log"
    sink = SignallingFile(path, last=0)
    async with LogQueue(sink) as queue:
        queue.put(make_record(0))
        await wait_thread_event(sink.written)  # the linger watch wrote it: nobody flushed
        assert path.read_text() == "record 0\n"


async def test_emit_batch_without_a_queue_writes_at_once(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "a.log"
    sink = loopsink.FileHandler(path)
    await sink.emit_batch([make_record(i) for i in range(3)])
    assert path.read_text() == "record 0\nrecord 1\nrecord 2\n"
    await sink.close()


class FailingOnce(loopsink.FileHandler):
    """The first write fails, as on a full disk; it remembers how many lines it lost."""

    def __init__(self, path: pathlib.Path) -> None:
        super().__init__(path)
        self.lost: list[str] = []

    def _write_blocking(self, text: str) -> None:
        if not self.lost:
            self.lost = text.splitlines()
            raise OSError(28, "No space left on device")
        super()._write_blocking(text)


async def test_a_write_that_fails_after_its_batch_is_taken_out_of_emitted(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a.log"
    sink = FailingOnce(path)
    async with LogQueue(sink) as queue:
        for i in range(50):
            queue.put(make_record(i))
        await queue.flush()  # writes what is held: this write fails
        for i in range(50, 80):
            queue.put(make_record(i))
        await queue.flush()
        stats = queue.stats.sinks[0]
    lost = len(sink.lost)
    assert lost > 0
    assert stats.errors == lost
    assert stats.emitted == 80 - lost
    assert "No space left on device" in (stats.last_error or "")
    on_disk = path.read_text().splitlines()
    assert on_disk == [f"record {i}" for i in range(lost, 80)]  # everything after the loss
    assert capsys.readouterr().err.count("--- Logging error ---") == 1


class StalledFile(loopsink.FileHandler):
    """The first write waits for ``release``, as on a stalled disk."""

    def __init__(self, path: pathlib.Path) -> None:
        super().__init__(path)
        self.stalled = threading.Event()
        self.release = threading.Event()

    def _write_blocking(self, text: str) -> None:
        if not self.stalled.is_set():
            self.stalled.set()
            self.release.wait(DEADLINE)
        super()._write_blocking(text)


async def test_records_keep_coming_while_a_write_is_stalled(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "a.log"
    sink = StalledFile(path)
    async with LogQueue(sink) as queue:
        queue.put(make_record(0))
        await wait_thread_event(sink.stalled)  # the first write hangs in the thread
        for i in range(1, 2_000):  # meanwhile the loop runs on, and the text is held
            queue.put(make_record(i))
            if i % 100 == 0:
                await anyio.lowlevel.checkpoint()
        assert queue.stats.dropped_total == 0
        sink.release.set()
        with anyio.fail_after(DEADLINE):
            await queue.flush()
    assert path.read_text().splitlines() == [f"record {i}" for i in range(2_000)]


async def test_a_stalled_write_is_looked_at_again_a_linger_later_not_at_once(
    tmp_path: pathlib.Path,
) -> None:
    """While a write is stalled the held text's deadline passes; the linger watch must then
    wait a linger, not spin on the loop asking a busy writer again and again."""
    sink = StalledFile(tmp_path / "a.log")
    output = sink._output
    output.hold("record 0\n", 1, make_record(0))
    await output.push()
    await wait_thread_event(sink.stalled)
    output.hold("record 1\n", 1, make_record(1))
    output._since -= 1.0  # held for a second: long overdue
    now = time.monotonic()
    deadline = output.deadline()
    assert deadline is not None
    assert deadline > now
    sink.release.set()
    with anyio.fail_after(DEADLINE):
        await sink.close()
    assert (tmp_path / "a.log").read_text() == "record 0\nrecord 1\n"


async def test_a_stream_sink_writes_behind_and_flushes(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.log"
    with path.open("w", encoding="utf-8") as stream:
        sink = loopsink.StreamHandler(stream)
        async with LogQueue(sink) as queue:
            for i in range(1_000):
                queue.put(make_record(i))
            await queue.flush()
            assert path.read_text().splitlines() == [f"record {i}" for i in range(1_000)]


# -- the drop summary -----------------------------------------------------------------------


async def test_the_drop_summary_comes_while_records_keep_flowing() -> None:
    sink = CapturingSink()
    async with LogQueue(sink, capacity=10, overflow="drop_newest") as queue:
        accepted = [queue.put(make_record(i)) for i in range(25)]  # no yield: 15 dropped
        assert accepted.count(False) == 15

        def summaries() -> list[logging.LogRecord]:
            return [r for r in sink.records if r.name == "loopsink"]

        i = 25
        with anyio.fail_after(DEADLINE):
            while not summaries():  # a steady stream, one record at a time, no more drops
                await anyio.wait_all_tasks_blocked()  # the worker has taken the last one
                assert queue.put(make_record(i))
                i += 1
        await queue.flush()
    assert len(summaries()) == 1
    assert summaries()[0].getMessage().startswith("15 records dropped: queue full")
    kept = [r.args[0] for r in sink.records if r.name == "t"]  # type: ignore[index]
    assert kept == list(range(10)) + list(range(25, i))


# -- Wakeup, the queue worker's wait for records ------------------------------------------


async def test_wakeup_wakes_its_waiter_and_survives_a_cancelled_wait() -> None:
    from loopsink._compat import Wakeup

    wakeup = Wakeup()
    wakeup.fire()  # nobody waits: lost, by design
    woke = anyio.Event()

    async def waiter() -> None:
        await wakeup.wait()
        woke.set()

    with anyio.fail_after(DEADLINE):
        with anyio.CancelScope() as scope:  # a wait cancelled from outside
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter)
                await anyio.wait_all_tasks_blocked()
                scope.cancel()
        assert not woke.is_set()
        async with anyio.create_task_group() as tg:  # and the next wait still works
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            assert not woke.is_set()
            wakeup.fire()
            wakeup.fire()  # a second fire before the waiter runs is harmless
        assert woke.is_set()
