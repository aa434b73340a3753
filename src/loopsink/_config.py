"""dictConfig glue: declare a bridge and its sinks in a logging configuration dictionary.

A ``handlers`` entry whose factory is :func:`bridge` builds a :class:`ConfiguredBridge`: a
:class:`~loopsink.LoggingBridge` that owns its :class:`~loopsink.LogQueue` and its sinks, and
knows how to get itself started, because whoever configures logging (uvicorn, Django,
gunicorn, a script) runs before any event loop exists::

    "handlers": {
        "loopsink": {
            "()": "loopsink.config.bridge",
            "level": "INFO",
            "sinks": {
                "file": {"class": "FileHandler", "filename": "app.log", "formatter": "plain"},
            },
        },
    }

Every problem (an unknown sink, an option the sink does not take, a formatter that is not
defined) fails inside ``dictConfig`` with a message naming the key. The life of the queue:

* ``start="auto"`` (the default): the queue starts on the first record if no event loop has
  claimed it before; it then runs in a daemon thread (``start_in_thread`` semantics), and
  ``logging.shutdown()`` drains it at exit. A loop helper (:func:`run_bridges`, the
  ``loopsink.contrib`` helpers) that runs first starts it on the app's loop instead.
* ``start="loop"``: records wait in the queue's bounded intake until a loop helper starts it
  on the app's loop (uvicorn configures logging before its loop exists); if no loop ever
  does, the records are delivered at exit from a short-lived thread.
* ``start="thread"``: the queue starts in a daemon thread at configuration time (sync
  programs: Django, Flask, gunicorn sync workers).

When a loop helper ends (the app shuts down) the queue is drained and closed and the bridge
starts a new queue over the same sinks, so records logged after the app's shutdown (uvicorn's
"Finished server process") follow the same policy instead of being lost.
"""

from __future__ import annotations

import difflib
import enum
import importlib
import inspect
import itertools
import logging
import os
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Literal

import anyio
import anyio.to_thread

from ._bridge import LoggingBridge, ThreadedQueue
from ._compat import loop_running_here
from ._handler import AsyncHandler
from ._queue import LogQueue, OverflowPolicy

__all__ = ["ConfiguredBridge", "StartPolicy", "bridge", "configured_bridges", "run_bridges"]

StartPolicy = Literal["auto", "loop", "thread"]
_START_POLICIES: tuple[str, ...] = ("auto", "loop", "thread")
_BACKENDS: tuple[str, ...] = ("asyncio", "trio")

#: Keys of a sink entry that are not constructor arguments (as in a dictConfig handler).
_SINK_META_KEYS = ("class", "()", "level", "formatter", "filters", "name", ".")

#: Options that dictConfig turns from lists into tuples for the stdlib's handlers; YAML and
#: JSON have no tuples, and the sinks keep the stdlib's tuple-typed signatures.
_TUPLE_OPTIONS = frozenset({"address", "mailhost", "credentials", "secure"})

#: The options :func:`bridge` takes, for the "did you mean" hint.
_BRIDGE_OPTIONS = (
    "sinks",
    "level",
    "capacity",
    "overflow",
    "name",
    "start",
    "backend",
    "timeout",
)


class _State(enum.Enum):
    IDLE = "idle"  # the current queue has not started; records wait in its intake
    STARTING = "starting"  # a thread is being started for it
    THREAD = "thread"  # running in a daemon thread of its own
    LOOP = "loop"  # running on an application's loop, under a helper
    DRAINING = "draining"  # the previous queue is closing; records wait in the next one
    FORKED = "forked"  # inherited through fork(): its queue and thread belong to the parent
    CLOSED = "closed"


#: Every bridge built by this module that is not closed yet, for :func:`run_bridges`.
_LIVE: weakref.WeakSet[ConfiguredBridge] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()

#: A logger attached to nothing: ThreadedQueue detaches its bridge from a logger on close,
#: and a configured bridge is attached (by dictConfig) to loggers it does not know about.
_NOWHERE = logging.Logger("loopsink.config.unattached")


