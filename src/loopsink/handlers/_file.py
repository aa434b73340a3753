"""FileHandler: the stdlib's file handler as an async sink, one write per batch."""

from __future__ import annotations

import io
import logging
import os
from typing import IO, Any

from .. import _fork
from .._handler import FORMATTER_ONLY_SINKS
from ._fileops import close_quietly
from ._stream import StreamHandler, _Kind

__all__ = ["FileHandler"]

_text_encoding = getattr(io, "text_encoding")  # noqa: B009 - absent from some typeshed stubs


def check_mode(mode: str, owner: str) -> None:
    """Refuse a mode that cannot write, with the modes that can."""
    if not isinstance(mode, str):
        raise TypeError(f"{owner} mode must be a str such as 'a' or 'w', got {mode!r}")
    if not any(c in mode for c in "awx+"):
        raise ValueError(
            f"{owner} mode must open the file for writing ('a', 'w', 'x'), got {mode!r}"
        )


class FileHandler(StreamHandler):
    """Writes formatted records to a file, as ``logging.FileHandler`` does.

    The file is opened at construction (so a wrong path fails at once, with the OS's
    error) unless ``delay`` is true, in which case it is opened by the first write. Each
    batch of records is formatted on the loop; the text is written behind by the sink's own
    thread, one ``write`` and one ``flush`` for up to 20 ms of batches (see
    :class:`StreamHandler`).

    Args:
        filename: path of the file; kept absolute in :attr:`baseFilename`.
        mode: ``'a'`` (default) appends, ``'w'`` truncates first.
        encoding: text encoding; ``None`` uses the locale's, as ``open`` does.
        delay: open the file only when the first record is written.
        errors: how encoding errors are handled, as for ``open``.
    """

    def __init__(
        self,
        filename: str | os.PathLike[str],
        mode: str = "a",
        encoding: str | None = None,
        delay: bool = False,
        errors: str | None = None,
    ) -> None:
        check_mode(mode, type(self).__name__)
        filename = os.fspath(filename)
        if not isinstance(filename, str):
            raise TypeError(f"{type(self).__name__} filename must be a str path, got {filename!r}")
        self.baseFilename = os.path.abspath(filename)
        self.mode = mode
        self.encoding = encoding
        if "b" not in mode:  # as open() resolves it, warning under -X warn_default_encoding
            self.encoding = _text_encoding(encoding)
        self.errors = errors
        self.delay = delay
        #: In a forked child: the descriptor the first open takes over (see _after_fork).
        self._inherited_fd: int | None = None
        if delay:
            if os.path.isdir(self.baseFilename):
                raise IsADirectoryError(
                    f"{type(self).__name__} was given a directory, not a file: {self.baseFilename}"
                )
            super().__init__(io.StringIO())
            self.stream = None
        else:
            super().__init__(self._open())
        self._kind = _Kind.SYNC  # also while delay leaves it unopened

    def _open(self) -> IO[Any]:
        """Open :attr:`baseFilename` with the handler's mode, encoding and errors (blocking).

        In a forked child, the first open takes the parent's file over (see _after_fork).
        """
        kept, self._inherited_fd = self._inherited_fd, None
        if kept is not None:
            return open(kept, self.mode, encoding=self.encoding, errors=self.errors)
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors)

    def _write_blocking(self, text: str) -> None:
        """Write ``text`` and flush; runs on the writer thread. Reopens a closed file."""
        if self.stream is None:
            if self.mode == "w" and self._closed:
                return  # the stdlib does not reopen (and so truncate) a closed 'w' file
            self.stream = self._open()
        self._write_to(self.stream, text)

    def _after_fork(self) -> None:
        """In a forked child: keep the file, never the parent's unflushed text.

        The parent's writer thread may have been between a write and its flush when the
        process forked; the child's copy of the file object then holds text that only the
        parent may write, and would write it again on its next flush or at exit; and if
        the thread was inside a write, the copy's lock stays held in the child. So the
        child points that copy's descriptor at the null device, keeps the copy for good
        without flushing or closing it, and writes through a duplicate of the descriptor,
        which shares the parent's open file (its offset and append mode), as a stdlib
        handler's child does.
        Only system calls here: nothing that imports may run in an at-fork hook.
        """
        super()._after_fork()
        stream = self.stream
        if stream is None:
            return
        try:
            old = stream.fileno()
            kept = os.dup(old)
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            return  # a closed or descriptor-less stream: nothing the child could flush
        self._inherited_fd = kept
        self.stream = None  # opened again from ``kept`` by the first write (see _open)
        # Never flushed nor closed here: the parent's writer thread may have been inside a
        # write when the process forked, and the lock it held on the file object stays
        # held in the child, where a flush would wait for it forever.
        _fork.release_inherited(old, stream)

    def _write_to(self, stream: IO[Any], text: str) -> None:
        """Write ``text`` to ``stream`` and flush (blocking).

        After a failure (a full disk, say) the stream is dropped with whatever it had
        buffered, so that the next batch reopens the file instead of writing a half-flushed
        buffer twice; it reopens in append mode, because what is there must stay. What the
        failed write did put in the file (records are counted lost, and the last of them
        torn mid-line) is cut off again, so the file ends where it ended before the write,
        the next record starts on a line of its own, and the count of lost records is the
        count of records missing from the file.
        """
        try:
            start: int | None = os.fstat(stream.fileno()).st_size
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            start = None
        try:
            stream.write(text)
            stream.flush()
        except BaseException:
            self.stream = None
            if "w" in self.mode:
                self.mode = self.mode.replace("w", "a")
            encoding = getattr(stream, "encoding", None)
            close_quietly(stream)  # may flush a little more: cut after it
            if start is not None and isinstance(encoding, str):
                self._cut_failed_write(start, text, encoding)
            raise

    def _cut_failed_write(self, start: int, text: str, encoding: str) -> None:
        """Truncate the file back to ``start`` if what follows is a prefix of ``text``.

        Anything else there (another process appending to the same file) is left alone.
        """
        try:
            expected = text.encode(encoding, self.errors or "strict")
            with open(self.baseFilename, "rb") as file:
                file.seek(start)
                tail = file.read(len(expected) + 1)
            if tail and expected.startswith(tail):
                os.truncate(self.baseFilename, start)
        except (OSError, ValueError):
            pass

    async def emit(self, record: logging.LogRecord) -> None:
        await self._output.run(self._write_blocking, self.format(record) + self.terminator)

    async def flush(self) -> None:
        """Write what is held, and flush the file."""
        await self._output.run(self._flush_blocking)

    def _flush_blocking(self) -> None:
        if self.stream is not None:
            self.stream.flush()

    async def close(self) -> None:
        """Write what is pending, then flush and close the file."""
        await self._output.run(self._close_file_blocking)
        await super().close()

    def _close_file_blocking(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            _flush_and_close(stream)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.baseFilename} ({logging.getLevelName(self.level)})>"


def _flush_and_close(stream: IO[Any]) -> None:
    try:
        stream.flush()
    finally:
        stream.close()


FORMATTER_ONLY_SINKS.update({FileHandler})
