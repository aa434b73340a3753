"""Records from other threads wake the queue's worker once per burst of time (#22 item 2).

A sync program's thread that logs a couple of records per request used to wake the queue's
loop for every request. Now the first record after the workers went idle wakes them a
moment (``_GATHER``) later and the records logged meanwhile share that pass; ``flush()``,
``close()`` and an intake half full still wake them at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import anyio
import anyio.to_thread
import pytest

import loopsink
from loopsink import _lane, _queue
from loopsink._executor import executor_of
from loopsink.testing import CapturingSink

DEADLINE = 10.0


class BatchSink(loopsink.AsyncHandler):
    """Keeps the size of every batch and signals once ``expected`` records arrived."""

    def __init__(self, expected: int = 0) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.expected = expected
        self.arrived = threading.Event()

    async def emit(self, record: logging.LogRecord) -> None:
        await self.emit_batch([record])

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        self.batches.append(len(records))
        if self.expected and sum(self.batches) >= self.expected:
            self.arrived.set()


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("test_sync_gather")
    log.propagate = False
    log.setLevel(logging.INFO)
    yield log
    log.handlers.clear()


def wakes_armed_by_other_threads(queue: loopsink.LogQueue) -> list[float]:
    """The delays of the wake-ups that records from other threads arm on ``queue`` from now
    on (the list grows as they are armed)."""
    arm = queue._schedule_later
    assert arm is not None
    wakes: list[float] = []

    def counting(delay: float, callback: Callable[[], object]) -> object:
        wakes.append(delay)
        return arm(delay, callback)

    queue._schedule_later = counting
    return wakes


def test_the_records_of_many_requests_share_one_pass(
    backend: str, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once: every record, logged between waits, was a batch of its own (a wake-up each)."""
    monkeypatch.setattr(_queue, "_GATHER", 60.0)  # nothing but flush() may deliver them
    sink = BatchSink()
    runner = loopsink.start_in_thread(sink, logger=logger, backend=backend, timeout=DEADLINE)
    try:
        pause = threading.Event()
        for i in range(10):
            logger.info("request %d start", i)
            logger.info("request %d done", i)
            pause.wait(0.002)  # the network: the queue's thread had time to run
        started = time.monotonic()
        runner.flush(DEADLINE)  # at once, not after the gathering time
        assert time.monotonic() - started < DEADLINE
        assert sink.batches == [20]
    finally:
        runner.close(DEADLINE)


def test_close_delivers_what_is_gathering_at_once(
    backend: str, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_queue, "_GATHER", 60.0)
    sink = BatchSink()
    runner = loopsink.start_in_thread(sink, logger=logger, backend=backend, timeout=DEADLINE)
    for i in range(5):
        logger.info("record %d", i)
    started = time.monotonic()
    runner.close(DEADLINE)
    assert time.monotonic() - started < DEADLINE
    assert sum(sink.batches) == 5


