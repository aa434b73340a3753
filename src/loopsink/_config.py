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
defined) fails inside ``dictConfig`` with a message naming the key (the options are checked by
:mod:`loopsink._configspec`, the sink entries read by :mod:`loopsink._sinkentries`). The life
of the queue (run by :mod:`loopsink._hosting`):

* ``start="auto"`` (the default): the queue starts on the first record if no event loop has
  claimed it before; it then runs in a daemon thread (``start_in_thread`` semantics), and
  ``logging.shutdown()`` drains it at exit. A loop helper (:func:`run_bridges`, the
  ``loopsink.contrib`` helpers) starts it on the app's loop instead, moving it there from
  its thread if a record started one first (the bridge's copy-free path needs the loop).
* ``start="loop"``: records wait in the queue's bounded intake until a loop helper starts it
  on the app's loop (uvicorn configures logging before its loop exists); if none has after
  ``warn_after`` seconds, a warning says so once; if no loop ever does, the records are
  delivered at exit (or at SIGTERM) from a short-lived thread.
* ``start="thread"``: the queue starts in a daemon thread at configuration time (sync
  programs: Django, Flask, gunicorn sync workers).

When a loop helper ends (the app shuts down) the queue is drained and closed and the bridge
starts a new queue over the same sinks, so records logged after the app's shutdown (uvicorn's
"Finished server process") follow the same policy instead of being lost.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from ._configerrors import remember
from ._configspec import StartPolicy, bridge_spec, split_bridge_options
from ._hosting import HostedBridge, live_bridges
from ._queue import OverflowPolicy

__all__ = ["ConfiguredBridge", "StartPolicy", "bridge", "configured_bridges", "run_bridges"]


class ConfiguredBridge(HostedBridge):
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
        warn_after: with ``start="loop"``, when records have waited this many seconds and
            no loop helper has started the queue, say so once on stderr (the records are
            then written at exit). ``None`` or ``0`` turns the warning off.
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
        warn_after: float | None = 5.0,
    ) -> None:
        super().__init__(
            bridge_spec(
                sinks,
                level=level,
                capacity=capacity,
                overflow=overflow,
                name=name,
                start=start,
                backend=backend,
                timeout=timeout,
                warn_after=warn_after,
            )
        )

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
    try:
        return _bridge(options)
    except ValueError as exc:
        # One exception, not a chain: dictConfig wraps it in its own "Unable to configure
        # handler" error, so anything more would bury the message further. The exit hook
        # repeats it as the last line if it ends the program.
        error = ValueError(str(exc))
        remember(error)
        raise error from None


def _bridge(options: dict[str, Any]) -> ConfiguredBridge:
    sinks, kwargs = split_bridge_options(options)
    return ConfiguredBridge(sinks, **kwargs)


def configured_bridges() -> list[ConfiguredBridge]:
    """The configured bridges that are not closed, oldest first."""
    return [item for item in live_bridges() if isinstance(item, ConfiguredBridge)]


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
