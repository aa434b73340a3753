"""QueueHandler and QueueListener: hand records across a queue to other handlers.

The queue may be an ``asyncio.Queue``, an anyio memory object stream, a ``queue.Queue`` /
``queue.SimpleQueue`` or a ``multiprocessing`` queue. Which calls are safe on the event loop
depends on the kind, so it is decided once, at construction:

- ``asyncio.Queue``: put with ``put_nowait`` on the loop, got with ``await get()``;
- an anyio memory object stream: ``send_nowait`` on the loop, ``await receive()``;
- ``queue.Queue``, ``queue.SimpleQueue``, ``multiprocessing.Queue``: ``put_nowait`` on the
  loop (it never waits: a full bounded queue is reported, not waited on); got with
  ``get(timeout=...)`` in a worker thread, a burst at a time;
- ``multiprocessing.SimpleQueue`` and manager proxies: ``put`` in a worker thread (it may
  wait on a pipe or a server); the listener reads proxies as ``queue.Queue`` and refuses a
  ``multiprocessing.SimpleQueue``, whose ``get`` has no timeout.

Plain worker processes, which run no event loop, log through the stdlib's own
``logging.handlers.QueueHandler``: it prepares records exactly as this one does (the tests
compare them attribute by attribute), and with a ``multiprocessing.Queue`` it never blocks.
"""

from __future__ import annotations

import copy
import enum
import logging
import queue as queue_module
import sys
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from .._compat import run_blocking, spawn_detached
from .._executor import executor_of
from .._handler import AsyncHandler
from .._tuning import LINGER, LISTENER_BURST, LISTENER_POLL
from .._turns import formatting

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["QueueHandler", "QueueListener"]

#: How long ``stop(timeout=...)`` waits for a cancelled listener task to end.
_CANCEL_GRACE = 1.0

#: Detached tasks on asyncio must be referenced until done, or the loop may drop them.


class _Kind(enum.Enum):
    ASYNCIO = "asyncio.Queue"
    STREAM = "anyio memory object stream"
    NOWAIT = "put_nowait/get queue"  # queue.Queue, SimpleQueue, multiprocessing.Queue
    THREAD = "blocking queue"  # multiprocessing.SimpleQueue, manager proxies


def _asyncio_queue_types() -> tuple[type, ...]:
    # asyncio is only looked up if already imported: an object cannot be an asyncio.Queue
    # otherwise, and the core stays free of asyncio imports.
    aio = sys.modules.get("asyncio")
    return (aio.Queue,) if aio is not None else ()


def _is_proxy(obj: object) -> bool:
    managers = sys.modules.get("multiprocessing.managers")
    return managers is not None and isinstance(obj, managers.BaseProxy)


def _is_mp_simple_queue(obj: object) -> bool:
    queues = sys.modules.get("multiprocessing.queues")
    return queues is not None and isinstance(obj, queues.SimpleQueue)


def _full_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [queue_module.Full, anyio.WouldBlock]
    aio = sys.modules.get("asyncio")
    if aio is not None:
        errors.append(aio.QueueFull)
    return tuple(errors)


def _describe_maxsize(q: Any) -> str:
    maxsize = getattr(q, "maxsize", None)
    if maxsize is None:
        maxsize = getattr(q, "_maxsize", None)
    if maxsize is None and isinstance(q, anyio.abc.ObjectSendStream):
        try:
            maxsize = q.statistics().max_buffer_size  # type: ignore[attr-defined]
        except Exception:
            maxsize = None
    return f" (maxsize {maxsize})" if maxsize is not None else ""


# --------------------------------------------------------------------------------------------
# QueueHandler