class ConfiguredBridge(LoggingBridge):
    """A bridge that owns its queue and sinks and starts itself; built by :func:`bridge`.

    Use it through ``dictConfig`` (``"()": "loopsink.config.bridge"``) or directly from
    Python with sink objects. See the module documentation for the ``start`` policies.

    Args:
        sinks: the sinks, as objects or as dictConfig-style entries (a list, or a mapping
            from sink name to entry).
        level: records below it are not queued.
        capacity: the queue's capacity (records waiting in the intake and per sink).
        overflow: the queue's overflow policy; default ``"block"`` with ``start="thread"``
            (every producer is a foreign thread), ``"drop_newest"`` otherwise (the app's
            loop must never wait).
        name: the queue's name, in stats and reports; defaults to the handler's name.
        start: ``"auto"``, ``"loop"`` or ``"thread"``.
        backend: the event loop a thread runs: ``"asyncio"`` or ``"trio"``.
        timeout: how long a drain (at exit, at a helper's end) may take, in seconds.
    """

    def __init__(
        self,
        sinks: Any,
        *,
        level: int | str = logging.NOTSET,
        capacity: int = 10_000,
        overflow: OverflowPolicy | None = None,
        name: str | None = None,
        start: StartPolicy = "auto",
        backend: str = "asyncio",
        timeout: float = 5.0,
    ) -> None:
        where = _handler_label(sinks)
        if start not in _START_POLICIES:
            raise ValueError(
                f"{where}start must be one of {', '.join(map(repr, _START_POLICIES))}, "
                f"got {start!r}"
            )
        if backend not in _BACKENDS:
            raise ValueError(f"{where}backend must be 'asyncio' or 'trio', got {backend!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(
                f"{where}timeout must be a positive number of seconds, got {timeout!r}"
            )
        built = build_sinks(sinks, where=where)
        if overflow is None:
            overflow = "block" if start == "thread" else "drop_newest"
        self._queue_options: dict[str, Any] = {
            "capacity": capacity,
            "overflow": overflow,
            "name": name,
        }
        try:
            queue = _new_queue(built, self._queue_options)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}{exc}") from exc
        try:
            super().__init__(queue, level)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}level: {exc}") from exc
        self._sinks = built
        self._queue_named = name is not None
        self._start_policy: str = start
        self._backend = backend
        self._timeout = float(timeout)
        self._state = _State.IDLE
        self._state_lock = threading.Lock()
        self._threaded: ThreadedQueue | None = None
        self._starter: threading.Thread | None = None
        self._fork_reported = False
        self._order = next(_COUNTER)
        with _LIVE_LOCK:
            _LIVE.add(self)
        if start == "thread":
            self._start_thread()

    # -- what dictConfig calls -----------------------------------------------------------

    def set_name(self, name: str | None) -> None:
        super().set_name(name)  # type: ignore[arg-type]  # the stdlib accepts None
        if not self._queue_named and name:
            # the queue takes the handler's name (dictConfig's key), this one and the next
            self._queue_options["name"] = name
            self.queue.name = name

    name = property(logging.Handler.get_name, set_name)

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        """A formatter on the bridge is the default of every sink that has none of its own."""
        super().setFormatter(fmt)
        for sink in self._sinks:
            if sink.formatter is None:
                sink.setFormatter(fmt)

    # -- the hot path ---------------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> bool:
        state = self._state
        if state is _State.IDLE and self._start_policy != "loop":
            self._start_thread()
        elif state is _State.FORKED:
            self._refuse_after_fork()
            return False
        return super().handle(record)

    def _refuse_after_fork(self) -> None:
        """Say once, loudly, that this child process cannot use the parent's bridge."""
        if self._fork_reported:
            return
        self._fork_reported = True
        _warn_stderr(
            f"loopsink: {self!r} was declared before this process forked (pid {os.getpid()}); "
            f"its queue runs in the parent, so this process's records are not delivered. "
            f"Declare loopsink bridges after the fork (gunicorn: in post_worker_init).\n"
        )

    # -- starting and stopping --------------------------------------------------------------

    @property
    def state(self) -> str:
        """Where the queue is: ``idle``, ``starting``, ``thread``, ``loop``, ``draining``,
        ``forked`` (inherited by a child process, which cannot use it) or ``closed``."""
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
            runner = ThreadedQueue(
                queue,
                LoggingBridge(queue),
                _NOWHERE,
                backend=self._backend,
                default_timeout=self._timeout,
            )
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

    def _next_generation(self, state: _State) -> LogQueue:
        """Give the bridge a fresh queue over the same sinks, in ``state``; return the old one.

        Records logged from now on wait in the new queue's intake. It must not start before
        the old one has closed its sinks (``DRAINING``), or two loops would share them.
        """
        with self._state_lock:
            old = self.queue
            if self._state is _State.CLOSED:
                return old
            for sink in self._sinks:
                # The file was truncated when first opened; reopening it for the new queue
                # must append, or it would erase what the old queue wrote.
                if getattr(sink, "mode", None) == "w" and hasattr(sink, "baseFilename"):
                    sink.mode = "a"  # type: ignore[attr-defined]
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
        is logged later. If it already runs in its own thread it stays there, and the exit
        waits for its full flush (in a worker thread: the loop keeps running).
        """
        deadline = self._timeout if close_timeout is None else close_timeout
        if self._state is _State.STARTING:
            await anyio.to_thread.run_sync(self._wait_started, deadline)
        with self._state_lock:
            state = self._state
            if state is _State.IDLE:
                self._state = _State.LOOP
            queue = self.queue
            runner = self._threaded
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
        # FORKED: the queue, its thread and its records are the parent's business.

    def __repr__(self) -> str:
        label = f" {self.get_name()!r}" if self.get_name() else ""
        return (
            f"<ConfiguredBridge{label} ({logging.getLevelName(self.level)}) "
            f"{self._state.value} start={self._start_policy!r} sinks={len(self._sinks)}>"
        )


def bridge(**options: Any) -> ConfiguredBridge:
    """The dictConfig factory: ``"()": "loopsink.config.bridge"`` in a handler entry.

    Takes the options of :class:`ConfiguredBridge` (``sinks`` is required). ``level``,
    ``formatter`` and ``filters`` of the handler entry are applied by ``dictConfig`` itself
    to the bridge; a ``formatter`` on the bridge is the default of sinks without one.
    Raises ``ValueError`` naming the wrong key for anything it cannot use.
    """
    sinks = options.get("sinks")
    where = _handler_label(sinks)
    unknown = [key for key in options if key not in _BRIDGE_OPTIONS]
    if unknown:
        raise ValueError(
            f"{where}unknown option {unknown[0]!r}{_did_you_mean(unknown[0], _BRIDGE_OPTIONS)}; "
            f"a loopsink bridge takes {', '.join(_BRIDGE_OPTIONS)}"
        )
    if sinks is None:
        raise ValueError(
            f"{where}a loopsink bridge needs 'sinks': a list of sink entries such as "
            f"{{'class': 'FileHandler', 'filename': 'app.log'}}"
        )
    kwargs = dict(options)
    del kwargs["sinks"]
    return ConfiguredBridge(sinks, **kwargs)


def configured_bridges() -> list[ConfiguredBridge]:
    """The configured bridges that are not closed, oldest first."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    return sorted(live, key=_creation_order)


