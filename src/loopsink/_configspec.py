"""Parsing a bridge's dictConfig entry: options in, a validated :class:`BridgeSpec` out.

Everything here runs once, inside ``dictConfig`` (or ``ConfiguredBridge(...)``), and does
not start, stop or touch a queue: how a bridge's queue runs is :mod:`loopsink._hosting`'s
job. Each problem raises a ``ValueError`` that names the handler, the key, the value and
the fix; the sink entries themselves are read by :mod:`loopsink._sinkentries`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._handler import AsyncHandler
from ._queue import OverflowPolicy
from ._sinkentries import build_sinks, did_you_mean, handler_label

__all__ = [
    "BRIDGE_OPTIONS",
    "BridgeSpec",
    "StartPolicy",
    "bridge_spec",
    "split_bridge_options",
]

StartPolicy = Literal["auto", "loop", "thread"]
_START_POLICIES: tuple[str, ...] = ("auto", "loop", "thread")
_BACKENDS: tuple[str, ...] = ("asyncio", "trio")

#: The options :func:`loopsink.config.bridge` takes, for the "did you mean" hint.
BRIDGE_OPTIONS = (
    "sinks",
    "level",
    "capacity",
    "overflow",
    "name",
    "start",
    "backend",
    "timeout",
    "warn_after",
)


@dataclass(frozen=True)
class BridgeSpec:
    """A bridge's options, checked, with its sinks built; what the hosting code runs.

    ``where`` is the ``handler 'name': `` prefix of every later error message (empty when
    the bridge is built from Python rather than by ``dictConfig``). ``level`` is left as
    given: the bridge's ``setLevel`` checks it, as any handler's does.
    """

    where: str
    sinks: tuple[AsyncHandler, ...]
    level: int | str
    capacity: int
    overflow: OverflowPolicy
    name: str | None
    start: StartPolicy
    backend: str
    timeout: float
    warn_after: float

    @property
    def queue_options(self) -> dict[str, Any]:
        """The keyword arguments of the bridge's :class:`~loopsink.LogQueue`."""
        return {"capacity": self.capacity, "overflow": self.overflow, "name": self.name}


def split_bridge_options(options: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Check the option names of a ``bridge`` entry; return ``(sinks, the other options)``."""
    sinks = options.get("sinks")
    where = handler_label(sinks, *options.values())
    unknown = [key for key in options if key not in BRIDGE_OPTIONS]
    if unknown:
        raise ValueError(
            f"{where}unknown option {unknown[0]!r}{did_you_mean(unknown[0], BRIDGE_OPTIONS)}; "
            f"a loopsink bridge takes {', '.join(BRIDGE_OPTIONS)}"
        )
    if sinks is None:
        raise ValueError(
            f"{where}a loopsink bridge needs 'sinks': a list of sink entries such as "
            f"{{'class': 'FileHandler', 'filename': 'app.log'}}"
        )
    rest = dict(options)
    del rest["sinks"]
    return sinks, rest


def bridge_spec(
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
) -> BridgeSpec:
    """Check a bridge's options and build its sinks (the defaults are the bridge's own).

    ``capacity`` and ``overflow`` are checked by the queue that the hosting code makes from
    them, and ``level`` by the bridge's ``setLevel``; everything else is checked here.
    """
    where = handler_label(sinks)
    if start not in _START_POLICIES:
        raise ValueError(
            f"{where}start must be one of {', '.join(map(repr, _START_POLICIES))}, got {start!r}"
        )
    if backend not in _BACKENDS:
        raise ValueError(f"{where}backend must be 'asyncio' or 'trio', got {backend!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"{where}timeout must be a positive number of seconds, got {timeout!r}")
    if warn_after is not None and (
        isinstance(warn_after, bool) or not isinstance(warn_after, (int, float)) or warn_after < 0
    ):
        raise ValueError(
            f"{where}warn_after must be a number of seconds (0 or None: never), got {warn_after!r}"
        )
    built = build_sinks(sinks, where=where)
    if overflow is None:
        # every producer of a thread-started queue is a foreign thread, which may wait; an
        # app's loop never may
        overflow = "block" if start == "thread" else "drop_newest"
    return BridgeSpec(
        where=where,
        sinks=built,
        level=level,
        capacity=capacity,
        overflow=overflow,
        name=name,
        start=start,
        backend=backend,
        timeout=float(timeout),
        warn_after=float(warn_after or 0.0),
    )
