"""Executor: the one I/O thread of a sink, which runs every blocking call of that sink in order.

A sink that blocks (a file, a pipe, ``smtplib``, a stdlib handler used as a target, an HTTP
request) owns one :class:`Executor`. Its writes, renames, ``stat`` calls, compression and
network requests all run on that one thread, one after the other, in the order the loop
handed them over, so a file object is only ever touched by one thread.

The rule for the event loop's thread
------------------------------------

**It waits at most one short lend per hand-over, and never while polling; while a job is
out and the loop never idles, it lends again, briefly and more and more rarely.**

* When a job is handed to an idle thread, the loop's thread *lends* it the GIL: it blocks
  on a lock of the job's for at most :attr:`Executor.lend` seconds. The thread, woken by a
  lock of its own rather than by the GIL, runs at once, and a quick job (a page-cache
  write) is over before the loop goes on. Nothing else is lent: a job handed over behind
  another one is queued without waiting.
* A job that outlives its lend (a stalled disk, a full pipe, a server that does not answer)
  does not make the loop wait for it. A task that awaits it (:meth:`Job.wait`) sleeps until
  the thread, finishing the job, wakes it through the loop's thread-safe scheduler; nothing
  polls for the outcome. (An executor made with ``look_every`` has the task look for the
  outcome on a timer instead of being woken, for network jobs; with ``look_lend`` each look
  that finds the job still running lends the GIL once more, briefly.)
* The one thing the loop still owes such a job is the GIL. A loop that never idles (a busy
  service) releases and retakes the GIL at every pass, which defeats CPython's switch
  interval: the job's thread, back from a system call, would wait for the GIL as long as the
  load lasts, and the task awaiting the job with it. So while a woken job is out, a task of
  the loop looks every ``WAKE_LEND_EVERY`` seconds: if the loop's thread has not idled
  since the last look, it lends the GIL for at most ``WAKE_LEND`` seconds. A thread that did
  not run when lent to is stalled, not starved, so the looks then thin out, doubling up to
  ``WAKE_LEND_EVERY_MAX``: a stalled job costs a busy loop a few short lends, an idle loop
  none, and nobody ever lends per pass.

:func:`executor_of` gives any sink, including a third-party one, its own executor; see
``docs/design.md`` for why the loop lends at all.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from time import monotonic, thread_time
from typing import Any, Generic, TypeVar

import anyio

from ._compat import current_loop_token, spawn_detached, threadsafe_scheduler
from ._tuning import (
    FORK_WAIT,
    LEND,
    WAKE_LEND,
    WAKE_LEND_BUSY,
    WAKE_LEND_EVERY,
    WAKE_LEND_EVERY_MAX,
)

try:
    from time import clock_gettime, pthread_getcpuclockid
except ImportError:  # pragma: no cover - Windows, macOS: _cpu_time() tells nothing
    pass

__all__ = ["Executor", "Job", "executor_of"]

T = TypeVar("T")


class Job(Generic[T]):
    """One call handed to an :class:`Executor`; its outcome once the thread has run it.

    Made by :meth:`Executor.submit`. :attr:`done` and :attr:`outcome` are read on the loop
    without waiting; :meth:`wait` awaits the end without polling.
    """

    __slots__ = (
        "_args",
        "_done",
        "_event",
        "_finished",
        "_fork_wait",
        "_func",
        "_look",
        "_look_lend",
        "_ok",
        "_value",
        "_wake",
    )

    def __init__(
        self,
        func: Callable[..., T],
        args: tuple[Any, ...],
        look_every: float | None = None,
        look_lend: float = 0.0,
        fork_wait: bool = True,
    ) -> None:
        self._func: Callable[..., T] | None = func
        self._args: tuple[Any, ...] = args
        self._fork_wait = fork_wait  # a fork waits for it while it runs (see _before_fork)
        self._done = threading.Lock()  # held until the job has run: what a lend waits on
        self._done.acquire()
        self._finished = False
        self._ok = True
        self._value: Any = None
        self._wake: Callable[[], object] | None = None
        self._event: anyio.Event | None = None
        self._look = look_every
        self._look_lend = look_lend

    @property
    def done(self) -> bool:
        """Whether the thread has run the job (its outcome is then in :attr:`outcome`)."""
        return self._finished

    @property
    def outcome(self) -> tuple[bool, Any]:
        """``(True, value)`` or ``(False, exception)``; only meaningful once :attr:`done`."""
        return self._ok, self._value

    def result(self) -> T:
        """The job's return value, or its exception raised again; only once :attr:`done`."""
        if not self._finished:
            raise RuntimeError("the job has not finished yet: await wait() first")
        if not self._ok:
            raise self._value
        return self._value  # type: ignore[no-any-return]

    async def wait(self) -> T:
        """Wait until the job has run, without blocking the loop; return :meth:`result`.

        The thread wakes this task when it finishes the job (through the loop's thread-safe
        scheduler); nothing polls meanwhile, unless the executor was made to look on a
        timer (``look_every``). Cancelling the wait leaves the job running.
        """
        if not self._finished:
            await self._until_done()
        return self.result()

    async def _until_done(self) -> None:
        look = self._look
        if look is not None:  # an executor that looks on a timer (see Executor)
            lend = self._look_lend
            watch = _IdleWatch() if lend else None
            while not self._finished:
                await anyio.sleep(look)
                if watch is not None and not self._finished:
                    # a loop that waited for events since the last look let go of the
                    # GIL meanwhile: the thread had its chance, a lend would only hold
                    # the loop up
                    if not watch.idled():
                        self._lend(lend)
                    watch.mark()
            return
        event = self._event
        if event is None:  # the first waiter: every later one waits on the same event
            event = self._event = anyio.Event()
            schedule = threadsafe_scheduler()
            set_event = event.set

            def wake() -> None:
                schedule(set_event)

            self._wake = wake
        # The thread sets _finished before it reads _wake: either it sees the waker or
        # this check sees the job finished.
        if not self._finished:
            await event.wait()

    async def _outcome_uncancelled(self) -> T:
        """:meth:`wait`, except that a cancelled caller first waits for the job to end.

        As ``anyio.to_thread.run_sync`` does: the caller never goes on while its call still
        runs, so nothing the call returns (an item taken off a queue) is lost.
        """
        if not self._finished:
            try:
                await self._until_done()
            except BaseException:
                if not self._finished:
                    with anyio.CancelScope(shield=True):
                        await self._until_done()
                raise
        return self.result()

    def _lend(self, seconds: float) -> bool:
        """Block for at most ``seconds`` until the job has run (the loop's one lend)."""
        if self._done.acquire(timeout=seconds):
            self._done.release()
            return True
        return self._finished

    def _run(self) -> None:
        """On the executor's thread: run the call, keep its outcome, wake whoever waits."""
        func, args = self._func, self._args
        self._func, self._args = None, ()
        try:
            assert func is not None
            self._value = func(*args)
        except BaseException as exc:  # handed to whoever reads the outcome
            self._ok, self._value = False, exc
        self._finished = True
        self._done.release()
        wake = self._wake
        if wake is not None:
            try:
                wake()
            except Exception:  # the loop has closed meanwhile: nobody waits any more
                pass