class QueueHandler(AsyncHandler):
    """Puts prepared records on a queue, for a :class:`QueueListener` (or anyone) to handle.

    :meth:`prepare` does what the stdlib's does on Python 3.11+: the record is formatted
    once (merging message and arguments, rendering the exception and stack), and a *copy*
    carries that text in ``msg`` and ``message`` with ``args``, ``exc_info``, ``exc_text``
    and ``stack_info`` cleared, so it pickles and other handlers still see the original
    (bpo-35726). :meth:`enqueue` is a coroutine here; override it to change how records
    are put.

    Putting never blocks the event loop: a queue that could block (a
    ``multiprocessing.SimpleQueue``, a manager proxy) is written from a worker thread, and a
    full bounded queue is not waited on: the record is dropped, reported to
    :meth:`handleError` and counted in :attr:`error_count`.

    Args:
        queue: an ``asyncio.Queue``, the send end of an anyio memory object stream, a
            ``queue.Queue``/``queue.SimpleQueue``, or a ``multiprocessing`` queue.
    """

    def __init__(self, queue: Any) -> None:
        super().__init__()
        self._kind = self._classify(queue)
        self.queue = queue
        #: The :class:`QueueListener` that serves this queue, or ``None``: CPython 3.12+'s
        #: attribute, on every Python. The stdlib's ``dictConfig`` fills it in from a
        #: ``listener`` key; loopsink's listener is started with ``await``, which
        #: ``dictConfig`` cannot do, so here it is yours to set.
        self.listener: QueueListener | None = None
        self._full = _full_errors()

    @staticmethod
    def _classify(q: Any) -> _Kind:
        if isinstance(q, anyio.abc.ObjectReceiveStream) and not isinstance(
            q, anyio.abc.ObjectSendStream
        ):
            raise TypeError(
                f"QueueHandler needs the send end of a memory object stream, got the "
                f"receive end {q!r}; pass the first item of anyio.create_memory_object_stream()"
            )
        if isinstance(q, anyio.abc.ObjectSendStream) and hasattr(q, "send_nowait"):
            return _Kind.STREAM
        if isinstance(q, _asyncio_queue_types()):
            return _Kind.ASYNCIO
        if _is_proxy(q) or _is_mp_simple_queue(q):
            return _Kind.THREAD
        if callable(getattr(q, "put_nowait", None)):
            return _Kind.NOWAIT
        if callable(getattr(q, "put", None)):
            return _Kind.THREAD
        raise TypeError(
            f"QueueHandler needs a queue with put_nowait() or put() (asyncio.Queue, "
            f"queue.Queue, multiprocessing.Queue) or an anyio memory object send stream, "
            f"got {q!r}"
        )

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """Return a picklable copy of ``record`` whose message is the formatted text."""
        text = self.format(record)
        # A copy, not the record itself: other handlers of the same logger must still see
        # the caller's args and exception (bpo-35726).
        prepared = copy.copy(record)
        prepared.message = text
        prepared.msg = text
        prepared.args = None
        prepared.exc_info = None
        prepared.exc_text = None
        prepared.stack_info = None
        return prepared

    async def enqueue(self, record: logging.LogRecord) -> None:
        """Put ``record`` on the queue without waiting for room; raise if it is full."""
        kind = self._kind
        if kind is _Kind.THREAD:
            await executor_of(self).run(self.queue.put, record)
            return
        try:
            if kind is _Kind.STREAM:
                self.queue.send_nowait(record)
            else:
                self.queue.put_nowait(record)
        except self._full as exc:
            raise queue_module.Full(
                f"{self.describe()}: the queue is full{_describe_maxsize(self.queue)}, so the "
                f"record was dropped rather than stall the event loop; give the queue a larger "
                f"maxsize or consume it faster"
            ) from exc

    async def emit(self, record: logging.LogRecord) -> None:
        """Enqueue the result of :meth:`prepare`."""
        await self.enqueue(self.prepare(record))

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        if type(self).emit is not QueueHandler.emit:  # a subclass's emit() must see each record
            await super().emit_batch(records)
            return
        if self._kind is _Kind.THREAD and type(self).enqueue is QueueHandler.enqueue:
            await self._emit_batch_in_thread(records)
            return
        turns = formatting(records)
        for record in records:
            if turns.due():
                await turns.pause()
            try:
                await self.enqueue(self.prepare(record))
            except Exception:
                self.handleError(record)

    async def _emit_batch_in_thread(self, records: Sequence[logging.LogRecord]) -> None:
        """One worker-thread hop for a whole batch on a queue whose ``put`` may wait."""
        await self.emit_each_in_thread(records, self.prepare, self.queue.put)

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<{type(self).__name__} ({level}) -> {type(self.queue).__name__}>"


