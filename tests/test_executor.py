"""The sink's one I/O thread: order, one thread per sink, and what a stalled job costs the loop.

The loop's rule (loopsink._executor): it waits at most one short lend per hand-over, never
while polling. The stall tests measure the time the loop's own thread spends blocked, with
a profiler on that thread that adds up every call to a lock's ``acquire`` or to
``time.sleep`` (the ways a loop-side lend or nap blocks) made under loopsink's code: no
part of loopsink is patched to count. (The event loop's own idle wait is not loopsink's:
under pytest, anyio runs trio as a guest whose host waits in ``queue.Queue.get``.)
"""

from __future__ import annotations

import gc
import io
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import anyio
import anyio.lowlevel
import pytest

import loopsink
from loopsink._executor import Executor, executor_of

#: Where loopsink's code lives: blocking calls made under its frames are counted.
PACKAGE = os.path.dirname(loopsink.__file__)

#: How long any wait of these tests may take before it counts as a hang.
DEADLINE = 5.0
#: How long the stalled job stalls.
STALL = 0.3
#: What the loop's thread may spend blocked while a STALL-long job is awaited: a few lends
#: of half a millisecond, with room for a loaded machine. Polling that lends each time (what
#: the writer did before) spends about a third of the stall blocked.
BLOCKED_BOUND = 0.03


class Blocked:
    """Wall time this thread spent inside lock acquires and ``time.sleep``, by caller."""

    def __init__(self) -> None:
        self.by_caller: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    @property
    def total(self) -> float:
        return sum(self.by_caller.values())

    def __str__(self) -> str:
        parts = (f"{name} {seconds * 1e3:.1f} ms" for name, seconds in self.by_caller.items())
        return f"blocked {self.total * 1e3:.1f} ms ({', '.join(parts)})"


@contextmanager
def blocked_time() -> Iterator[Blocked]:
    """Measure the wall time this thread spends inside lock acquires and ``time.sleep``."""
    blocked = Blocked()
    started: list[tuple[float, str]] = []
    names = ("acquire", "sleep")

    def under_loopsink(frame: FrameType | None) -> bool:
        while frame is not None:
            if frame.f_code.co_filename.startswith(PACKAGE):
                return True
            frame = frame.f_back
        return False

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_call" and getattr(arg, "__name__", "") in names:
            caller = frame.f_code.co_name if under_loopsink(frame) else ""
            started.append((time.perf_counter(), caller))
        elif event in ("c_return", "c_exception") and started:
            if getattr(arg, "__name__", "") in names:
                began, caller = started.pop()
                if not caller:
                    return
                spent = time.perf_counter() - began
                blocked.by_caller[caller] = blocked.by_caller.get(caller, 0.0) + spent
                blocked.calls[caller] = blocked.calls.get(caller, 0) + 1

    sys.setprofile(profile)
    try:
        yield blocked
    finally:
        sys.setprofile(None)


def is_idle(executor: Executor) -> bool:
    """``executor.idle``, read afresh: mypy would keep an earlier ``assert``'s narrowing."""
    return executor.idle


async def never_idle(until: float, stop: threading.Event | None = None) -> None:
    """Keep the loop busy until ``time.monotonic()`` reaches ``until`` (or ``stop`` is set):
    handlers that run a quarter of a millisecond each and never let the loop idle, as a
    service under load does. The loop then polls its selector with a zero timeout at every
    pass, releasing and retaking the GIL, which defeats CPython's switch interval."""
    while time.monotonic() < until and not (stop is not None and stop.is_set()):
        ends = time.thread_time() + 0.00025
        while time.thread_time() < ends:
            pass
        await anyio.lowlevel.checkpoint()


async def wait_thread_event(event: threading.Event) -> None:
    assert await anyio.to_thread.run_sync(event.wait, DEADLINE), "the thread never got there"


# -- the executor itself --------------------------------------------------------------------


async def test_jobs_from_several_tasks_run_in_order_on_one_thread() -> None:
    executor = Executor("test-executor")
    ran: list[tuple[int, int]] = []

    def job(i: int) -> int:
        ran.append((i, threading.get_ident()))
        return i * 10

    results: dict[int, int] = {}
    handed: list[int] = []

    async def task(i: int) -> None:
        handed.append(i)  # run() hands the job over before it first awaits
        results[i] = await executor.run(job, i)

    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(task, i)
    assert [i for i, _ in ran] == handed
    assert sorted(handed) == list(range(50))
    assert len({ident for _, ident in ran}) == 1
    assert threading.get_ident() not in {ident for _, ident in ran}
    assert results == {i: i * 10 for i in range(50)}
    executor.stop()