@asynccontextmanager
async def run_bridges(
    *, close_timeout: float | None = None
) -> AsyncIterator[list[ConfiguredBridge]]:
    """Run every configured bridge on the current event loop while the block runs.

    This is what the ``loopsink.contrib`` helpers call at application start-up; call it
    yourself around the body of an asyncio or trio program. On exit every record logged so
    far is delivered and flushed (each bridge within ``close_timeout`` s; by default its
    own ``timeout``).
    """
    bridges = configured_bridges()
    async with AsyncExitStack() as stack:
        for item in bridges:
            await stack.enter_async_context(item.serve(close_timeout=close_timeout))
        yield bridges


# -- building sinks from entries ---------------------------------------------------------------


def build_sinks(spec: Any, *, where: str = "") -> tuple[AsyncHandler, ...]:
    """Turn the ``sinks`` option (a list or a name → entry mapping) into sink objects."""
    configurator = getattr(spec, "configurator", None)
    items: list[tuple[str, str | None, Any]] = []
    if isinstance(spec, Mapping):
        for key in list(spec):
            if not isinstance(key, str):
                raise ValueError(f"{where}sinks: sink names must be strings, got {key!r}")
            items.append((f"sinks.{key}", key, spec[key]))
    elif isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
        # index access: dictConfig's ConvertingList resolves ext:// and cfg:// on __getitem__
        items.extend((f"sinks[{index}]", None, spec[index]) for index in range(len(spec)))
    elif isinstance(spec, AsyncHandler):
        items.append(("sinks", None, spec))
    else:
        raise ValueError(
            f"{where}sinks must be a list of sink entries or a mapping from sink name to "
            f"entry, got {spec!r}"
        )
    if not items:
        raise ValueError(f"{where}sinks is empty; declare at least one sink")
    return tuple(
        _build_sink(entry, path=path, name=name, where=where, configurator=configurator)
        for path, name, entry in items
    )