# --------------------------------------------------------------------------------------------
# QueueListener

_EMPTY = object()  # a worker-thread poll found nothing in time


def _take_burst(q: Any, sentinel: object, done: int, limit: int, gather: float = 0.0) -> list[Any]:
    """Runs in a worker thread: wait briefly for one item, then take what else is ready.

    With ``gather``, a burst that is not yet full waits that long once for more items
    before it is taken: each burst handed back wakes the event loop from this thread, and
    where records trickle in that was a wake-up for every few records. Stops right after
    the sentinel so that nothing put after it is taken. ``done`` is how many
    ``task_done`` calls the previous burst still owes the queue.
    """
    if done:
        task_done = getattr(q, "task_done", None)
        if task_done is not None:
            for _ in range(done):
                task_done()
    try:
        item = q.get(True, LISTENER_POLL)
    except queue_module.Empty:
        return []
    items = [item]
    _take_ready(q, sentinel, limit, items)
    if gather and items[-1] is not sentinel and len(items) < limit:
        time.sleep(gather)  # one wake-up of this thread, not one per item put meanwhile
        _take_ready(q, sentinel, limit, items)
    return items


def _take_ready(q: Any, sentinel: object, limit: int, items: list[Any]) -> None:
    """Add to ``items`` what the queue holds now, up to ``limit`` items or the sentinel."""
    while items[-1] is not sentinel and len(items) < limit:
        try:
            items.append(q.get(False))
        except queue_module.Empty:  # noqa: PERF203 - the normal end of what is ready
            return