async def test_run_raises_the_jobs_own_exception() -> None:
    executor = Executor("test-executor")
    raised = OSError(28, "No space left on device")

    def job() -> None:
        raise raised

    with pytest.raises(OSError) as caught:
        await executor.run(job)
    assert caught.value is raised
    assert await executor.run(lambda: "goes on") == "goes on"
    executor.stop()


async def test_submit_behind_a_busy_job_queues_without_waiting() -> None:
    executor = Executor("test-executor")
    started, release = threading.Event(), threading.Event()

    def stalled() -> str:
        started.set()
        release.wait(DEADLINE)
        return "first"

    first = executor.submit(stalled)
    await wait_thread_event(started)
    with blocked_time() as blocked:
        second = executor.submit(lambda: "second")
    assert "_lend" not in blocked.by_caller  # queued behind a busy job: nothing lent
    assert not first.done
    assert not second.done
    assert not is_idle(executor)
    release.set()
    with anyio.fail_after(DEADLINE):
        assert await second.wait() == "second"
    assert first.done
    assert first.result() == "first"
    assert is_idle(executor)
    executor.stop()


async def test_a_cancelled_run_returns_once_its_call_has_ended() -> None:
    executor = Executor("test-executor")
    started, release = threading.Event(), threading.Event()
    ended: list[str] = []

    def stalled() -> None:
        started.set()
        release.wait(DEADLINE)
        ended.append("ended")

    async def caller(scope: anyio.CancelScope) -> None:
        with scope:
            await executor.run(stalled)

    scope = anyio.CancelScope()
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            tg.start_soon(caller, scope)
            await wait_thread_event(started)
            scope.cancel()
            threading.Timer(0.05, release.set).start()
    assert ended == ["ended"]  # the caller did not go on while its call still ran
    executor.stop()


async def test_a_cancelled_wait_leaves_the_job_running() -> None:
    executor = Executor("test-executor")
    release = threading.Event()
    job = executor.submit(release.wait, DEADLINE)
    with anyio.move_on_after(0.02):
        await job.wait()
    assert not job.done
    release.set()
    with anyio.fail_after(DEADLINE):
        assert await job.wait() is True
    executor.stop()


async def test_every_task_that_awaits_a_job_is_woken() -> None:
    executor = Executor("test-executor")
    release = threading.Event()
    job = executor.submit(release.wait, DEADLINE)
    woken: list[str] = []

    async def waiter(name: str) -> None:
        if name == "drain":
            await executor.drain()
        else:
            await job.wait()
        woken.append(name)

    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            for name in ("first", "second", "drain"):
                tg.start_soon(waiter, name)
            await anyio.wait_all_tasks_blocked()
            release.set()
    assert sorted(woken) == ["drain", "first", "second"]
    executor.stop()


async def test_awaiting_a_stalled_job_keeps_the_loop_free() -> None:
    executor = Executor("test-executor")
    release = threading.Event()
    await executor.run(lambda: None)  # the thread is up
    ticks = 0

    async def probe() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.001)
            ticks += 1

    threading.Timer(STALL, release.set).start()  # starting a thread waits: not measured
    with blocked_time() as blocked:
        async with anyio.create_task_group() as tg:
            tg.start_soon(probe)
            with anyio.fail_after(DEADLINE):
                await executor.run(release.wait, DEADLINE)
            tg.cancel_scope.cancel()
    assert blocked.total < BLOCKED_BOUND, f"the loop's thread was {blocked}"
    assert ticks > 10  # the probe ran while the job stalled
    executor.stop()


async def test_executor_of_gives_each_owner_one_executor_for_its_life() -> None:
    class Owner:
        pass

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

    a, b, c = Owner(), Owner(), Unhashable()
    assert executor_of(a) is executor_of(a)
    assert executor_of(a) is not executor_of(b)
    assert executor_of(c) is executor_of(c)
    assert executor_of(a, lend=0).lend > 0  # made already: lend applies to a new one
    assert executor_of(Owner(), lend=0).lend == 0
    thread_ids = {await executor_of(a).run(threading.get_ident) for _ in range(5)}
    assert len(thread_ids) == 1
    executor = executor_of(a)
    del a, executor
    gc.collect()  # the executor goes with its owner


def test_a_negative_lend_is_refused() -> None:
    with pytest.raises(ValueError, match="lend must be 0 or more seconds, got -1"):
        Executor("x", lend=-1)


# -- sinks ----------------------------------------------------------------------------------


