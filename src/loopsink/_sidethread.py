"""SideThread: one sink's own thread for blocking work that must never wake the loop.

A sink that talks to a slow server over the network could wait for the answer on the event
loop, but the answer then wakes the loop at an arbitrary moment, and on Linux that makes
every timer due within the next millisecond late by up to a millisecond: asyncio and trio
wait in ``epoll`` with a timeout in whole milliseconds, rounded up, so a timer due 0.1 ms
after such a wake-up fires after 1.08 ms. A sink's thread waits on the network without the
loop knowing; the loop hands it a job and looks for the outcome once a millisecond, on a
timer armed while it was awake anyway, which keeps its wake-ups in step with the
application's own.

The thread's CPU work still needs the GIL, which the loop wants back whenever it wakes:
long jobs call :func:`yield_gil` between pieces of work so the loop never waits on them for
more than a fraction of a millisecond.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

__all__ = ["SideThread", "yield_gil"]

T = TypeVar("T")

_Jobs = queue.SimpleQueue["tuple[Callable[..., Any], tuple[Any, ...], list[Any]] | None"]

#: How often the loop looks for a job's outcome once it was not there at once.
_LOOK_EVERY = 0.001


def yield_gil() -> None:
    """Let a thread that waits for the GIL (the event loop's) take it now."""
    time.sleep(0)


class SideThread:
    """A daemon thread that runs one sink's blocking jobs, one at a time, in order.

    Started on the first job; :meth:`stop` lets it end after the job in hand. Jobs handed
    over after a stop start a new thread. At interpreter shutdown, when no thread may start
    any more, a job runs inline: by then it stalls nobody.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: _Jobs = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` in the thread; return its result or raise its exception.

        Cancelling the caller stops the waiting, not the job: it finishes in the thread.
        """
        if not self._start():
            return func(*args)
        outcome: list[tuple[bool, Any]] = []
        self._jobs.put((func, args, outcome))
        await anyio.lowlevel.checkpoint()  # a quick job is done by the next pass
        while not outcome:  # noqa: ASYNC110 - polled on purpose: an event set from the
            await anyio.sleep(_LOOK_EVERY)  # thread would wake the loop at any moment
        ok, value = outcome[0]
        if ok:
            return value  # type: ignore[no-any-return]
        raise value

    def stop(self) -> None:
        """Let the thread end once the jobs handed over so far are done."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None

    def _start(self) -> bool:
        if self._thread is not None and self._thread.is_alive():
            return True
        jobs: _Jobs = queue.SimpleQueue()  # its own: a stopped thread may still be busy
        thread = threading.Thread(target=_serve, args=(jobs,), name=self.name, daemon=True)
        try:
            thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            return False
        self._thread, self._jobs = thread, jobs
        return True


def _serve(jobs: _Jobs) -> None:
    while True:
        job = jobs.get()
        if job is None:
            return
        func, args, outcome = job
        try:
            outcome.append((True, func(*args)))
        except BaseException as exc:  # handed to the waiting task, re-raised there
            outcome.append((False, exc))
