"""WriteBehind: formatted output held for a few milliseconds, then written in one job.

A sink that writes to a blocking stream formats each batch on the loop and hands the text
(or bytes) here, through :meth:`~loopsink.AsyncHandler.write_behind` or directly. It is
written by a :class:`~loopsink._writer.LentWriter` once it has waited :data:`LINGER`
seconds or grown to :data:`PUSH_CHARS` characters, whichever comes first, so that a busy
application pays for one trip to the writer thread per few milliseconds, not one per
batch. The queue's worker writes what is left once the linger is over and no batch did
(:meth:`~loopsink.AsyncHandler.write_held`), and ``flush``/``close`` write everything at once.

Records whose text is held are counted as emitted; a write that fails later is reported
with :meth:`~loopsink.AsyncHandler.report_late_failure`, which takes them back out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._executor import executor_of
from ._tuning import LINGER, MAX_HELD_CHARS, PUSH_CHARS
from ._writer import LentWriter

if TYPE_CHECKING:
    from ._handler import AsyncHandler

__all__ = ["WriteBehind"]

_clock = time.monotonic


class WriteBehind:
    """Holds a sink's formatted text and writes it through its own thread, in order.

    Args:
        sink: the sink, told of failed writes.
        write: ``write(data)``, blocking; runs on the writer thread. ``data`` is what was
            held, joined: ``str`` or ``bytes``, as it was handed to :meth:`hold`.
        name: the writer thread's name.
    """

    def __init__(self, sink: AsyncHandler, write: Callable[[Any], object], name: str) -> None:
        self._sink = sink
        self._write = write
        self._writer = LentWriter(name, executor=executor_of(sink))
        self._texts: list[Any] = []  # all str, or all bytes
        self._chars = 0
        self._since = 0.0
        # the first record of what is held, and how many records it holds
        self._first: logging.LogRecord | None = None
        self._count = 0
        # the same for the write the thread is running
        self._running: tuple[logging.LogRecord, int] | None = None

    @property
    def held(self) -> bool:
        return bool(self._texts)

    @property
    def unwritten(self) -> int:
        """Records whose text is held, or in a write the thread has not finished."""
        running = self._running
        if running is not None and self._writer.busy:
            return self._count + running[1]
        return self._count

    def deadline(self) -> float | None:
        """When held text must be written (``time.monotonic``), or ``None`` if nothing waits.

        While a write that outlived its lend still runs (a stalled disk), nothing can be
        written before it ends: look again one linger later, whatever is held meanwhile.
        """
        if self._writer.busy and not self._collect():
            return _clock() + LINGER
        if self._texts:
            return self._since + LINGER
        return None

    def hold(self, text: str | bytes, records: int, first: logging.LogRecord) -> bool:
        """Keep ``text`` (of ``records`` records) for the next write; ``True`` when one is due.

        ``text`` is ``str`` or ``bytes``; what is held at once must be all one or the other.
        """
        if self._texts and type(text) is not type(self._texts[0]):
            raise TypeError(
                f"{self._sink.describe()} handed {type(text).__name__} to be written while "
                f"{type(self._texts[0]).__name__} is held: hand over one type only"
            )
        if not self._texts:
            self._since = _clock()
            self._first = first
        self._texts.append(text)
        self._chars += len(text)
        self._count += records
        return self._chars >= PUSH_CHARS or _clock() - self._since >= LINGER

    async def push(self) -> None:
        """Hand what is held to the thread, unless it is still busy with the last write.

        While a slow write runs, text keeps waiting here, up to :data:`MAX_HELD_CHARS`;
        past that, this waits for the write to finish (and the queue's backlog, then its
        overflow policy, takes the pressure).
        """
        writer = self._writer
        if writer.busy and not self._collect():
            if self._chars < MAX_HELD_CHARS:
                return
            await writer.finish()
            self._collect()
        if not self._texts:
            return
        texts, self._texts, self._chars = self._texts, [], 0
        first, count, self._first, self._count = self._first, self._count, None, 0
        assert first is not None
        self._running = (first, count)
        text = texts[0] if len(texts) == 1 else texts[0][:0].join(texts)
        if writer.start(self._write, text):
            self._collect()

    async def drain(self) -> None:
        """Write everything held and wait until it is written."""
        await self.push()
        if self._writer.busy:
            await self._writer.finish()
            self._collect()
        if self._texts:  # held while an earlier write was still running
            await self.push()
            if self._writer.busy:
                await self._writer.finish()
                self._collect()

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` on the writer thread after everything held is written."""
        await self.drain()
        return await self._writer.run(func, *args)

    def _collect(self) -> bool:
        """Pick up the result of the running write, if it has finished; report a failure."""
        if not self._writer.collect():
            return False
        running, self._running = self._running, None
        ok, value = self._writer.result
        if not ok and running is not None:
            self._sink.report_late_failure(value, *running)
        return True

    def stop(self) -> None:
        self._writer.stop()

    def discard_after_fork(self) -> None:
        """In a forked child: drop the parent's held text, which the parent writes itself."""
        self._texts, self._chars, self._first, self._count = [], 0, None, 0
        self._running = None
        self._writer.discard_after_fork()