async def test_flush_over_a_full_pipe_whose_reader_stalls_blocks_the_loop_briefly() -> None:
    """A real pipe filled beyond its buffer; its reader starts STALL seconds late."""
    read_fd, write_fd = os.pipe()
    received = bytearray()
    reader_go = threading.Event()

    def read_all() -> None:
        reader_go.wait(DEADLINE)
        while chunk := os.read(read_fd, 65536):
            received.extend(chunk)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    stream = open(write_fd, "w", encoding="utf-8")
    sink = loopsink.StreamHandler(stream)
    logger = logging.getLogger("executor.pipe")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    padding = "x" * 200
    count = 2_000  # ~430 KB: several times a pipe's buffer
    try:
        async with loopsink.install(sink, logger=logger) as queue:
            for i in range(count):
                logger.info("record %d %s", i, padding)
            threading.Timer(STALL, reader_go.set).start()
            with blocked_time() as blocked:
                with anyio.fail_after(DEADLINE):
                    await queue.flush()
            assert queue.stats.dropped_total == 0
        assert blocked.total < BLOCKED_BOUND, f"during the stall, the loop's thread was {blocked}"
    finally:
        stream.close()
        reader_go.set()
        reader.join(DEADLINE)
        os.close(read_fd)
    lines = received.decode().splitlines()
    assert lines == [f"record {i} {padding}" for i in range(count)]


class _TouchRecorder:
    """Wraps a file object and records the thread of every call made on it."""

    def __init__(self, inner: Any, threads: set[int]) -> None:
        self._inner = inner
        self._threads = threads

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value):
            return value
        threads = self._threads

        def call(*args: Any, **kwargs: Any) -> Any:
            threads.add(threading.get_ident())
            return value(*args, **kwargs)

        return call


@pytest.mark.parametrize("compress", [None, "gzip"])
async def test_a_rotating_sinks_file_is_touched_by_one_thread(
    tmp_path: Path, compress: Literal["gzip"] | None
) -> None:
    threads: set[int] = set()
    renames: set[int] = set()

    class Recorded(loopsink.RotatingFileHandler):
        def _open(self) -> Any:
            return _TouchRecorder(super()._open(), threads)

    sink = Recorded(
        tmp_path / "app.log", maxBytes=2_000, backupCount=200, delay=True, compress=compress
    )
    if compress is None:

        def rotator(source: str, dest: str) -> None:
            renames.add(threading.get_ident())
            os.rename(source, dest)

        sink.rotator = rotator
    logger = logging.getLogger("executor.rotating")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    count = 3_000
    async with loopsink.install(sink, logger=logger):
        for i in range(count):
            logger.info("record %04d", i)
            if i % 100 == 99:
                await anyio.sleep(0)
    assert len(threads) == 1, f"the file was touched by {len(threads)} threads"
    assert threading.get_ident() not in threads
    if compress is None:
        assert renames == threads  # renames ran on the same thread as the writes
    # Everything in order: the backups, oldest first, then the current file.
    import gzip

    def read(path: Path) -> str:
        if path.suffix == ".gz":
            return gzip.decompress(path.read_bytes()).decode()
        return path.read_text()

    def backup_number(path: Path) -> int:
        return int(path.name.split(".")[2])

    backups = sorted(
        (p for p in tmp_path.iterdir() if p.name != "app.log"), key=backup_number, reverse=True
    )
    assert len(backups) > 10
    text = "".join(read(p) for p in backups) + read(tmp_path / "app.log")
    assert text.splitlines() == [f"record {i:04d}" for i in range(count)]


async def test_an_executor_that_looks_on_a_timer_is_never_woken_by_its_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_wakeups() -> None:
        raise AssertionError("a looking executor asked for the loop's thread-safe scheduler")

    monkeypatch.setattr("loopsink._executor.threadsafe_scheduler", no_wakeups)
    executor = Executor("test-looking", lend=0.0, look_every=0.001)
    release = threading.Event()
    threading.Timer(0.05, release.set).start()
    with blocked_time() as blocked:
        with anyio.fail_after(DEADLINE):
            assert await executor.run(release.wait, DEADLINE) is True
    assert "_lend" not in blocked.by_caller  # lend=0: the hand-over waits for nothing
    executor.stop()


@pytest.mark.parametrize("look_every", [0, -0.001])
def test_a_look_period_that_is_not_positive_is_refused(look_every: float) -> None:
    with pytest.raises(ValueError, match="look_every must be None or more than 0 seconds"):
        Executor("x", look_every=look_every)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # 3.12+: fork with threads