class QueueListener:
    """Takes records off a queue in a task of the event loop and hands them to handlers.

    The async twin of the stdlib's listener thread. ``await start()`` starts the task;
    ``await stop()`` puts the sentinel and returns once everything put before the call has
    been handled; ``async with listener:`` does both. Handlers may be loopsink sinks (each
    burst of records goes to one ``emit_batch`` under the sink's lock) or stdlib
    ``logging.Handler`` objects (called in a worker thread, so they may block). A blocking
    queue (``queue.Queue``, ``multiprocessing.Queue``) is read from a worker thread, which
    gathers what arrives for up to 20 ms after a record (or a burst of 1,024) before it
    hands the burst to the event loop: a record reaches the handlers up to 20 ms later, and
    a trickle from other threads or processes wakes the loop 50 times a second at most.

    As in the stdlib, a handler's filters always apply and its level only when
    ``respect_handler_level`` is true. A handler that fails reports to its own
    ``handleError``; the listener carries on.

    Args:
        queue: what :class:`QueueHandler` puts on: an ``asyncio.Queue``, the *receive* end of
            an anyio memory object stream, a ``queue.Queue``/``queue.SimpleQueue`` or a
            ``multiprocessing.Queue``.
        *handlers: loopsink sinks and/or stdlib handlers.
        respect_handler_level: skip a handler whose level is above the record's.
    """

    #: Put on the queue by :meth:`enqueue_sentinel`; the listener stops when it takes it.
    _sentinel: Any = None

    def __init__(
        self,
        queue: Any,
        *handlers: AsyncHandler | logging.Handler,
        respect_handler_level: bool = False,
    ) -> None:
        for handler in handlers:
            if not isinstance(handler, (AsyncHandler, logging.Handler)):
                raise TypeError(
                    f"QueueListener handlers must be loopsink sinks or logging.Handler "
                    f"objects, got {handler!r}"
                )
        self._kind = self._classify(queue)
        self.queue = queue
        self.handlers: tuple[AsyncHandler | logging.Handler, ...] = handlers
        self.respect_handler_level = respect_handler_level
        self._done: anyio.Event | None = None
        self._scope: anyio.CancelScope | None = None
        self._receiver: Any = None  # STREAM: a clone of the receive end, closed by stop()
        self._owed = 0  # task_done() calls owed to the queue for items taken and handled

    @staticmethod
    def _classify(q: Any) -> _Kind:
        if isinstance(q, anyio.abc.ObjectSendStream) and not isinstance(
            q, anyio.abc.ObjectReceiveStream
        ):
            raise TypeError(
                f"QueueListener needs the receive end of a memory object stream, got the send "
                f"end {q!r}; pass the second item of anyio.create_memory_object_stream()"
            )
        if isinstance(q, anyio.abc.ObjectReceiveStream):
            if not callable(getattr(q, "clone", None)):
                raise TypeError(
                    f"QueueListener needs an anyio memory object receive stream (with clone()), "
                    f"got {q!r}"
                )
            return _Kind.STREAM
        if isinstance(q, _asyncio_queue_types()):
            return _Kind.ASYNCIO
        if _is_mp_simple_queue(q):
            raise TypeError(
                f"QueueListener cannot read a multiprocessing.SimpleQueue ({q!r}): its get() has "
                f"no timeout, so the listener could never be stopped or cancelled while it "
                f"waits; use multiprocessing.Queue instead"
            )
        if callable(getattr(q, "get", None)):
            return _Kind.NOWAIT
        raise TypeError(
            f"QueueListener needs a queue with get() (asyncio.Queue, queue.Queue, "
            f"multiprocessing.Queue) or an anyio memory object receive stream, got {q!r}"
        )

    # -- the stdlib's overridable steps -------------------------------------------------------

    async def dequeue(self, block: bool) -> Any:
        """Take one item off the queue; wait for it when ``block`` is true.

        An anyio stream whose send ends are all closed (or which :meth:`stop` closed) yields
        the sentinel. Without ``block``, an empty queue raises ``queue.Empty`` as in the
        stdlib.
        """
        kind, q = self._kind, self.queue
        if kind is _Kind.ASYNCIO:
            if block:
                return await q.get()
            try:
                return q.get_nowait()
            except _asyncio_queue_empty() as exc:
                raise queue_module.Empty from exc
        if kind is _Kind.STREAM:
            return await self._receive(block)
        if not block:  # a multiprocessing queue or a proxy reads a pipe: not on the loop
            return await executor_of(self).run(q.get, False)
        while True:
            # waits on the queue: no lend, which would hold the loop up while it is empty
            items = await executor_of(self).run(
                _take_burst, q, self._sentinel, 0, 1, lend=False, fork_wait=False
            )
            if items:
                return items[0]

    async def _receive(self, block: bool) -> Any:
        receiver = self._receiver if self._receiver is not None else self.queue
        try:
            if block:
                return await receiver.receive()
            return receiver.receive_nowait()
        except anyio.WouldBlock as exc:
            raise queue_module.Empty from exc
        except anyio.EndOfStream:
            return self._sentinel
        except anyio.ClosedResourceError:
            if receiver is self.queue:
                return self._sentinel
        # stop() closed our clone: hand over what was sent before it, then the sentinel.
        try:
            return self.queue.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            return self._sentinel

    def prepare(self, record: Any) -> Any:
        """Return what the handlers get for ``record``: the record itself. Override to decode."""
        return record

    async def handle(self, record: Any) -> None:
        """Offer ``prepare(record)`` to every handler."""
        await self._handle_burst([self.prepare(record)])

    async def enqueue_sentinel(self) -> None:
        """Put the sentinel on the queue, waiting for room if it is full.

        Waiting is right here: the listener is emptying the queue, and :meth:`stop` must not
        lose the records ahead of the sentinel. A blocking queue is waited on in a worker
        thread. An anyio stream needs no sentinel: :meth:`stop` closes the listener's own
        receive end instead.
        """
        kind, q = self._kind, self.queue
        if kind is _Kind.STREAM:
            if self._receiver is not None:
                self._receiver.close()
            return
        if kind is _Kind.ASYNCIO:
            await q.put(self._sentinel)
            return
        # Not on the listener's executor: a put into a full queue waits for the listener,
        # whose takes run there.
        if _is_proxy(q):  # every call on a manager proxy is a round trip to its server
            await run_blocking(q.put, self._sentinel)
            return
        try:
            q.put_nowait(self._sentinel)
        except queue_module.Full:
            await run_blocking(q.put, self._sentinel)

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True from :meth:`start` until the listener has taken the sentinel."""
        return self._done is not None and not self._done.is_set()

    async def start(self) -> None:
        """Start the listener task on the running event loop."""
        if self.running:
            raise RuntimeError("this QueueListener is already running; call stop() first")
        if self._kind is _Kind.STREAM:
            self._receiver = self.queue.clone()
        self._done = anyio.Event()
        self._scope = spawn_detached(self._monitor, name=f"{self!r}")

    async def stop(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 - as aclose()
        """Handle everything put before the call, then stop. Does nothing if not running.

        Args:
            timeout: keyword-only, loopsink only. ``None`` (the default) waits as long as
                the handlers take, as the stdlib's ``stop`` does. Otherwise, after
                ``timeout`` seconds the listener is cancelled, what is still queued stays
                in the queue, and that is reported on stderr.

        Cancelling ``stop`` leaves the listener running; :meth:`cancel` stops it at once.
        """
        done = self._done
        if done is None:
            return
        if not done.is_set():
            with anyio.move_on_after(timeout) as deadline:
                if self._scope is None or not self._scope.cancel_called:
                    await self.enqueue_sentinel()
                await done.wait()
            if deadline.cancelled_caught:
                self.cancel()
                # A stdlib handler stuck in its worker thread cannot be interrupted: give
                # the task a moment to end, then stop waiting for it.
                with anyio.move_on_after(_CANCEL_GRACE):
                    await done.wait()
                _warn(
                    f"loopsink: {self!r}.stop(timeout={timeout}) ran out of time; what was "
                    f"not handled yet is left in the queue. Give stop() a longer timeout or "
                    f"find the slow handler.\n"
                )
        self._done = None
        self._scope = None
        self._receiver = None

    def cancel(self) -> None:
        """Stop the listener task now, leaving whatever is still queued (loopsink only).

        Then ``await stop()`` waits for the task to end, without putting a sentinel.
        """
        if self._scope is not None:
            self._scope.cancel()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self.stop()

    # -- the task -----------------------------------------------------------------------------

    async def _monitor(self) -> None:
        done = self._done
        try:
            await self._run()
        except Exception:
            _report_listener_error(self, "stopped: the queue could not be read")
        finally:
            if self._receiver is not None:
                self._receiver.close()  # our clone only: the caller's stream stays open
            if done is not None:
                done.set()

    async def _run(self) -> None:
        sentinel = self._sentinel
        custom_handle = type(self).handle is not QueueListener.handle
        while True:
            items = await self._next_burst()
            stop = False
            if items and items[-1] is sentinel:
                items.pop()
                stop = True
            if items:
                if custom_handle:
                    for item in items:
                        try:
                            await self.handle(item)
                        except Exception:  # noqa: PERF203 - one bad record must not cost the others
                            _report_listener_error(self, "handle() raised; the record is lost")
                else:
                    await self._handle_burst(self._prepare_all(items))
            self._owed += len(items) + stop
            if stop:
                await self._settle_task_done()
                return

    def _prepare_all(self, items: list[Any]) -> list[Any]:
        if type(self).prepare is QueueListener.prepare:
            return items
        prepared = []
        for item in items:
            try:
                prepared.append(self.prepare(item))
            except Exception:  # noqa: PERF203 - one bad record must not cost the others
                _report_listener_error(self, "prepare() raised; the record is lost")
        return prepared

    async def _next_burst(self) -> list[Any]:
        """Take the next item (waiting) and whatever else is ready, up to the sentinel."""
        kind, q, sentinel = self._kind, self.queue, self._sentinel
        if type(self).dequeue is not QueueListener.dequeue:
            await self._settle_task_done()
            return [await self.dequeue(True)]
        if kind is _Kind.NOWAIT:
            while True:
                owed, self._owed = self._owed, 0
                # waits on the queue: no lend, which would hold the loop up while it is
                # empty, and a fork need not wait for the wait to time out
                items = await executor_of(self).run(
                    _take_burst,
                    q,
                    sentinel,
                    owed,
                    LISTENER_BURST,
                    LINGER,
                    lend=False,
                    fork_wait=False,
                )
                if items:
                    return items
        await self._settle_task_done()
        items = [await self.dequeue(True)]
        while items[-1] is not sentinel and len(items) < LISTENER_BURST:
            try:
                items.append(await self.dequeue(False))
            except queue_module.Empty:  # noqa: PERF203 - the normal end of a burst
                break
        return items

    async def _settle_task_done(self) -> None:
        owed, self._owed = self._owed, 0
        task_done = getattr(self.queue, "task_done", None)
        if not owed or task_done is None:
            return
        if self._kind is _Kind.NOWAIT:
            await executor_of(self).run(_call_n, task_done, owed)
        else:
            _call_n(task_done, owed)

    async def _handle_burst(self, records: list[Any]) -> None:
        for handler in self.handlers:
            if isinstance(handler, AsyncHandler):
                await self._to_sink(handler, records)
            else:
                await executor_of(self).run(self._to_stdlib, handler, records)

    async def _to_sink(self, sink: AsyncHandler, records: list[Any]) -> None:
        respect = self.respect_handler_level
        accepted: list[logging.LogRecord] = []
        for record in records:
            if respect and record.levelno < sink.level:
                continue
            if sink.filters:
                try:
                    # A filter may hand back a replacement record (CPython 3.12+'s rule).
                    verdict = sink.apply_filters(record)
                except Exception:
                    sink.handleError(record)
                    continue
                if verdict is None:
                    continue
                record = verdict
            accepted.append(record)
        if not accepted:
            return
        async with sink.io_lock():
            try:
                await sink.emit_batch(accepted)
            except Exception:
                sink.report_batch_failure(accepted)

    def _to_stdlib(self, handler: logging.Handler, records: list[Any]) -> None:
        """Runs in a worker thread: what the stdlib listener thread does, for a burst."""
        respect = self.respect_handler_level
        for record in records:
            if respect and record.levelno < handler.level:
                continue
            try:
                handler.handle(record)
            except Exception:
                handler.handleError(record)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<QueueListener {state} {type(self.queue).__name__} handlers={len(self.handlers)}>"


def _call_n(func: Callable[[], object], count: int) -> None:
    for _ in range(count):
        func()


def _asyncio_queue_empty() -> type[BaseException]:
    aio = sys.modules.get("asyncio")
    return aio.QueueEmpty if aio is not None else queue_module.Empty


def _warn(text: str) -> None:
    try:
        sys.stderr.write(text)
    except (OSError, ValueError, AttributeError):
        pass


def _report_listener_error(listener: QueueListener, what: str) -> None:
    """The listener itself failed (not a handler): say so on stderr, never silently."""
    import traceback

    if not (logging.raiseExceptions and sys.stderr):
        return
    try:
        sys.stderr.write(f"--- Logging error ---\n{traceback.format_exc()}{listener!r}: {what}\n")
    except (OSError, ValueError):
        pass
