"""Fork support: a child process gets a working logging path of its own.

A bridge whose queue runs in a thread (``start_in_thread``, or a configured bridge) cannot
be used as is after ``os.fork()``: the child has a copy of the queue, of the records the
parent had not written yet, and of the thread's state, but not the thread. Waiting for it
(a flush at exit, an ``overflow="block"`` put on a full queue) would hang forever, and
writing the copied records would write them twice.

So every such bridge registers here, and in the child (``os.register_at_fork``) each one
sets its copied queue aside (the parent's pending records stay the parent's to write) and
readies its sinks. When the child first logs through the bridge, a fresh queue over the
same sinks is made and its thread started; the child's exit (normal interpreter exit, or a
``multiprocessing`` child's, which skips ``atexit``) drains it.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from ._queue import LogQueue

__all__ = [
    "PendingQueue",
    "Renewable",
    "abandon",
    "at_child_exit",
    "register",
    "release_inherited",
    "report",
]


class Renewable(Protocol):
    def _renew_after_fork(self) -> None: ...


_RENEWABLE: weakref.WeakSet[Any] = weakref.WeakSet()
#: The parent's queues as copied into this child: kept alive (never garbage-collected, so
#: never reported as lost) and never run. Their records are the parent's.
_ABANDONED: list[LogQueue] = []


#: What a forked child inherited from its parent's connections (streams and transports of
#: the parent's event loop): kept alive, so that no finalizer ever runs on them here.
_INHERITED: list[object] = []


def release_inherited(fileno: int | None, *holders: object) -> None:
    """In a forked child: let go of a connection or file the parent used, touching nothing.

    The child's copy of the descriptor is pointed at ``/dev/null`` (``dup2``): the parent's
    connection is no longer held open by the child (it ends when the parent closes it, not
    when the last child exits), nothing is sent (no ``shutdown``, no TLS close_notify), and
    a later ``close()`` of that number by whatever still holds it closes only the null
    device, never a descriptor reused meanwhile. ``holders`` (the stream, the transport)
    are kept, unused, for good: a file object the parent's writer thread was inside when
    the process forked has its lock held here by a thread that did not come along, and
    flushing or closing it (its finalizer too) would wait for that lock forever.
    """
    _INHERITED.extend(holders)
    if fileno is None or fileno < 0:
        return
    try:
        null = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    try:
        os.dup2(null, fileno)
    except OSError:
        pass
    finally:
        os.close(null)


def register(item: Renewable) -> None:
    """Have ``item._renew_after_fork()`` called in every child forked from now on."""
    _RENEWABLE.add(item)


def abandon(queue: LogQueue) -> None:
    """Keep a copy of the parent's queue out of the way in this child, and ready its sinks
    for a fresh queue (they drop what the parent's thread held for them)."""
    _ABANDONED.append(queue)
    for sink in queue.sinks:
        sink._after_fork()


def report(text: str) -> None:
    """One line on stderr, straight to the descriptor (no lock a fork may have left held)."""
    try:
        os.write(2, (text + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def _before_fork() -> None:
    # A queue's thread that is still starting is importing (asyncio, anyio's backend): a
    # child forked now would inherit those modules half-initialized, their import locks
    # held by a thread it does not have, and hang on its first import of them. Let it
    # finish first (bounded by the bridge's timeout).
    for item in list(_RENEWABLE):
        hook = getattr(item, "_before_fork", None)
        if hook is not None:
            try:
                hook()
            except Exception as exc:
                report(f"loopsink: before fork, {item!r} failed: {exc!r}")


def _after_fork_in_child() -> None:
    # Nothing here may import: another thread of the parent may have held the import lock.
    for item in list(_RENEWABLE):
        try:
            item._renew_after_fork()
        except Exception as exc:  # noqa: PERF203 - one broken bridge must not stop the others
            report(f"loopsink: could not renew {item!r} after fork: {exc!r}")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def at_child_exit(func: Any) -> None:
    """Run ``func()`` when this (forked) process exits.

    ``threading._register_atexit`` runs at interpreter exit *and* when a ``multiprocessing``
    child ends (which skips ``atexit``); ``atexit`` is the fallback where it is missing.
    """
    register_at_exit = getattr(threading, "_register_atexit", None)
    if register_at_exit is not None:
        try:
            register_at_exit(func)
            return
        except RuntimeError:  # the interpreter is already shutting down
            return
    atexit.register(func)


class PendingQueue:
    """Stands in for a forked child's queue until the child first logs through it.

    Nothing that could import may run inside the at-fork hook (another thread of the parent
    may have held an import lock, and a LogQueue's events ask sniffio, which imports), so
    the fresh queue is made by ``renew()`` on the first ``put``, in ordinary code. It has
    what the bridge's hot path reads (``_fast_thread``, ``put``), so that path is unchanged.
    """

    _fast_thread = None

    def __init__(self, renew: Callable[[], LogQueue]) -> None:
        self._renew = renew

    def put(self, record: logging.LogRecord) -> bool:
        return self._renew().put(record)

    def put_call(self, record: logging.LogRecord, context: contextvars.Context | None) -> bool:
        return self._renew().put_call(record, context)

    def __repr__(self) -> str:
        return "<loopsink queue of a forked child, made on first use>"