def test_a_forked_child_runs_jobs_on_a_thread_of_its_own() -> None:
    executor = Executor("test-fork")
    release = threading.Event()
    stalled = executor.submit(release.wait, DEADLINE)  # the parent's thread is busy at the fork
    pid = os.fork()
    if pid == 0:  # the child: the parent's thread did not come along
        code = 1
        try:
            idle_at_fork = executor.idle  # the parent's job never ends here: not waited for

            async def in_the_child() -> int:
                with anyio.fail_after(DEADLINE):
                    await executor.drain()
                    return await executor.run(threading.get_ident)

            ident = anyio.run(in_the_child)
            ok = idle_at_fork and ident != threading.get_ident() and executor.idle
            code = 0 if ok else 2
        finally:
            os._exit(code)
    release.set()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert anyio.run(stalled.wait) is True  # the parent's job ran on in the parent
    executor.stop()


async def test_a_loop_that_never_idles_does_not_starve_a_looking_executors_thread() -> None:
    """The HTTP sink's executor looks for a request's outcome on a timer. Its thread lets the
    GIL go in every socket call and needs it back after: on a loop that never idles, the loop
    releases and retakes the GIL at every pass, which defeats CPython's switch interval, and
    the thread got it back only when the load stopped (a 20-step job took 90 s). A short lend
    at each look keeps it going."""
    from loopsink._tuning import HTTP_LEND, HTTP_LOOK_EVERY, HTTP_LOOK_LEND

    executor = Executor(
        "test", lend=HTTP_LEND, look_every=HTTP_LOOK_EVERY, look_lend=HTTP_LOOK_LEND
    )
    ends = time.monotonic() + 0.5

    def request_like() -> int:
        steps = 0
        while time.monotonic() < ends:
            time.sleep(0.0002)  # a socket call: the GIL is let go
            sum(range(2000))  # the answer parsed: the GIL is needed back
            steps += 1
        return steps

    async with anyio.create_task_group() as tg:
        tg.start_soon(never_idle, ends + 0.05)
        with anyio.fail_after(30):
            steps = await executor.run(request_like)
    executor.stop()
    # about 0.5 s / (0.2 ms + one look): hundreds; starved, the job made one or two steps
    assert steps >= 50, steps


async def test_a_looking_executor_lends_nothing_while_the_loop_idles() -> None:
    """The lend at each look is for a loop that never idles. A loop that waited for events
    since the last look let go of the GIL meanwhile, so a lend then only held it up: before,
    every look did, a tenth of a millisecond or more once per millisecond while a request
    was out (25 to 30 lends here).

    The one exception is the OS's, not the loop's: a look period in which the OS kept the
    loop's thread off its core from before its wait until after its timer was due shows no
    wait of the thread (the loop then polls without blocking), so that look lends, as for a
    busy loop (a loaded CI machine did so once). Each such lend needs the thread to have
    been preempted: there are never more lends than preemptions, none on a quiet machine."""
    from loopsink._tuning import HTTP_LEND, HTTP_LOOK_EVERY, HTTP_LOOK_LEND

    executor = Executor(
        "test", lend=HTTP_LEND, look_every=HTTP_LOOK_EVERY, look_lend=HTTP_LOOK_LEND
    )
    release = threading.Event()
    threading.Timer(0.05, release.set).start()
    preempted_before = _preemptions()
    with blocked_time() as blocked:
        with anyio.fail_after(DEADLINE):
            assert await executor.run(release.wait, DEADLINE) is True
    preempted = _preemptions() - preempted_before
    executor.stop()
    assert blocked.calls.get("_lend", 0) <= preempted, (preempted, blocked.calls)


def _preemptions() -> int:
    """How many times the OS has taken this thread off its core so far (0 where it does not
    tell: not Linux)."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
    except (ImportError, AttributeError):  # pragma: no cover - not Linux
        return 0


#: How long the load of the tests below lasts at most: far longer than any of their waits.
LOAD = 4.0
#: How long a job woken from its thread may take under that load: generous for what it does
#: (tens of milliseconds on an idle loop), far below LOAD. A starved thread got the GIL back
#: only now and then, and finished when the load stopped.
UNDER_LOAD_BOUND = 0.5

#: A slow reader of a pipe in another process (no GIL of ours): 16 KB at a time, a pause
#: between reads, everything copied to the file named by argv[1].
SLOW_READER = """
import sys, time
with open(sys.argv[1], "wb") as out:
    while chunk := sys.stdin.buffer.read1(16384):
        out.write(chunk)
        time.sleep(0.0005)
