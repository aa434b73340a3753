"""Hosting a configured bridge's queue: where it runs, and keeping it running.

A bridge declared in a logging configuration exists before any event loop does, so it
starts its own queue, by the ``start`` policy of its :class:`~loopsink._configspec.BridgeSpec`
(see :mod:`loopsink.config` for what each policy means to a user). The states, and who moves
the bridge between them:

* ``idle``: the current queue has not started; records wait in its bounded intake. The first
  record starts a thread (``auto``, ``thread``) or arms the "no loop came" warning (``loop``).
* ``starting``: a starter thread is starting the queue's thread (never the logging caller:
  the new loop logs as it starts, and the caller may hold the logging module's lock).
* ``thread``: the queue runs in a daemon thread of its own (a :class:`ThreadedQueue`).
* ``loop``: the queue runs on an application's loop, inside :meth:`HostedBridge.serve`.
* ``draining``: the previous queue is being drained and closed; records wait in the next one.
* ``forked``: in a forked child, the parent's queue set aside until the child first logs.
* ``closed``: :meth:`HostedBridge.close` ran (``logging.shutdown()``, a new ``dictConfig``,
  SIGTERM).

When a loop's turn ends (the app shuts down) the queue is drained and closed and the bridge
gets a new one over the same sinks (a new *generation*), so records logged after the app's
shutdown follow the same policy. Nothing here parses options: that is
:mod:`loopsink._configspec`.
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread

from . import _fork
from ._bridge import LoggingBridge, ThreadedQueue
from ._compat import loop_running_here
from ._configspec import BridgeSpec
from ._handler import AsyncHandler
from ._queue import LogQueue
from ._sinkentries import reopen_appending

__all__ = ["HostedBridge", "live_bridges"]


class _State(enum.Enum):
    IDLE = "idle"  # the current queue has not started; records wait in its intake
    STARTING = "starting"  # a thread is being started for it
    THREAD = "thread"  # running in a daemon thread of its own
    LOOP = "loop"  # running on an application's loop, under a helper
    DRAINING = "draining"  # the previous queue is closing; records wait in the next one
    FORKED = "forked"  # in a forked child: the parent's queue, set aside until first use
    CLOSED = "closed"


_IDLE = _State.IDLE
_FORKED = _State.FORKED
_STARTING = _State.STARTING
_bridge_handle = LoggingBridge.handle

#: Every hosted bridge that is not closed yet, for :func:`live_bridges`.
_LIVE: weakref.WeakSet[HostedBridge] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


class HostedBridge(LoggingBridge):
    """A bridge that owns its queue and sinks and runs the queue by its start policy.

    Built from a checked :class:`~loopsink._configspec.BridgeSpec`; the dictConfig face
    (``set_name``, ``setFormatter``, the constructor's options) is
    :class:`loopsink.config.ConfiguredBridge`, a subclass.
    """

    def __init__(self, spec: BridgeSpec) -> None:
        where = spec.where
        self._queue_options: dict[str, Any] = spec.queue_options
        try:
            queue = _new_queue(spec.sinks, self._queue_options)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}{exc}") from None  # the same message, once
        try:
            super().__init__(queue, spec.level)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}level: {exc}") from None
        self._sinks = spec.sinks
        self._queue_named = spec.name is not None
        self._start_policy: str = spec.start
        self._backend = spec.backend
        self._timeout = spec.timeout
        self._state = _State.IDLE
        self._state_lock = threading.Lock()
        self._threaded: ThreadedQueue | None = None
        self._starter: threading.Thread | None = None
        self._warn_after = spec.warn_after
        self._blocks = self.queue.overflow == "block"
        # whether a loop has ever run this bridge, and whether the wait is being watched
        self._served = False
        self._watching = False
        self._watch_timer: threading.Timer | None = None
        self._order = next(_COUNTER)
        with _LIVE_LOCK:
            _LIVE.add(self)
        _deliver_on_sigterm()
        _fork.register(self)
        if spec.start == "thread":
            self._start_thread()

    # -- the hot path ---------------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> bool:
        # Every record of a configured bridge passes here: module constants instead of
        # enum attribute lookups and an unbound call instead of super(), which together
        # cost more than the bridge's own fast path on Python 3.11.
        state = self._state
        if state is _IDLE:
            if self._start_policy != "loop":
                self._start_thread()
            elif not self._watching:
                self._watch_the_wait()
        elif state is _FORKED:
            self._renew_in_child()
            if self._start_policy != "loop":
                self._start_thread()
                # Once per child: wait for the thread, so that a burst finds the queue
                # running (where "block" waits for room) instead of filling its intake.
                self._wait_started(self._timeout)
        elif state is _STARTING and self._blocks and self.queue.full:
            # overflow="block" means waiting for room: the room comes once the thread runs
            self._wait_started(self._timeout)
        return _bridge_handle(self, record)

    def _before_fork(self) -> None:
        """Called by ``_fork`` in the forking thread: let a starting thread finish first."""
        if self._state is _State.STARTING:
            self._wait_started(self._timeout)

    def _renew_after_fork(self) -> None:
        """In a forked child (called by ``_fork``): set the parent's queue aside.

        The parent's queue, its thread and its pending records stay the parent's. Nothing
        here may import (another thread of the parent may have held an import lock), so the
        child's own queue is made when it first logs (:meth:`_renew_in_child`).
        """
        self._state_lock = threading.Lock()
        self._starter = None
        if self._state is _State.CLOSED:
            return
        _fork.abandon(self.queue)
        self._threaded = None
        # the parent's wait watch (its timer thread) stays the parent's
        self._served = False
        self._watching = False
        self._watch_timer = None
        self._state = _State.FORKED

    def _renew_in_child(self) -> None:
        """A forked child's first record: a fresh idle queue over the same sinks, drained at
        the child's exit (also for a ``multiprocessing`` child, which skips ``atexit``)."""
        if self._next_generation(_State.IDLE, only_from=_State.FORKED) is not None:
            _fork.at_child_exit(self.close)

    def _watch_the_wait(self) -> None:
        """Arm the one-time "no loop has come for these records" warning (start="loop")."""
        self._watching = True
        if self._served or not self._warn_after:
            return
        timer = threading.Timer(self._warn_after, self._warn_if_still_waiting)
        timer.name = "loopsink-wait-watch"
        timer.daemon = True
        self._watch_timer = timer
        try:
            timer.start()
        except RuntimeError:  # no new threads at interpreter shutdown
            pass

    def _warn_if_still_waiting(self) -> None:
        with self._state_lock:
            waiting = self._state is _State.IDLE and not self._served
            queue = self.queue
        if not waiting:
            return
        stats = queue.stats
        if not stats.enqueued and not stats.dropped_total:
            return
        label = f"handler {self.get_name()!r}" if self.get_name() else repr(self)
        dropped = f", {stats.dropped_total} dropped" if stats.dropped_total else ""
        _warn_stderr(
            f"loopsink: {label} (start='loop') has waited {self._warn_after:g} s for an event "
            f"loop to start its queue ({stats.enqueued} records held{dropped}; the queue "
            f"holds {queue.capacity}); they are written only at exit. Run the app with "
            f"loopsink.contrib.fastapi.lifespan() (or loopsink.config.run_bridges()), or use "
            f"start: 'auto'.\n"
        )

    # -- starting and stopping --------------------------------------------------------------

    @property
    def state(self) -> str:
        """Where the queue is: ``idle``, ``starting``, ``thread``, ``loop``, ``draining``,
        ``forked`` (in a forked child, until its first record gives it a queue of its own)
        or ``closed``."""
        return self._state.value

    @property
    def sinks(self) -> tuple[AsyncHandler, ...]:
        return self._sinks

    def _start_thread(self) -> None:
        """Start the queue in a daemon thread, without waiting for it.

        The caller may be a log call, or dictConfig holding the logging module's lock: the
        new loop logs as it starts (asyncio's "Using selector"), so waiting here for it
        could deadlock. A starter thread waits instead; records meanwhile go to the intake.
        """
        with self._state_lock:
            if self._state is not _State.IDLE:
                return
            # Set first: a record logged while the thread starts must go into the intake,
            # not start a second thread.
            self._state = _State.STARTING
            queue = self.queue
            starter = threading.Thread(
                target=self._run_starter, args=(queue,), name="loopsink-start", daemon=True
            )
            self._starter = starter
        starter.start()

    def _run_starter(self, queue: LogQueue) -> None:
        try:
            runner = _thread_runner(queue, self._backend, self._timeout)
            runner._start()
        except Exception as exc:
            # No thread: keep the records in the intake, to be drained at exit.
            self._start_policy = "loop"
            with self._state_lock:
                if self._state is _State.STARTING:
                    self._state = _State.IDLE
            _warn_stderr(
                f"loopsink: could not start a thread for {self!r} ({exc!r}); its records wait "
                f"for an event loop or for the exit.\n"
            )
            return
        with self._state_lock:
            self._threaded = runner
            if self._state is _State.STARTING:
                self._state = _State.THREAD
                return
        runner.close(self._timeout)  # close() ran meanwhile, and is waiting for this

    def _wait_started(self, timeout: float) -> None:
        """If a starter thread is at work (and it is not us), wait for it."""
        starter = self._starter
        if starter is not None and starter is not threading.current_thread():
            starter.join(timeout)

    def _next_generation(
        self, state: _State, *, only_from: _State | None = None
    ) -> LogQueue | None:
        """Give the bridge a fresh queue over the same sinks, in ``state``; return the old one.

        Records logged from now on wait in the new queue's intake. It must not start before
        the old one has closed its sinks (``DRAINING``), or two loops would share them.
        """
        with self._state_lock:
            old = self.queue
            if only_from is not None and self._state is not only_from:
                return None  # another thread did it first
            if self._state is _State.CLOSED:
                return old
            reopen_appending(self._sinks)
            self.queue = _new_queue(self._sinks, self._queue_options)
            self._put = self.queue.put
            self._threaded = None
            self._state = state
            return old

    @asynccontextmanager
    async def serve(self, *, close_timeout: float | None = None) -> AsyncIterator[LogQueue]:
        """Run the bridge's queue on the current event loop for the duration of the block.

        If the queue is idle it starts here, and on exit it is drained, flushed and closed
        (at most ``close_timeout`` s), after which the bridge gets a new idle queue for whatever
        is logged later. With ``start="auto"``, a queue that a first record started in a
        thread moves here: the thread's queue is drained and closed (records logged meanwhile
        wait in the new one), so that the sinks run on the app's loop, where the bridge's
        fast path applies. With ``start="thread"`` it stays in its thread, and the exit waits
        for its full flush (in a worker thread: the loop keeps running).
        """
        deadline = self._timeout if close_timeout is None else close_timeout
        if self._state is _State.STARTING:
            await anyio.to_thread.run_sync(self._wait_started, deadline)
        with self._state_lock:
            runner = self._threaded
            move = (
                self._state is _State.THREAD
                and runner is not None
                and self._start_policy == "auto"
                and not runner.on_loop_thread()
            )
        if move and runner is not None:
            self._next_generation(_State.DRAINING)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(runner.close, deadline)
        with self._state_lock:
            state = self._state
            if state is _State.IDLE or (move and state is _State.DRAINING):
                state = _State.IDLE
                self._state = _State.LOOP
                self._served = True
            queue = self.queue
            runner = self._threaded
        if move and state is _State.CLOSED:  # close() ran while the thread drained
            await anyio.to_thread.run_sync(_drain_once, queue, self._backend, deadline)
        if state is _State.IDLE:
            async with queue:
                try:
                    yield queue
                finally:
                    self._next_generation(_State.DRAINING)
                    await queue.aclose(deadline)
                    with self._state_lock:
                        if self._state is _State.DRAINING:
                            self._state = _State.IDLE
                            closed_meanwhile = None
                        else:  # close() ran while we drained: deliver what waits now
                            closed_meanwhile = self.queue
                    if closed_meanwhile is not None:
                        await anyio.to_thread.run_sync(
                            _drain_once, closed_meanwhile, self._backend, deadline
                        )
        elif state is _State.THREAD and runner is not None:
            try:
                yield queue
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        await anyio.to_thread.run_sync(runner.flush, deadline)
                    except (TimeoutError, RuntimeError) as exc:
                        _warn_stderr(f"loopsink: flushing {self!r} failed: {exc!r}\n")
        else:
            yield queue

    def flush(self) -> None:
        """Flush the queue when it runs in its own thread (``logging.shutdown()`` calls this)."""
        if self._state is _State.STARTING:
            self._wait_started(self._timeout)
        runner = self._threaded
        if self._state is _State.THREAD and runner is not None and not runner.on_loop_thread():
            try:
                runner.flush()
            except (TimeoutError, RuntimeError):
                pass

    def close(self) -> None:
        """Drain and stop the queue, wherever it runs; then detach like any handler.

        ``logging.shutdown()`` calls this at exit, and ``dictConfig`` when it replaces the
        configuration. A queue that never started is run once, in a short-lived thread,
        so that the records waiting in it are delivered and the sinks closed.
        """
        with self._state_lock:
            state, self._state = self._state, _State.CLOSED
            runner = self._threaded
            queue = self.queue
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if _holding_logging_lock():
            # dictConfig replacing the configuration holds the logging module's lock, and a
            # loop that starts or stops may log (asyncio does): waiting for it here would
            # deadlock. A non-daemon thread finishes the job; the interpreter waits for it.
            threading.Thread(
                target=self._finish, args=(state, runner, queue), name="loopsink-close"
            ).start()
        else:
            self._finish(state, runner, queue)
        super().close()

    def _finish(self, state: _State, runner: ThreadedQueue | None, queue: LogQueue) -> None:
        if state is _State.STARTING:  # the starter sees CLOSED and closes its runner
            self._wait_started(2 * self._timeout + 2.0)
        elif state is _State.THREAD and runner is not None:
            if not runner.on_loop_thread():
                runner.close(self._timeout)
        elif state is _State.IDLE:
            _drain_once(queue, self._backend, self._timeout)
        # LOOP and DRAINING: the helper closes the queue and delivers what is left.
        # FORKED: a forked child that never logged; the queue and its records are the parent's.


# -- helpers ---------------------------------------------------------------------------------


def live_bridges() -> list[HostedBridge]:
    """The hosted bridges that are not closed, oldest first."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    return sorted(live, key=_creation_order)


_COUNTER = itertools.count()


def _creation_order(item: HostedBridge) -> int:
    return item._order


def _thread_runner(queue: LogQueue, backend: str, timeout: float) -> ThreadedQueue:
    """A :class:`ThreadedQueue` for ``queue``, not started yet.

    It has no bridge or logger of its own: the hosted bridge that feeds the queue is
    attached by ``dictConfig`` and closed by ``logging.shutdown()``, not by the runner.
    """
    return ThreadedQueue(queue, backend=backend, default_timeout=timeout)


def _after_fork_in_child() -> None:
    # Another thread of the parent may have held it at the fork. Each bridge renews itself
    # through _fork (registered in HostedBridge.__init__).
    global _LIVE_LOCK
    _LIVE_LOCK = threading.Lock()


_SIGTERM_HOOKED = False


def _deliver_on_sigterm() -> None:
    """Deliver what the bridges hold when SIGTERM ends the process.

    SIGTERM's default action ends the process without ``atexit``, so without this a bridge's
    waiting records (a ``start="loop"`` queue no loop ever ran, a thread's backlog, what
    uvicorn logs after the app's shutdown) would be lost. uvicorn catches SIGTERM while it
    serves, restores the handler it found and raises the signal again once it has shut
    down, so a handler installed here, at configuration time, runs then. Installed only
    from the main thread and only while SIGTERM has its default action: a handler of the
    application's own is never replaced. It drains and closes every configured bridge
    (as ``logging.shutdown()`` would), then lets the signal end the process as before.
    """
    global _SIGTERM_HOOKED
    if _SIGTERM_HOOKED or threading.current_thread() is not threading.main_thread():
        return
    import signal

    term = getattr(signal, "SIGTERM", None)
    if term is None:
        return
    try:
        if signal.getsignal(term) is not signal.SIG_DFL:
            return
        signal.signal(term, _on_sigterm)
    except (ValueError, OSError):  # not the main interpreter, or no signals here
        return
    _SIGTERM_HOOKED = True


def _on_sigterm(signum: int, frame: object) -> None:
    import signal

    global _SIGTERM_HOOKED
    try:
        # The handler runs between two bytecodes of the main thread, which may be inside a
        # bridge's critical section: a lock it holds (not reentrant) would never be freed,
        # so a bridge whose lock stays taken is left alone rather than waited for forever.
        if _LIVE_LOCK.acquire(timeout=1.0):
            _LIVE_LOCK.release()
            for item in live_bridges():
                if item._state_lock.acquire(timeout=1.0):
                    item._state_lock.release()
                    item.close()
    finally:
        _SIGTERM_HOOKED = False
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _new_queue(sinks: Sequence[AsyncHandler], options: Mapping[str, Any]) -> LogQueue:
    """Make a LogQueue that may run on any loop, whichever loop (if any) runs this code.

    A queue's events are bound to the async library that is running where the queue is
    made; a bridge's queue runs later, on a loop or thread not known yet, so when this runs
    inside a loop the queue is made in a short-lived thread that has none.
    """
    if not _loop_running_here():
        return LogQueue(*sinks, **options)
    made: list[LogQueue] = []
    failed: list[BaseException] = []

    def make() -> None:
        try:
            made.append(LogQueue(*sinks, **options))
        except BaseException as exc:
            failed.append(exc)

    worker = threading.Thread(target=make, name="loopsink-config")
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return made[0]


def _drain_once(queue: LogQueue, backend: str, timeout: float) -> None:
    """Run a queue that never started just long enough to deliver its records and close."""

    async def main() -> None:
        async with queue:
            await queue.aclose(timeout)

    def run() -> None:
        anyio.run(main, backend=backend)

    worker = threading.Thread(target=run, name="loopsink-drain", daemon=True)
    try:
        worker.start()
    except RuntimeError:  # no new threads at interpreter shutdown (3.12+): run it here
        if not _loop_running_here():
            run()
        return
    worker.join(timeout + 2.0)


def _holding_logging_lock() -> bool:
    is_owned = getattr(getattr(logging, "_lock", None), "_is_owned", None)
    return bool(is_owned()) if is_owned is not None else False


def _loop_running_here() -> bool:
    return loop_running_here()


def _warn_stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
    except (OSError, ValueError, AttributeError):
        pass
