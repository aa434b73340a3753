"""The one place that asks "asyncio or trio?".

The core is written against anyio; the only thing anyio does not offer is a way for a
foreign thread to schedule a callback on the loop *without waiting for it*, which is what
the bridge needs to wake the queue without a round trip per record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.lowlevel

if TYPE_CHECKING:
    from ._executor import Executor

__all__ = [
    "ThreadsafeScheduler",
    "ThreadsafeTimer",
    "Wakeup",
    "current_backend",
    "current_loop_token",
    "loop_running_here",
    "run_blocking",
    "spawn_detached",
    "threadsafe_scheduler",
    "threadsafe_timer",
]

T = TypeVar("T")

#: Schedules a callback to run soon on the event loop; callable from any thread.
ThreadsafeScheduler = Callable[[Callable[[], object]], object]
#: Schedules a callback to run on the event loop once a delay (seconds) has passed; callable
#: from any thread.
ThreadsafeTimer = Callable[[float, Callable[[], object]], object]


#: anyio's backend modules, by the name loopsink (and anyio.run) uses for each.
_BACKEND_MODULES = {"anyio._backends._asyncio": "asyncio", "anyio._backends._trio": "trio"}


def current_backend() -> str:
    """The name of the async library running the current task (``asyncio`` or ``trio``).

    Asked of anyio itself (``anyio.lowlevel.current_token``, anyio 4.11+), not of sniffio:
    anyio stopped depending on sniffio, so a bare ``pip install loopsink`` does not have it.

    Raises:
        RuntimeError: no asyncio or trio event loop runs in this thread.
    """
    backend_class = anyio.lowlevel.current_token().backend_class
    module = backend_class.__module__
    try:
        return _BACKEND_MODULES[module]
    except KeyError:  # pragma: no cover - anyio supports only these two today
        raise RuntimeError(f"loopsink runs on asyncio or trio, not on {module!r}") from None


def loop_running_here() -> bool:
    """Whether an asyncio or trio event loop runs in the current thread."""
    try:
        anyio.lowlevel.current_token()
    except RuntimeError:  # anyio.NoEventLoopError
        return False
    return True


def current_loop_token() -> object:
    """An object that identifies the running event loop (the same object for its lifetime).

    The asyncio loop itself on asyncio, the ``TrioToken`` on trio.
    """
    return anyio.lowlevel.current_token().native_token


def threadsafe_scheduler() -> ThreadsafeScheduler:
    """Return a function that runs a callback on the current event loop, from any thread.

    Must be called from inside the loop. The returned function never blocks.
    """
    backend = current_backend()
    if backend == "asyncio":
        import asyncio

        return asyncio.get_running_loop().call_soon_threadsafe
    if backend == "trio":
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon
    raise RuntimeError(f"loopsink runs on asyncio or trio, not on {backend!r}")


def threadsafe_timer() -> ThreadsafeTimer:
    """Return a function that runs a callback on the current event loop after a delay.

    Must be called from inside the loop; the returned function may be called from any thread
    and never blocks. The loop wakes once to arm the timer and once when it is due, however
    many records arrive in between: that is what lets the records of many requests of a
    sync program share one pass of the queue's worker. The callback must not raise.
    """
    backend = current_backend()
    if backend == "asyncio":
        import asyncio

        loop = asyncio.get_running_loop()
        arm = loop.call_later

        def after_asyncio(delay: float, callback: Callable[[], object]) -> object:
            return loop.call_soon_threadsafe(arm, delay, callback)

        return after_asyncio
    if backend == "trio":
        import trio

        token = trio.lowlevel.current_trio_token()

        def after_trio(delay: float, callback: Callable[[], object]) -> object:
            async def wait_then_call() -> None:
                await trio.sleep(delay)
                callback()

            # a system task: cancelled, not waited for, when the run ends
            token.run_sync_soon(trio.lowlevel.spawn_system_task, wait_then_call)
            return None

        return after_trio
    raise RuntimeError(f"loopsink runs on asyncio or trio, not on {backend!r}")


def _resolve(future: Any) -> None:
    if not future.done():
        future.set_result(None)


class Wakeup:
    """Wakes the one task waiting on it: cheaper than an ``anyio.Event`` made per wait.

    A queue worker waits for records on every pass of the loop; with an ``anyio.Event``
    each pass built an event and went through anyio's wrapper and asyncio's event. This
    parks the task on a bare future (asyncio) or reschedules it directly (trio). A
    ``fire`` with nobody waiting does nothing: the waiter checks its condition first.
    Both are called on the event loop's thread only.
    """

    __slots__ = ("_trio", "_waiter")

    def __init__(self) -> None:
        self._waiter: Any = None  # an asyncio Future or a trio Task
        self._trio: bool | None = None

    async def wait(self, at_most: float | None = None) -> None:
        """Wait until :meth:`fire`, or for ``at_most`` seconds if that is given.

        A bare timer on the waiter, rather than a cancel scope around the wait: a worker
        that polls waits this way on every pass of the loop.
        """
        if self._trio is None:
            self._trio = current_backend() == "trio"
        if self._trio:
            if at_most is None:
                await self._wait_trio()
            else:
                import trio

                with trio.move_on_after(at_most):
                    await self._wait_trio()
            return
        import asyncio

        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiter = future
        timer = None if at_most is None else loop.call_later(at_most, _resolve, future)
        try:
            await future
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def _wait_trio(self) -> None:
        import trio

        self._waiter = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            self._waiter = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def fire(self) -> None:
        waiter = self._waiter
        if waiter is None:
            return
        if self._trio:
            import trio

            self._waiter = None
            trio.lowlevel.reschedule(waiter)
        elif not waiter.done():
            waiter.set_result(None)


async def run_blocking(func: Callable[..., T], *args: object) -> T:
    """Run a blocking call on an idle I/O thread of a small shared pool.

    For blocking calls that belong to no sink (the receiver's sockets, a listener's
    sentinel); a sink runs its own on its executor (:func:`loopsink._executor.executor_of`),
    so that they keep their order. The call follows the executor's rule for the loop: one
    short lend of the GIL when it is handed over, then a wake-up when it is done, never a
    poll. Cancelling waits for the call to end, as ``anyio.to_thread.run_sync`` does.

    At interpreter shutdown (``logging.shutdown()`` from ``atexit``) Python 3.12+ refuses
    to start new threads; the call then runs inline, which at that point stalls nobody.
    """
    from ._executor import Executor

    try:
        executor = _IDLE_EXECUTORS.pop()
    except IndexError:
        executor = Executor("loopsink worker")
    try:
        return await executor.run(func, *args)
    finally:
        if executor.idle:
            _IDLE_EXECUTORS.append(executor)


#: Idle threads of run_blocking, reused (each is an Executor with a thread of its own).
_IDLE_EXECUTORS: list[Executor] = []


#: Strong references to detached asyncio tasks: the loop itself keeps only weak ones.
_DETACHED: set[Any] = set()


def spawn_detached(func: Callable[[], Awaitable[None]], *, name: str) -> anyio.CancelScope:
    """Run ``func()`` as a task of the current event loop that nobody awaits.

    For the few objects whose lifecycle is not a ``with`` block (``QueueListener.start``
    mirrors the stdlib's daemon thread; ``MemoryHandler``'s flush timer). On asyncio it is a
    loop task, on trio a system task. ``func`` must catch its own errors. Returns a cancel
    scope that ``func`` runs in: cancel it to stop the task, even before it has started.
    """
    scope = anyio.CancelScope()

    async def body() -> None:
        with scope:
            await func()

    backend = current_backend()
    if backend == "asyncio":
        import asyncio

        task = asyncio.get_running_loop().create_task(body(), name=name)
        _DETACHED.add(task)
        task.add_done_callback(_DETACHED.discard)
    elif backend == "trio":
        import trio

        trio.lowlevel.spawn_system_task(body, name=name)
    else:  # pragma: no cover - anyio supports only these two
        raise RuntimeError(f"loopsink runs on asyncio or trio, not on {backend!r}")
    return scope
