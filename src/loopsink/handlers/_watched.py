"""WatchedFileHandler: a file sink that follows external rotation (logrotate, newsyslog)."""

from __future__ import annotations

import os
import time

from .._handler import FORMATTER_ONLY_SINKS
from ._file import FileHandler
from ._fileops import check_target, close_quietly, explain_open_error

__all__ = ["WatchedFileHandler"]

#: A path found missing is looked at again this much later before the sink creates it.
#: logrotate's ``create`` mode renames the file, then creates the new one with ``O_EXCL``; a
#: writer that creates the path in between has its new file renamed aside as
#: ``app.log-<date>.backup``, and the records in it with it (seen in a test: 50 records).
_ROTATOR_GRACE = 0.01

_sleep = time.sleep  # the writer thread's pause (a test stands in for the rotator here)


class WatchedFileHandler(FileHandler):
    """Writes to a file and reopens it when something else has moved or deleted it.

    Before each write the path is ``stat``-ed and compared with the open file (device and
    inode, as in the stdlib); when they differ, the old file is flushed and closed and the
    path opened again. The check runs in the same worker-thread call as the write, once
    per batch rather than once per record, so following logrotate costs one ``stat`` for
    a whole burst of records. Unlike the stdlib, a path found missing is looked at again
    10 ms later before the sink creates it, so that it never races logrotate's ``create``
    (which would move a file created in between aside as a ``.backup``, records and all).

    Args:
        filename: path of the log file.
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
        path = os.path.abspath(os.fspath(filename))
        owner = type(self).__name__
        check_target(path, owner, delay=delay)
        try:
            super().__init__(filename, mode, encoding=encoding, delay=delay, errors=errors)
        except IsADirectoryError:
            raise
        except OSError as exc:
            raise explain_open_error(exc, path, owner) from exc
        self.dev, self.ino = -1, -1
        self._statstream()

    def _statstream(self) -> None:
        if self.stream is not None:
            st = os.fstat(self.stream.fileno())
            self.dev, self.ino = st.st_dev, st.st_ino

    def _reopen_if_needed_blocking(self) -> None:
        # One stat by path, then fstat of the new descriptor: the stdlib's order (bpo-14632),
        # which keeps the window where the path and the descriptor disagree small.
        try:
            st: os.stat_result | None = os.stat(self.baseFilename)
        except FileNotFoundError:
            st = None
        if st is not None and st.st_dev == self.dev and st.st_ino == self.ino:
            return
        stream = self.stream
        if stream is None:
            return
        if st is None:
            # Moved or deleted. A rotator that moved it is about to create the path: give
            # it the moment it needs rather than race it (this runs on the writer thread).
            _sleep(_ROTATOR_GRACE)
        self.stream = None  # if the reopen fails, the next write tries again (bpo-21742)
        close_quietly(stream)
        self.stream = self._open()
        self._statstream()

    async def reopenIfNeeded(self) -> None:
        """Reopen the file if the path no longer names the open file (on the writer thread)."""
        await self._output.run(self._reopen_if_needed_blocking)

    def _write_blocking(self, text: str) -> None:
        """Check the path, then write and flush ``text``: one writer-thread call per batch.

        After a failed write the file is closed with what it buffered, so that records
        already reported as failed are not written later; the next batch reopens it in
        append mode (the sink recovers when the cause, such as a full disk, goes away).
        """
        self._reopen_if_needed_blocking()
        stream = self.stream
        if stream is None:
            if self.mode == "w" and self._closed:
                return  # the stdlib does not reopen (and so truncate) a closed 'w' file
            stream = self.stream = self._open()
            self._statstream()
        self._write_to(stream, text)


FORMATTER_ONLY_SINKS.update({WatchedFileHandler})