"""


async def test_a_loop_that_never_idles_does_not_starve_a_woken_jobs_thread() -> None:
    """A job whose task is woken by its thread (every sink's executor but the HTTP one): a
    series of blocking calls, each followed by a little Python, so the thread needs the GIL
    back after each. With the loop never idle, it got it back only when the load stopped."""
    executor = Executor("test-woken")

    def steps() -> int:
        for _ in range(20):
            time.sleep(0.001)  # a write to a slow device: the GIL is let go
            sum(range(2000))  # back in Python: the GIL is needed
        return 20

    stop = threading.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(never_idle, time.monotonic() + LOAD, stop)
        await anyio.lowlevel.checkpoint()  # the load runs
        began = time.monotonic()
        with anyio.fail_after(LOAD + DEADLINE):
            assert await executor.run(steps) == 20
        took = time.monotonic() - began
        stop.set()
    executor.stop()
    assert took < UNDER_LOAD_BOUND, f"the job took {took:.2f} s under a loop that never idles"


async def test_flush_under_a_loop_that_never_idles_ends_while_the_load_lasts(
    tmp_path: Path,
) -> None:
    """A stream sink writing to a pipe that another process reads slowly (a log shipper on
    stdout): each write outlives its lend, and its thread, back from the kernel, needs the
    GIL. ``await queue.flush()`` under a loop that never idles waited as long as the load."""
    out = tmp_path / "shipped.log"
    reader = subprocess.Popen([sys.executable, "-c", SLOW_READER, str(out)], stdin=subprocess.PIPE)
    assert reader.stdin is not None
    stream = io.TextIOWrapper(reader.stdin, encoding="utf-8")
    sink = loopsink.StreamHandler(stream)
    logger = logging.getLogger("executor.never_idle")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    padding = "x" * 200
    count = 5_000  # about 1 MB: many times the pipe's buffer
    stop = threading.Event()
    try:
        async with loopsink.install(sink, logger=logger) as queue:
            for i in range(count):
                logger.info("record %d %s", i, padding)
            async with anyio.create_task_group() as tg:
                tg.start_soon(never_idle, time.monotonic() + LOAD, stop)
                await anyio.lowlevel.checkpoint()  # the load runs
                began = time.monotonic()
                with anyio.fail_after(LOAD + DEADLINE):
                    await queue.flush()
                took = time.monotonic() - began
                stop.set()
            assert queue.stats.dropped_total == 0
    finally:
        stop.set()
        stream.close()
        reader.wait(DEADLINE)
    assert took < UNDER_LOAD_BOUND, f"flush() took {took:.2f} s under a loop that never idles"
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines == [f"record {i} {padding}" for i in range(count)]


async def test_a_stalled_job_under_a_loop_that_never_idles_costs_the_loop_a_few_lends() -> None:
    """The rule behind the two tests above, and its bound. While a job that outlived its
    lend is out and the loop never idles, the loop's thread lends the GIL again, briefly,
    every WAKE_LEND_EVERY (before, it lent nothing after the hand-over: one lend in all).
    A job that stalls in a system call does not run when lent to, so the lends thin out to
    one per WAKE_LEND_EVERY_MAX: the stall costs the loop no more than on an idle loop
    (test_awaiting_a_stalled_job_keeps_the_loop_free, where nothing more is lent)."""
    import math

    from loopsink._tuning import WAKE_LEND_EVERY, WAKE_LEND_EVERY_MAX

    executor = Executor("test-woken")
    await executor.run(lambda: None)  # the thread is up
    release = threading.Event()
    stop = threading.Event()
    threading.Timer(STALL, release.set).start()  # starting a thread waits: not measured
    async with anyio.create_task_group() as tg:
        tg.start_soon(never_idle, time.monotonic() + LOAD, stop)
        await anyio.lowlevel.checkpoint()  # the load runs
        with blocked_time() as blocked:
            began = time.monotonic()
            with anyio.fail_after(LOAD + DEADLINE):
                await executor.run(release.wait, DEADLINE)
            took = time.monotonic() - began
        stop.set()
    executor.stop()
    lends = blocked.calls.get("_lend", 0)
    # the hand-over's lend, the lends while the gaps double, then one per longest gap
    doubling = math.ceil(math.log2(WAKE_LEND_EVERY_MAX / WAKE_LEND_EVERY))
    most = 1 + doubling + math.ceil(took / WAKE_LEND_EVERY_MAX) + 1
    assert 3 <= lends <= most, f"{lends} lends in {took:.2f} s: {blocked}"
    assert blocked.total < BLOCKED_BOUND, f"during the stall, the loop's thread was {blocked}"
