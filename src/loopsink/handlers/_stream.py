"""StreamHandler and NullHandler: the stdlib's core-module handlers as async sinks."""

from __future__ import annotations

import enum
import inspect
import io
import logging
import sys
from collections.abc import Sequence
from typing import Any

import anyio.abc

from .._handler import FORMATTER_ONLY_SINKS, AsyncHandler
from .._writebehind import WriteBehind

__all__ = ["NullHandler", "StreamHandler"]


class _Kind(enum.Enum):
    """How a stream is written to, decided once at construction."""

    MEMORY = "memory"  # io.StringIO / io.BytesIO-like: never blocks, written on the loop
    SYNC = "sync"  # write()/flush() that block: run by the sink's writer thread
    ASYNC_WRITE = "async write"  # write()/flush() coroutines: aiofiles and alike
    WRITER = "writer"  # asyncio.StreamWriter: write() buffers, drain() awaits
    BYTES = "bytes"  # anyio ByteSendStream: send(bytes)
    OBJECTS = "objects"  # anyio ObjectSendStream[str], e.g. TextSendStream: send(str)


def _classify(stream: Any) -> _Kind:
    if isinstance(stream, anyio.abc.ByteSendStream):
        return _Kind.BYTES
    if isinstance(stream, anyio.abc.ObjectSendStream):
        return _Kind.OBJECTS
    write = getattr(stream, "write", None)
    if write is None:
        raise TypeError(
            f"StreamHandler needs a stream with write() (a file, sys.stderr, an aiofiles file, "
            f"an asyncio StreamWriter) or an anyio send stream, got {stream!r}"
        )
    if inspect.iscoroutinefunction(write):
        return _Kind.ASYNC_WRITE
    if inspect.iscoroutinefunction(getattr(stream, "drain", None)):
        return _Kind.WRITER
    if isinstance(stream, io.StringIO):
        return _Kind.MEMORY
    return _Kind.SYNC


class StreamHandler(AsyncHandler):
    """Writes formatted records to a stream, each followed by :attr:`terminator`.

    ``stream`` defaults to ``sys.stderr``. A blocking stream (a file object, ``sys.stderr``)
    is written by a thread of the sink's own, so the event loop never waits on it for more
    than half a millisecond. Under a queue, formatted text is held for up to 20 ms and
    written in one ``write`` and one ``flush``; :meth:`flush` writes it at once and waits
    for it. An async stream (an aiofiles file, an asyncio ``StreamWriter``, an anyio byte
    or text stream) is awaited.

    Args:
        stream: where to write; ``None`` means ``sys.stderr`` at construction time.
        encoding: keyword-only; how text is encoded for byte streams (``StreamWriter``,
            anyio ``ByteSendStream``).
    """

    #: Written after every record, as in the stdlib; set it to ``""`` for none.
    terminator = "\n"

    #: Large: the more records one batch carries, the less the queue's fixed cost per batch
    #: weighs. Formatting still yields to other tasks every 0.2 ms.
    max_batch_size = 16_384

    def __init__(self, stream: Any = None, *, encoding: str = "utf-8") -> None:
        super().__init__()
        if stream is None:
            stream = sys.stderr
        self._kind = _classify(stream)
        self.stream: Any = stream
        self._byte_encoding = encoding
        self._output = WriteBehind(self, self._write_blocking, f"loopsink-{type(self).__name__}")

    def _after_fork(self) -> None:
        super()._after_fork()
        self._output.discard_after_fork()

    async def setStream(self, stream: Any) -> Any:
        """Flush the current stream and switch to ``stream``; return the old one.

        As in the stdlib, nothing happens and ``None`` is returned when ``stream`` is the
        stream already in use.
        """
        if stream is self.stream:
            return None
        kind = _classify(stream)
        old = self.stream
        async with self.io_lock():
            await self.flush()
            self.stream, self._kind = stream, kind
        return old

    async def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record) + self.terminator
        await self._write(text)

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        text, written = await self.format_lines(records, self.terminator)
        if not written:
            return
        if self._kind is _Kind.SYNC:
            due = self._output.hold(text, len(written), written[0])
            if due or not self.linger_watched:  # called directly, not by a queue: write now
                await self._output.push()
            if not self.linger_watched:
                await self._output.drain()
            return
        try:
            await self._write(text)
        except Exception:
            self.report_batch_failure(written)

    def _write_blocking(self, text: str) -> None:
        """Write ``text`` and flush; runs on the writer thread."""
        _write_and_flush(self.stream, text)

    def linger_deadline(self) -> float | None:
        """When the held text must be written (see :meth:`AsyncHandler.linger_deadline`)."""
        return self._output.deadline()

    async def write_held(self) -> None:
        """Start writing the held text (see :meth:`AsyncHandler.write_held`)."""
        await self._output.push()

    @property
    def unwritten(self) -> int:
        """Records held, or in a write the thread has not finished (see
        :attr:`AsyncHandler.unwritten`): this sink holds its text its own way."""
        return self._output.unwritten + super().unwritten

    async def _write(self, text: str) -> None:
        stream, kind = self.stream, self._kind
        if kind is _Kind.SYNC:
            await self._output.run(self._write_blocking, text)
        elif kind is _Kind.MEMORY:
            stream.write(text)
        elif kind is _Kind.ASYNC_WRITE:
            await stream.write(text)
            flush = getattr(stream, "flush", None)
            if flush is not None:
                await flush()
        elif kind is _Kind.WRITER:
            stream.write(text.encode(self._byte_encoding))
            await stream.drain()
        elif kind is _Kind.BYTES:
            await stream.send(text.encode(self._byte_encoding))
        else:
            await stream.send(text)

    async def flush(self) -> None:
        """Flush the stream; for a blocking one, once the writer thread has written all."""
        stream, kind = self.stream, self._kind
        if stream is None:
            return
        if kind is _Kind.SYNC:
            await self._output.drain()
            flush = getattr(stream, "flush", None)
            if flush is not None:
                await self._output.run(flush)
        elif kind is _Kind.ASYNC_WRITE:
            flush = getattr(stream, "flush", None)
            if flush is not None:
                await flush()
        elif kind is _Kind.WRITER:
            await stream.drain()

    async def close(self) -> None:
        """Write what is held, then let the writer thread go."""
        await self._output.drain()
        self._output.stop()
        await super().close()

    def __repr__(self) -> str:
        name = getattr(self.stream, "name", None)
        label = f" {name}" if isinstance(name, str) else ""
        return f"<{type(self).__name__}{label} ({logging.getLevelName(self.level)})>"


def _write_and_flush(stream: Any, text: str) -> None:
    stream.write(text)
    flush = getattr(stream, "flush", None)
    if flush is not None:
        flush()


class NullHandler(AsyncHandler):
    """Does nothing with the records it gets: for libraries that must not configure output."""

    async def handle(self, record: logging.LogRecord) -> None:
        """Do nothing and return ``None``, as the stdlib's ``NullHandler.handle`` does."""

    async def emit(self, record: logging.LogRecord) -> None:
        pass

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        pass


FORMATTER_ONLY_SINKS.update({StreamHandler, NullHandler})
