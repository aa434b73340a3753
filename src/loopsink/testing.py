"""Helpers for testing code that logs through loopsink, without any I/O.

``CapturingSink`` keeps what it is given in memory; ``capture_records`` runs a queue with
one and bridges a logger into it for the duration of a ``with`` block::

    async with capture_records() as captured:
        logging.getLogger("app").warning("disk %d%% full", 93)
    assert captured.messages == ["disk 93% full"]
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import anyio

from ._bridge import install
from ._handler import AsyncHandler

__all__ = ["CapturingSink", "capture_records"]


class CapturingSink(AsyncHandler):
    """A sink that appends every record it gets to :attr:`records`."""

    def __init__(self, level: int | str = logging.NOTSET) -> None:
        super().__init__(level)
        #: The records received, in order.
        self.records: list[logging.LogRecord] = []
        #: How many times ``emit_batch`` was called (useful to check batching).
        self.batches = 0
        #: How many times ``flush`` was called.
        self.flushes = 0
        self._changed: anyio.Event | None = None

    async def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._notify()

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        self.batches += 1
        self.records.extend(records)
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def wait_for(self, predicate: Callable[[list[logging.LogRecord]], bool]) -> None:
        """Wait until ``predicate(self.records)`` is true; bound it with ``anyio.fail_after``.

        Checked after every batch the sink receives, so no polling is involved.
        """
        while not predicate(self.records):
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    async def flush(self) -> None:
        self.flushes += 1

    @property
    def messages(self) -> list[str]:
        """The merged messages of the records received, in order."""
        return [r.getMessage() for r in self.records]

    @property
    def lines(self) -> list[str]:
        """The records as this sink's formatter renders them."""
        return [self.format(r) for r in self.records]

    def clear(self) -> None:
        self.records.clear()


@asynccontextmanager
async def capture_records(
    logger: logging.Logger | str | None = None, level: int | str = logging.NOTSET
) -> AsyncIterator[CapturingSink]:
    """Capture what ``logger`` (the root logger by default) logs inside the block.

    The queue is flushed before the block's value is read back, so on exit ``records``
    holds everything logged inside it. ``level`` also lowers the logger's own level for
    the duration, so that records at ``level`` are not filtered out before the bridge.
    """
    target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    sink = CapturingSink()
    previous = target.level
    numeric = logging._checkLevel(level)  # type: ignore[attr-defined]
    if numeric:
        target.setLevel(numeric)
    try:
        async with install(sink, logger=target, level=numeric):
            yield sink
    finally:
        target.setLevel(previous)
