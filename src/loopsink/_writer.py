"""LentWriter: a thread of a sink's own for its blocking writes, lent the GIL to run them.

Why not ``anyio.to_thread`` per batch: in CPython a worker thread needs the GIL before and
after every blocking call, and a busy event loop starves it. The loop lets go of the GIL in
every ``select(0)`` and takes it straight back; each of those wakes the waiting thread for
nothing and restarts its wait, so a write waited 140 ms in our measurements, and every one
of those wake-ups costs the loop's thread a few microseconds of futex traffic (2.5 µs a
record when the app yields every 10 records). A thread that waits for the GIL is expensive
even when it does nothing.

So this writer's thread never waits for the GIL uninvited. It sleeps on a lock of its own
until the loop hands it a job, and the loop then *lends* it the GIL: it blocks for at most
``wait`` seconds on a second lock that the thread releases when the job is done. Nobody
else wants the GIL meanwhile, so the thread takes it at once, runs the job, gets it back
after its system calls without a fight, and the loop goes on; a page-cache write costs the
loop one round trip of about 70 µs. When the job takes longer (a stalled disk, a full
pipe), the loop stops waiting after ``wait`` and collects the result later, without ever
having been blocked longer. Sinks lend rarely: they hold formatted text for a few
milliseconds and write it in one job.

A sink whose jobs wait on the network rather than the disk lends nothing (``lend=0``): its
thread waits for a server for milliseconds, and an answer that woke the loop would wake it
at an arbitrary moment, which on Linux makes every timer due within the next millisecond
late by up to a millisecond (asyncio and trio wait in ``epoll`` with a timeout in whole
milliseconds, rounded up). So the loop only looks for the outcome, once a millisecond, on a
timer armed while it was awake anyway; the thread, when it has CPU work, lets go of the GIL
now and then (:func:`let_the_loop_in`) so that a loop that wakes never waits long for it.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import anyio

__all__ = ["LentWriter", "let_the_loop_in"]

#: How long the loop's thread lends the GIL for one job before it goes on without it.
LEND_WAIT = 0.0005
#: How often an async wait for a job that outlived its lend tries again.
POLL_INTERVAL = 0.001


def let_the_loop_in() -> None:
    """On a writer's thread between pieces of CPU work: let the loop take the GIL if it
    waits for it (a job of a writer that lends nothing competes for the GIL)."""
    time.sleep(0)


class _State:
    """What the thread and the loop share; the thread holds no reference to the writer,
    so an abandoned writer is collected and its thread told to stop."""

    __slots__ = ("done", "go", "job", "result")

    def __init__(self) -> None:
        self.go = threading.Lock()  # released by the loop: a job is ready
        self.go.acquire()
        self.done = threading.Lock()  # released by the thread: the job is done
        self.done.acquire()
        self.job: tuple[Callable[..., Any], tuple[Any, ...]] | None = None
        self.result: tuple[bool, Any] = (True, None)


def _serve(state: _State) -> None:
    """The thread's body: run one job each time the loop says so, until told to stop."""
    while True:
        state.go.acquire()
        job = state.job
        if job is None:
            return
        func, args = job
        try:
            state.result = (True, func(*args))
        except BaseException as exc:  # handed to the loop, which reports it
            state.result = (False, exc)
        state.done.release()


def _stop(state: _State) -> None:
    state.job = None
    try:
        state.go.release()
    except RuntimeError:  # a job was handed over and not started yet: it ends the thread
        pass


