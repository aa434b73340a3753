"""LentWriter: the start/collect face of an :class:`~loopsink._executor.Executor`.

Write-behind (``_writebehind.WriteBehind``) hands one write at a time to a sink's I/O
thread and looks for its end when the queue's worker comes round again; this class keeps
that one job and its outcome. Everything else (the thread, the order of jobs, the one
lend per hand-over, the wake-up when a job that outlived its lend ends) is the
executor's: see :mod:`loopsink._executor` for the rule the loop keeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ._executor import Executor, Job
from ._tuning import LEND

__all__ = ["LentWriter", "let_the_loop_in"]


def let_the_loop_in() -> None:
    """On an I/O thread between pieces of CPU work: let the loop take the GIL if it waits
    for it (a job of an executor that lends nothing competes for the GIL)."""
    time.sleep(0)


class LentWriter:
    """One job at a time on an executor's thread, started now and collected later.

    :meth:`start` hands a job over (the executor lends the GIL once); most jobs finish
    within it. One that does not is *busy*: :meth:`collect` looks for its end, and
    :meth:`finish` awaits it, woken by the thread. ``start`` refuses a second job while
    one is busy; :meth:`run` queues behind it.

    Args:
        name: the thread's name, for debuggers and ``threading.enumerate()``.
        lend: how long the loop lends the GIL when it hands a job over; ``0`` for jobs
            that wait on the network.
        executor: run on this executor (a sink's one thread) instead of a new one.
    """

    def __init__(self, name: str, *, lend: float = LEND, executor: Executor | None = None) -> None:
        self.executor = executor if executor is not None else Executor(name, lend=lend)
        self._job: Job[Any] | None = None
        self._result: tuple[bool, Any] = (True, None)

    @property
    def name(self) -> str:
        return self.executor.name

    @property
    def lend(self) -> float:
        return self.executor.lend

    def discard_after_fork(self) -> None:
        """In a forked child: forget the parent's job (its thread did not come along)."""
        self.executor.discard_after_fork()
        self._job = None

    @property
    def busy(self) -> bool:
        """A job was started and its result not collected yet."""
        return self._job is not None

    def start(self, func: Callable[..., object], *args: Any) -> bool:
        """Hand ``func(*args)`` to the thread, lending it the GIL once; ``True`` if it finished.

        Blocks the calling thread for at most :attr:`lend` seconds.
        """
        if self._job is not None:
            raise RuntimeError(f"{self!r} is still running a job: collect() it first")
        self._job = self.executor.submit(func, *args)
        return self.collect()

    def collect(self) -> bool:
        """``True`` once the busy job has finished (its outcome in :attr:`result`).

        Only looks: it never waits.
        """
        job = self._job
        if job is None:
            return True
        if not job.done:
            return False
        self._result = job.outcome
        self._job = None
        return True

    @property
    def result(self) -> tuple[bool, Any]:
        """``(True, value)`` or ``(False, exception)`` of the last collected job."""
        return self._result

    async def finish(self) -> tuple[bool, Any]:
        """Wait, without blocking the event loop, until the busy job has finished."""
        job = self._job
        if job is not None and not job.done:
            try:
                await job.wait()
            except BaseException:
                if not job.done:  # cancelled: the job runs on, still busy
                    raise
                # else the job's own failure: its outcome, read below
        self.collect()
        return self.result

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` on the thread (after the busy job, if any); return its result.

        Safe for several tasks at once: each gets its own job's outcome, in order.
        """
        job = self.executor.submit(func, *args)
        try:
            return await job._outcome_uncancelled()
        finally:
            if job.done and self._job is None:  # the last outcome, as for a started job
                self._result = job.outcome

    def stop(self) -> None:
        """Let the idle thread end; a later job starts a new one. A busy thread is left be."""
        self.executor.stop()

    def __repr__(self) -> str:
        return f"<LentWriter {self.name!r}{' busy' if self._job is not None else ''}>"