def _build_sink(
    entry: Any, *, path: str, name: str | None, where: str, configurator: Any
) -> AsyncHandler:
    if isinstance(entry, AsyncHandler):
        if name is not None and entry.name is None:
            entry.name = name
        return entry
    if isinstance(entry, logging.Handler):
        raise ValueError(
            f"{where}{path}: {entry!r} is a stdlib handler; use its loopsink twin "
            f"(loopsink.{type(entry).__name__}) as a sink"
        )
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"{where}{path} must be a sink entry such as {{'class': 'FileHandler', "
            f"'filename': 'app.log'}} or a sink object, got {entry!r}"
        )
    configurator = getattr(entry, "configurator", configurator)
    keys = list(entry)
    for key in keys:
        if not isinstance(key, str):
            raise ValueError(f"{where}{path}: option names must be strings, got {key!r}")
    if "()" in entry:
        factory = entry["()"]
        if not callable(factory):
            factory = _import(str(factory), f"{where}{path}.()")
        label = getattr(factory, "__name__", repr(factory))
        check_signature = False
    elif "class" in entry:
        factory = _resolve_sink_class(entry["class"], f"{where}{path}.class")
        label = factory.__name__
        check_signature = True
    else:
        raise ValueError(
            f"{where}{path} has no 'class': name the sink, e.g. 'class': 'FileHandler'"
        )
    here = f"{where}{path} ({label})"
    kwargs: dict[str, Any] = {}
    for key in keys:
        if key in _SINK_META_KEYS:
            continue
        if not key.isidentifier():
            raise ValueError(f"{here}: {key!r} is not a valid option name")
        kwargs[key] = _plain(
            entry[key], key, path=f"{where}{path}.{key}", configurator=configurator
        )
    if check_signature:
        _check_options(factory, kwargs, here)
    try:
        sink = factory(**kwargs)
    except Exception as exc:
        raise ValueError(f"{here}: {exc}") from exc
    if not isinstance(sink, AsyncHandler):
        raise ValueError(f"{here} made {sink!r}, which is not a loopsink sink (AsyncHandler)")
    sink_name = entry["name"] if "name" in entry else name
    if sink_name is not None:
        sink.name = str(sink_name)
    if "level" in entry:
        try:
            sink.setLevel(entry["level"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{here}.level: {exc}") from exc
    if entry.get("formatter") is not None:
        sink.setFormatter(
            _lookup(
                entry["formatter"],
                "formatters",
                logging.Formatter,
                f"{here}.formatter",
                configurator,
            )
        )
    filters = entry.get("filters")
    if filters is not None:
        if isinstance(filters, (str, bytes)) or not isinstance(filters, Sequence):
            raise ValueError(f"{here}.filters must be a list of filter names, got {filters!r}")
        for index in range(len(filters)):
            sink.addFilter(
                _lookup(filters[index], "filters", None, f"{here}.filters[{index}]", configurator)
            )
    props = entry.get(".")
    if props is not None:
        if not isinstance(props, Mapping):
            raise ValueError(f"{here}.'.' must map attribute names to values, got {props!r}")
        for attr in list(props):
            setattr(sink, attr, props[attr])
    return sink


def _resolve_sink_class(value: Any, where: str) -> type[AsyncHandler]:
    if isinstance(value, type):
        cls: Any = value
    elif isinstance(value, str):
        if "." not in value:
            cls = _known_sinks().get(value)
            if cls is None:
                raise ValueError(
                    f"{where}: unknown sink {value!r}{_did_you_mean(value, _known_sinks())}; "
                    f"loopsink's sinks are {', '.join(sorted(_known_sinks()))}, or give a "
                    f"dotted path to your own AsyncHandler subclass"
                )
        else:
            cls = _import(value, where)
    else:
        raise ValueError(f"{where} must be a sink class name such as 'FileHandler', got {value!r}")
    if isinstance(cls, type) and issubclass(cls, AsyncHandler):
        return cls
    if isinstance(cls, type) and issubclass(cls, logging.Handler):
        twin = cls.__name__ if cls.__name__ in _known_sinks() else None
        hint = f"; use loopsink.{twin}" if twin else ""
        raise ValueError(
            f"{where}: {value!r} is a stdlib handler, not a loopsink sink{hint}. To keep it a "
            f"stdlib handler, declare it as a dictConfig handler of its own"
        )
    raise ValueError(f"{where}: {value!r} is not a loopsink sink (an AsyncHandler subclass)")


def _known_sinks() -> dict[str, type[AsyncHandler]]:
    from . import handlers

    found: dict[str, type[AsyncHandler]] = {}
    for attr in getattr(handlers, "__all__", ()):
        obj = getattr(handlers, attr, None)
        if isinstance(obj, type) and issubclass(obj, AsyncHandler):
            found[attr] = obj
    return found


def _import(dotted: str, where: str) -> Any:
    module_name, _, attr = dotted.rpartition(".")
    # "loopsink.FileHandler" and "loopsink.handlers.FileHandler" both work; so does any
    # "package.module.Name" that imports.
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{where}: cannot import {module_name!r} for {dotted!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"{where}: module {module_name!r} has no attribute {attr!r}") from None


def _check_options(factory: Callable[..., Any], kwargs: Mapping[str, Any], here: str) -> None:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to check against
        return
    accepted = [
        p.name
        for p in params.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    ]
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in accepted:
                raise ValueError(
                    f"{here}: unknown option {key!r}{_did_you_mean(key, accepted)}; "
                    f"it takes {', '.join(accepted) or 'no options'}"
                )
    missing = [
        p.name
        for p in params.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.default is p.empty
        and p.name not in kwargs
    ]
    if missing:
        raise ValueError(f"{here}: missing required option {missing[0]!r}")


def _lookup(value: Any, section: str, kind: type | None, where: str, configurator: Any) -> Any:
    """Resolve a formatter or filter given by its name in the dictConfig sections."""
    if not isinstance(value, str):
        if kind is not None and not isinstance(value, kind):
            raise ValueError(f"{where} must be a {kind.__name__} or a name, got {value!r}")
        return value
    if configurator is None:
        raise ValueError(
            f"{where}: names such as {value!r} work inside logging.config.dictConfig; from "
            f"Python pass the object itself"
        )
    defined = configurator.config.get(section, {})
    if value not in defined:
        names = ", ".join(map(repr, defined)) or "none"
        raise ValueError(
            f"{where}: no {section[:-1]} named {value!r}{_did_you_mean(value, list(defined))} "
            f"in the {section!r} section (defined: {names})"
        )
    return defined[value]


def _plain(value: Any, key: str, *, path: str, configurator: Any) -> Any:
    """Unwrap dictConfig's converting containers; build nested sink entries (a target)."""
    if isinstance(value, Mapping):
        if "class" in value or "()" in value:
            return _build_sink(value, path=path, name=None, where="", configurator=configurator)
        return {k: value[k] for k in list(value)}
    if isinstance(value, (list, tuple)):
        items = [value[i] for i in range(len(value))]
        if key in _TUPLE_OPTIONS or isinstance(value, tuple):
            return tuple(items)
        return items
    return value


# -- helpers ---------------------------------------------------------------------------------


def _handler_label(sinks: Any) -> str:
    """``handler 'name': `` when dictConfig is building us, from its converting containers."""
    parent = getattr(sinks, "parent", None)
    key = getattr(parent, "key", None)
    return f"handler {key!r}: " if isinstance(key, str) else ""


def _did_you_mean(value: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_COUNTER = itertools.count()


def _creation_order(item: ConfiguredBridge) -> int:
    return item._order


def _after_fork_in_child() -> None:
    # The thread or loop that runs each bridge's queue exists in the parent only; waiting
    # for it here (a flush, a close by a new dictConfig) would hang forever.
    global _LIVE_LOCK
    _LIVE_LOCK = threading.Lock()
    for item in list(_LIVE):
        item._state_lock = threading.Lock()
        item._state = _State.FORKED


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