class LentWriter:
    """Runs one blocking job at a time on a daemon thread, lending it the GIL.

    :meth:`start` hands a job over and lends the GIL for up to :data:`LEND_WAIT`; most jobs
    finish within it. One that does not is *busy*: :meth:`collect` picks up its result
    later (lending the GIL again for a moment), and :meth:`finish` waits for it
    asynchronously. Only one job runs at a time; ``start`` refuses a second.

    Args:
        name: the thread's name, for debuggers and ``threading.enumerate()``.
        lend: how long the loop lends the GIL when it hands a job over or looks for its
            end; ``0`` for jobs that wait on the network (see the module's docstring).
    """

    def __init__(self, name: str, *, lend: float = LEND_WAIT) -> None:
        self.name = name
        self.lend = lend
        self._state = _State()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._busy = False
        self._inline_result: tuple[bool, Any] | None = None

    def discard_after_fork(self) -> None:
        """In a forked child: forget the parent's job (its thread did not come along)."""
        self._state = _State()
        self._busy = False
        self._inline_result = None

    @property
    def busy(self) -> bool:
        """A job was handed over and its result not collected yet."""
        return self._busy

    def start(self, func: Callable[..., object], *args: Any) -> bool:
        """Hand ``func(*args)`` to the thread and lend it the GIL; ``True`` if it finished.

        Blocks the calling thread for at most :attr:`lend` seconds.
        """
        if self._busy:
            raise RuntimeError(f"{self!r} is still running a job: collect() it first")
        self._busy = True
        if not self._ensure_thread():  # at interpreter shutdown: run it here
            try:
                self._inline_result = (True, func(*args))
            except BaseException as exc:
                self._inline_result = (False, exc)
            return True
        state = self._state
        state.job = (func, args)
        state.go.release()
        return self.collect(self.lend)

    def collect(self, wait: float = 0.0) -> bool:
        """``True`` once the busy job has finished (its result in :attr:`result`).

        Lends the GIL for up to ``wait`` seconds while it checks; ``0`` only looks.
        """
        if not self._busy:
            return True
        if self._inline_result is not None:
            self._busy = False
            return True
        done = self._state.done
        finished = done.acquire(timeout=wait) if wait > 0 else done.acquire(blocking=False)
        if finished:
            self._busy = False
        return finished

    @property
    def result(self) -> tuple[bool, Any]:
        """``(True, value)`` or ``(False, exception)`` of the last finished job."""
        if self._inline_result is not None:
            return self._inline_result
        return self._state.result

    async def finish(self) -> tuple[bool, Any]:
        """Wait, without blocking the event loop, until the busy job has finished."""
        # No event to wait on: the thread cannot set one without the GIL, which is the
        # point, nor wake the loop at an odd moment. So poll, lending the GIL each time
        # (the thread may be waiting for it).
        while not self.collect(self.lend):  # noqa: ASYNC110
            await anyio.sleep(POLL_INTERVAL)
        return self.result

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` on the thread (after the busy job, if any); return its result.

        Safe for several tasks at once: each waits its turn and gets its own job's outcome
        (whoever collects a job, its caller reads the outcome from its own slot).
        """
        while self._busy:  # another job first; start() below follows the check at once
            await self.finish()
        outcome: list[tuple[bool, Any]] = []

        def job() -> Any:
            try:
                value = func(*args)
            except BaseException as exc:  # also the writer's result, as for start()
                outcome.append((False, exc))
                raise
            outcome.append((True, value))
            return value

        if not self.start(job):
            await self.finish()
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def _ensure_thread(self) -> bool:
        self._inline_result = None
        thread = self._thread
        if thread is not None and self._pid == os.getpid() and thread.is_alive():
            return True
        if thread is not None:  # a forked child (the thread stayed in the parent), or it died
            self._state = _State()
        thread = threading.Thread(target=_serve, args=(self._state,), name=self.name, daemon=True)
        try:
            thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown" (3.12+)
            return False
        self._thread, self._pid = thread, os.getpid()
        # Not at exit: weakref's exit hook runs before logging.shutdown(), which may still
        # need this thread to write the last records.
        weakref.finalize(self, _stop, self._state).atexit = False
        return True

    def stop(self) -> None:
        """Let the idle thread end; a later job starts a new one. A busy thread is left be."""
        if self._thread is not None and self._pid == os.getpid() and not self._busy:
            _stop(self._state)
            self._thread = None
            self._state = _State()

    def __repr__(self) -> str:
        return f"<LentWriter {self.name!r}{' busy' if self._busy else ''}>"