def test_a_burst_wakes_the_workers_without_waiting(
    backend: str, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An intake half full wakes them at once: "block" must not wait out the gathering."""
    monkeypatch.setattr(_queue, "_GATHER", 60.0)
    capacity = 100
    sink = BatchSink(expected=capacity // 2 + 1)
    runner = loopsink.start_in_thread(
        sink, logger=logger, backend=backend, timeout=DEADLINE, capacity=capacity
    )
    try:
        for i in range(capacity * 3):  # "block" (the default here) waits for room
            logger.info("record %d", i)
        assert sink.arrived.wait(DEADLINE), sink.batches
    finally:
        runner.close(DEADLINE)
    assert sum(sink.batches) == capacity * 3


def test_a_lone_record_arrives_without_a_flush(backend: str, logger: logging.Logger) -> None:
    """With the shipped gathering time: a record is written a moment later, by itself."""
    sink = BatchSink(expected=1)
    runner = loopsink.start_in_thread(sink, logger=logger, backend=backend, timeout=DEADLINE)
    try:
        logger.info("alone")
        assert sink.arrived.wait(DEADLINE)
    finally:
        runner.close(DEADLINE)


def test_records_that_keep_coming_from_another_thread_never_wake_the_loop_again(
    backend: str, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the lane has delivered another thread's records it keeps looking, once per
    gathering, for as long as each look finds records: the producer never has to wake the
    queue's loop again. Before, a batch too large to count as a trickle (a busy worker's
    gathering) left the lane asleep, and the next record woke the loop once more: two
    wake-ups of the queue's thread per gathering instead of one."""
    monkeypatch.setattr(_queue, "_GATHER", 0.3)
    per_round, rounds = 2 * _lane._TRICKLE, 3  # larger than a trickle
    sink = BatchSink()
    runner = loopsink.start_in_thread(sink, logger=logger, backend=backend, timeout=DEADLINE)
    try:
        wakes = wakes_armed_by_other_threads(runner.queue)
        for round_ in range(rounds):
            for i in range(per_round):
                logger.info("round %d record %d", round_, i)
            deadline = time.monotonic() + DEADLINE
            while sum(sink.batches) < per_round * (round_ + 1):
                assert time.monotonic() < deadline, sink.batches
                threading.Event().wait(0.001)
        assert sink.batches == [per_round] * rounds
        assert wakes == [0.3], "a record logged while the lane kept looking woke the loop"
    finally:
        runner.close(DEADLINE)


async def test_a_record_from_another_thread_does_not_hold_back_the_loops_own(
    logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record from another thread starts a gathering; the records the loop's own thread
    logs meanwhile still wake the queue's worker at once, as they do without it. Before,
    one record from a worker thread (``run_in_threadpool``, ``to_thread``) made them wait
    for the gathering to end."""
    monkeypatch.setattr(_queue, "_GATHER", 60.0)  # far beyond the deadline below
    sink = CapturingSink()
    async with loopsink.install(sink, logger=logger):
        await anyio.to_thread.run_sync(logger.info, "from a thread")
        for i in range(3):
            logger.info("from the loop %d", i)
        await sink.wait_for(lambda records: len(records) == 4, timeout=DEADLINE)
        # and again while the worker keeps looking on the gathering's period
        await anyio.to_thread.run_sync(logger.info, "from a thread again")
        logger.info("from the loop again")
        await sink.wait_for(lambda records: len(records) == 6, timeout=DEADLINE)
    assert sink.messages == [
        "from a thread",
        "from the loop 0",
        "from the loop 1",
        "from the loop 2",
        "from a thread again",
        "from the loop again",
    ]


def test_the_gathering_time_is_short() -> None:
    """A bound on how late a record from another thread may reach its sink."""
    assert 0 < _queue._GATHER <= 0.1


def _text(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


def test_held_output_written_meanwhile_does_not_end_the_gathering(
    backend: str, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """A file sink holds its text for a few milliseconds; the worker writes it with the
    timeout of its wait for the next look. That wake-up must leave the look where it was:
    a record logged after it waits for the look, without waking the queue's loop."""
    monkeypatch.setattr(_queue, "_GATHER", 1.0)
    path = f"{tmp_path}/gather.log"
    runner = loopsink.start_in_thread(
        loopsink.FileHandler(path), logger=logger, backend=backend, timeout=DEADLINE
    )
    try:
        wakes = wakes_armed_by_other_threads(runner.queue)
        logger.info("first")  # wakes the worker a second later; then held, then written
        deadline = time.monotonic() + DEADLINE
        while "first" not in _text(path):
            assert time.monotonic() < deadline, "the held text was never written"
            threading.Event().wait(0.001)
        logger.info("second")  # the worker's next look is still most of a second away
        assert wakes == [1.0], "a record after the held text was written woke the loop"
        runner.flush(DEADLINE)
        assert _text(path).splitlines() == ["first", "second"]
    finally:
        runner.close(DEADLINE)


def test_held_output_is_written_at_the_look_not_with_a_wake_of_its_own(
    backend: str, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """A lane fed by other threads looks once per gathering. The text a file sink holds
    after that look would be due a few milliseconds later, long before the next look: the
    lane writes it at once. Before, it woke the loop for it, and that wake-up took the
    records logged meanwhile, so the queue's loop ran once per linger, not per gathering."""
    waits: list[float | None] = []

    class CountingWakeup(_lane.Wakeup):
        async def wait(self, at_most: float | None = None) -> None:
            waits.append(at_most)
            await super().wait(at_most)

    monkeypatch.setattr(_lane, "Wakeup", CountingWakeup)
    monkeypatch.setattr(_queue, "_GATHER", 0.2)
    path = f"{tmp_path}/gather.log"
    sink = loopsink.FileHandler(path)
    # A write that outlives the loop's lend (a machine that stalls the sink's thread for
    # half a millisecond) makes the lane look again one linger later, as it must: nothing
    # held can be written before that write ends. Not this test's matter, and the cause of
    # its rare failures: here the loop lends until the write is done.
    executor_of(sink).lend = DEADLINE
    runner = loopsink.start_in_thread(sink, logger=logger, backend=backend, timeout=DEADLINE)
    try:
        for i in range(3):
            logger.info("request %d", i)
            deadline = time.monotonic() + DEADLINE
            while f"request {i}" not in _text(path):
                assert time.monotonic() < deadline, "the held text was never written"
                threading.Event().wait(0.001)
        short = [at_most for at_most in waits if at_most is not None and at_most < 0.1]
        assert short == [], "the lane woke for held output between two looks"
    finally:
        runner.close(DEADLINE)
    assert _text(path).splitlines() == ["request 0", "request 1", "request 2"]


class StallingSink(loopsink.AsyncHandler):
    """Writes through the public write-behind contract; its first write stalls until
    ``release`` is set (a disk that stops answering). Counts the queue's write_held calls."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.stalled = threading.Event()
        self.spinning = threading.Event()
        self.held_calls = 0
        self.written: list[str] = []

    async def emit(self, record: logging.LogRecord) -> None:
        await self.emit_batch([record])

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        text, written = await self.format_lines(records, "\n")
        if written:
            await self.write_behind(text, written)

    def write_blocking(self, data: object) -> None:
        if not self.stalled.is_set():
            self.stalled.set()
            self.release.wait(DEADLINE)
        self.written.append(str(data))

    async def write_held(self) -> None:
        self.held_calls += 1
        if self.held_calls >= 1_000:
            self.spinning.set()
        await super().write_held()


def test_a_stalled_write_does_not_make_the_lane_spin(
    backend: str, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a write outlives its lend, the sink still holds its output and says to look
    one linger later. A lane fed by other threads looks once per gathering, so it wrote the
    output ahead of its linger, found it still held, and asked again at once: it spun,
    holding the GIL, until the write ended (thousands of write_held calls a stall)."""
    monkeypatch.setattr(_queue, "_GATHER", 0.2)
    sink = StallingSink()
    runner = loopsink.start_in_thread(sink, logger=logger, backend=backend, timeout=DEADLINE)
    try:
        logger.info("first")
        assert sink.stalled.wait(DEADLINE), "the first write never started"
        logger.info("second")  # held while the first write stalls
        # A lane that looks once per linger asks about a hundred times in half a second.
        assert not sink.spinning.wait(0.5), f"{sink.held_calls} write_held calls in a stall"
        sink.release.set()
        runner.flush(DEADLINE)
        assert "".join(sink.written).splitlines() == ["first", "second"]
    finally:
        sink.release.set()
        runner.close(DEADLINE)