class _Shared:
    """What the thread and the executor share; the thread holds no reference to the
    executor, so an abandoned executor is collected and its thread told to stop."""

    __slots__ = ("go", "jobs", "running")

    def __init__(self) -> None:
        self.jobs: deque[Job[Any] | None] = deque()
        self.go = threading.Lock()  # unlocked while jobs may be waiting
        self.go.acquire()
        self.running = threading.Lock()  # held while a job runs (see _before_fork)

    def signal(self) -> None:
        try:
            self.go.release()
        except RuntimeError:  # already signalled: the thread will look at the deque
            pass


def _serve(shared: _Shared) -> None:
    """The thread's body: run jobs in order as they come, until told to stop."""
    jobs, running = shared.jobs, shared.running
    while True:
        shared.go.acquire()
        while jobs:
            job = jobs.popleft()
            if job is None:
                return
            if job._fork_wait:
                with running:
                    job._run()
            else:
                job._run()


def _voluntary_switches_counter() -> Callable[[], int] | None:
    """How many times the calling thread has blocked so far, where the OS tells (Linux)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    who: int | None = getattr(resource, "RUSAGE_THREAD", None)
    if who is None:  # pragma: no cover - not Linux
        return None
    getrusage = resource.getrusage

    def voluntary_switches() -> int:
        return getrusage(who).ru_nvcsw

    return voluntary_switches


_voluntary_switches = _voluntary_switches_counter()


class _IdleWatch:
    """Whether the calling thread (the loop's) went idle since :meth:`mark`.

    On Linux: whether it blocked at all (its voluntary context switches), which a loop does
    when it waits for events and never does while it has work, however busy the machine.
    Elsewhere: whether it ran for less than WAKE_LEND_BUSY of the time.
    """

    __slots__ = ("_cpu", "_switches", "_wall")

    def __init__(self) -> None:
        self.mark()

    def mark(self) -> None:
        if _voluntary_switches is not None:
            self._switches = _voluntary_switches()
        else:  # pragma: no cover - not Linux
            self._cpu, self._wall = thread_time(), monotonic()

    def idled(self) -> bool:
        if _voluntary_switches is not None:
            return _voluntary_switches() != self._switches
        ran, passed = thread_time() - self._cpu, monotonic() - self._wall  # pragma: no cover
        return ran < passed * WAKE_LEND_BUSY  # pragma: no cover


def _cpu_time(thread: threading.Thread) -> float | None:
    """The CPU time ``thread`` has used so far, where the OS tells (not macOS, not Windows)."""
    try:
        return clock_gettime(pthread_getcpuclockid(thread.ident))  # type: ignore[arg-type]
    except (NameError, TypeError, OSError, OverflowError):  # pragma: no cover
        return None


def _lender(executor_ref: weakref.ref[Executor], loop: object) -> Callable[[], Any]:
    """The body of the task that lends the GIL while a job of the executor is out."""

    async def lend_while_out() -> None:
        watch = _IdleWatch()
        every = WAKE_LEND_EVERY
        while True:
            await anyio.sleep(every)
            executor = executor_ref()
            if executor is None:
                return
            last, thread = executor._last, executor._thread
            if executor._lender is not loop or last is None or thread is None or executor.idle:
                if executor._lender is loop:
                    executor._lender = None
                return
            del executor
            # A loop that waited for events meanwhile let go of the GIL long enough.
            if not watch.idled():
                ran = _cpu_time(thread)
                last._lend(WAKE_LEND)
                if ran is None or _cpu_time(thread) != ran:
                    every = WAKE_LEND_EVERY
                else:  # it did not run when lent to: stalled (in a system call), not starved
                    every = min(every * 2, WAKE_LEND_EVERY_MAX)
            watch.mark()

    return lend_while_out


def _stop(shared: _Shared) -> None:
    shared.jobs.append(None)
    shared.signal()


class Executor:
    """One daemon thread that runs a sink's blocking calls, one at a time, in order.

    Call it from the event loop's thread. :meth:`run` is all most sinks need; :meth:`submit`
    hands a job over without waiting for it (write-behind), and the :class:`Job` it returns
    is awaited or looked at later. The thread starts with the first job, after a fork too,
    and ends with :meth:`stop` or when the executor is collected.

    Args:
        name: the thread's name, for debuggers and ``threading.enumerate()``.
        lend: how long the loop's thread lends the GIL when it hands a job to the idle
            thread; ``0`` lends nothing (jobs that wait on the network for milliseconds
            anyway, so that a lend would only hold the loop up).
        look_every: ``None`` (the default): the thread wakes the task that awaits a job.
            A number of seconds: that task instead looks for the outcome on a timer of
            that period, never lending and never blocking. For jobs that end at arbitrary
            moments many times a second (answers from the network): on Linux a wake-up
            from outside the loop can make the loop's next timer late by up to a
            millisecond, while a timer armed when the loop is awake anyway keeps in step
            (``docs/performance.md``).
        fork_wait: whether a fork waits (up to ``FORK_WAIT`` seconds, for all executors
            together) for the job this thread is running, so that the child finds the
            objects the job used (a stream and its lock) as no thread holds them. ``False``
            for jobs whose objects a child never uses again (a connection it replaces);
            :meth:`submit` can say otherwise for one job.
        look_lend: with ``look_every``, how long the loop's thread lends the GIL at each
            look that finds the job still running and the loop never idle since the last
            look (``0``: never). On a loop that never idles the thread could otherwise
            wait a long time for the GIL once its call is back from the network: CPython
            hands the GIL to a waiting thread after its switch interval only if the holder
            has not released and taken it again meanwhile, and a busy event loop does that
            at every pass (its ``select``).
    """

    def __init__(
        self,
        name: str,
        *,
        lend: float = LEND,
        look_every: float | None = None,
        look_lend: float = 0.0,
        fork_wait: bool = True,
    ) -> None:
        if lend < 0:
            raise ValueError(f"Executor lend must be 0 or more seconds, got {lend!r}")
        if look_every is not None and not look_every > 0:
            raise ValueError(
                f"Executor look_every must be None or more than 0 seconds, got {look_every!r}"
            )
        self.name = name
        self.lend = lend
        self.look_every = look_every
        if look_lend < 0 or (look_lend and look_every is None):
            raise ValueError(
                f"Executor look_lend must be 0, or more with look_every, got {look_lend!r}"
            )
        self.look_lend = look_lend
        self.fork_wait = fork_wait
        self._shared = _Shared()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._last: Job[Any] | None = None
        self._lender: object = None  # the loop whose task lends while a job is out

    @property
    def idle(self) -> bool:
        """Whether every job handed over has finished (in a forked child: every job of its own)."""
        last = self._last
        if last is None or last._finished:
            return True
        return self._thread is not None and self._pid != os.getpid()  # the parent's job

    @property
    def thread(self) -> threading.Thread | None:
        """The thread running the jobs, once one was handed over (``None`` before)."""
        return self._thread

    def submit(
        self,
        func: Callable[..., T],
        *args: Any,
        lend: bool = True,
        fork_wait: bool | None = None,
    ) -> Job[T]:
        """Hand ``func(*args)`` over, to run after the jobs handed over before it.

        If the thread was idle, the calling thread lends it the GIL for at most
        :attr:`lend` seconds, so a quick job is usually :attr:`Job.done` on return; a job
        queued behind another is not waited for at all. ``lend=False`` lends nothing to
        this job: one that is expected to wait (a blocking ``get`` on a queue), for which a
        lend would only hold the loop up. ``fork_wait`` overrides the executor's for this
        job (``False`` for such a wait: a fork need not wait for it to time out).
        """
        if fork_wait is None:
            fork_wait = self.fork_wait
        job: Job[T] = Job(func, args, self.look_every, self.look_lend, fork_wait)
        started = self._ensure_thread()
        idle = self.idle
        self._last = job
        if not started:  # at interpreter shutdown: run it here and now
            job._run()
            return job
        shared = self._shared
        shared.jobs.append(job)
        shared.signal()
        if idle and self.lend > 0 and lend:
            job._lend(self.lend)
        if not job._finished and self.look_every is None:
            self._lend_while_out()
        return job

    def _lend_while_out(self) -> None:
        """Have a task of the running loop lend the GIL briefly, every so often, until the
        executor is idle again (one such task per executor and loop)."""
        try:
            loop = current_loop_token()
        except RuntimeError:  # no loop here: nobody competes for the GIL like a loop does
            return
        if self._lender is loop:
            return
        self._lender = loop
        spawn_detached(_lender(weakref.ref(self), loop), name=f"{self.name} lender")

    async def run(
        self,
        func: Callable[..., T],
        *args: Any,
        lend: bool = True,
        fork_wait: bool | None = None,
    ) -> T:
        """Run ``func(*args)`` on the thread, after the jobs before it; return its result.

        Raises what the call raised. Safe for several tasks at once: each gets its own
        job's outcome, in the order they handed their jobs over. A cancelled caller waits
        for its call to end before the cancellation goes on, as with
        ``anyio.to_thread.run_sync``. ``lend`` and ``fork_wait``: as for :meth:`submit`.
        """
        job = self.submit(func, *args, lend=lend, fork_wait=fork_wait)
        return await job._outcome_uncancelled()

    async def drain(self) -> None:
        """Wait until every job handed over so far has finished (their outcomes aside)."""
        last = self._last
        if not self.idle and last is not None:
            try:
                await last.wait()
            except Exception:  # the job's owner reads its outcome
                pass

    def stop(self) -> None:
        """Let the idle thread end; a later job starts a new one.

        A thread still running a job is left be (a new thread beside it would break the
        order); it ends when the executor is collected.
        """
        if self._thread is None or self._pid != os.getpid() or not self.idle:
            return
        _stop(self._shared)
        self._thread = None
        self._shared = _Shared()

    def discard_after_fork(self) -> None:
        """In a forked child: forget the parent's jobs (its thread did not come along)."""
        self._shared = _Shared()
        self._thread = None
        self._last = None
        self._lender = None

    def _ensure_thread(self) -> bool:
        thread = self._thread
        if thread is not None and self._pid == os.getpid() and thread.is_alive():
            return True
        if thread is not None:  # a forked child (the thread stayed in the parent), or it died
            self._shared = _Shared()
            self._last = None  # a job the parent's thread was running never ends here
        thread = threading.Thread(target=_serve, args=(self._shared,), name=self.name, daemon=True)
        try:
            thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown" (3.12+)
            return False
        self._thread, self._pid = thread, os.getpid()
        _STARTED.add(self)
        # Not at exit: weakref's exit hook runs before logging.shutdown(), which may still
        # need this thread to write the last records.
        weakref.finalize(self, _stop, self._shared).atexit = False
        return True

    def __repr__(self) -> str:
        return f"<Executor {self.name!r}{'' if self.idle else ' busy'}>"


_EXECUTORS: weakref.WeakKeyDictionary[object, Executor] = weakref.WeakKeyDictionary()

#: Executors that started a thread (a fork may wait for its job: see ``fork_wait``), and
#: the locks of the jobs that a fork in progress holds back.
_STARTED: weakref.WeakSet[Executor] = weakref.WeakSet()
_HELD_FOR_FORK: list[threading.Lock] = []


def _before_fork() -> None:
    """Let each I/O thread finish the job it is running, and start none until the fork is over.

    A job that writes holds its stream's lock (a ``BufferedWriter``'s, say) while it runs;
    forked meanwhile, the child has that lock held by a thread it does not have, and its
    own first write to the stream (a ``StreamHandler`` on ``sys.stderr``) waits forever.
    The wait is bounded: a job stalled longer than ``FORK_WAIT`` (a full pipe) is left
    running, and the file sinks' children never touch the parent's file object.
    """
    deadline = monotonic() + FORK_WAIT
    me, pid = threading.get_ident(), os.getpid()
    for executor in list(_STARTED):
        thread = executor._thread
        if thread is None or executor._pid != pid or thread.ident == me:
            continue  # no thread, a parent's, or a job of this thread forks
        running = executor._shared.running
        if running.acquire(timeout=max(0.0, deadline - monotonic())):
            _HELD_FOR_FORK.append(running)


def _after_fork() -> None:
    while _HELD_FOR_FORK:
        _HELD_FOR_FORK.pop().release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork
    )


def executor_of(sink: object, *, lend: float = LEND) -> Executor:
    """The executor of ``sink``, made on first use: the one thread for all its blocking calls.

    Any object can own one (an ``AsyncHandler`` subclass, a listener); the executor lives
    as long as its owner. ``lend`` applies only when this call makes the executor.
    """
    try:
        executor = _EXECUTORS.get(sink)
    except TypeError:  # unhashable (defines __eq__ only): keep it on the object instead
        executor = getattr(sink, "_loopsink_executor", None)
        if executor is None:
            executor = Executor(f"loopsink-{type(sink).__name__}", lend=lend)
            sink._loopsink_executor = executor  # type: ignore[attr-defined]
        return executor
    if executor is None:
        executor = Executor(f"loopsink-{type(sink).__name__}", lend=lend)
        _EXECUTORS[sink] = executor
    return executor
