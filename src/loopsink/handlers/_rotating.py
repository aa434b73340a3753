"""The rotating file sinks: BaseRotatingHandler, RotatingFileHandler, TimedRotatingFileHandler.

They produce the files the stdlib's handlers produce (same names, same rollover moments,
same lines in each file) while the event loop never waits on the disk:

* a batch is formatted on the loop, then cut where the stdlib would have rolled over: the
  records before the cut are written with one ``write`` in a worker thread, the rollover
  runs (renames, deletes, ``stat`` in worker threads), then the rest follows. No line is
  split across files, lost or written twice;
* the size rule of ``RotatingFileHandler`` is the stdlib's (bytes already in the file plus
  the characters of the next ``"%s\\n" % format(record)`` reaching ``maxBytes``), worked out
  from a size the sink tracks instead of a ``seek``/``tell`` per record;
* ``TimedRotatingFileHandler`` judges each record by its ``created`` time, which is the
  moment the stdlib's handler would have seen it, so a backlog that drains after midnight
  still lands in the files of the day it was logged.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import IO, Any, Literal

import anyio

from .._context import in_context, run_each_in_context
from .._handler import FORMATTER_ONLY_SINKS
from .._record import OwnRecord, plain_text
from .._turns import formatting_steps
from ._file import FileHandler
from ._fileops import (
    InterprocessLock,
    check_target,
    close_quietly,
    encoded_length_function,
    explain_open_error,
    gzip_rotate,
    is_regular,
    remove_if_exists,
)
from ._schedule import interval_stamp, next_rollover, schedule

__all__ = ["BaseRotatingHandler", "RotatingFileHandler", "TimedRotatingFileHandler"]

Namer = Callable[[str], "str | Awaitable[str]"]
Rotator = Callable[[str, str], "object | Awaitable[object]"]
Compression = Literal["gzip"]


def _is_async_callable(func: object) -> bool:
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - an instance with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


class BaseRotatingHandler(FileHandler):
    """Base of the rotating file sinks; not meant to be used directly (as in the stdlib).

    ``namer`` and ``rotator`` work as in the stdlib and may be plain functions or coroutine
    functions. A plain ``rotator`` runs in a worker thread (it does file I/O); a coroutine
    ``rotator`` is awaited on the loop. A plain ``namer`` runs on the loop (it should be a
    fast pure function, as the stdlib's docs ask). An exception raised by either is
    reported through :meth:`handleError` for the record that triggered the rollover, which
    is then not written, exactly as in the stdlib.

    Args:
        filename: path of the log file.
        mode: how the file is opened.
        encoding: text encoding; ``None`` uses the locale's, as ``open`` does.
        delay: open the file only when the first record is written.
        errors: how encoding errors are handled, as for ``open``.
        compress: keyword-only; ``"gzip"`` compresses every rotated file in a worker thread
            and names it with ``.gz`` appended (``app.log.1.gz``). The archive is written
            to a temporary name and renamed, so a complete ``.gz`` or none is ever present.
        multiprocess: keyword-only; take an exclusive ``fcntl.flock`` on ``<filename>.lock``
            around every write and rollover, and reopen the file when another process has
            rotated it, so several processes can share one rotating log without losing or
            misplacing a line.
        max_age: keyword-only; at each rollover also delete rotated files whose last
            modification is more than this many seconds ago (retention by age, on top of
            ``backupCount``).
    """

    #: ``rotation_filename`` passes default names through this callable when it is set.
    namer: Namer | None = None
    #: ``rotate`` delegates to this callable when it is set.
    rotator: Rotator | None = None

    def __init__(
        self,
        filename: str | os.PathLike[str],
        mode: str,
        encoding: str | None = None,
        delay: bool = False,
        errors: str | None = None,
        *,
        compress: Compression | None = None,
        multiprocess: bool = False,
        max_age: float | None = None,
    ) -> None:
        owner = type(self).__name__
        if compress not in (None, "gzip"):
            raise ValueError(f"{owner} compress must be None or 'gzip', got {compress!r}")
        if not isinstance(multiprocess, bool):
            raise TypeError(f"{owner} multiprocess must be True or False, got {multiprocess!r}")
        if max_age is not None:
            if isinstance(max_age, bool) or not isinstance(max_age, (int, float)):
                raise TypeError(
                    f"{owner} max_age must be seconds (a number) or None, got {max_age!r}"
                )
            if not max_age > 0:
                raise ValueError(f"{owner} max_age must be more than 0 seconds, got {max_age!r}")
        if multiprocess and sys.platform == "win32":  # pragma: no cover - POSIX CI
            raise ValueError(f"{owner} multiprocess=True needs fcntl.flock, which Windows lacks")
        path = os.path.abspath(os.fspath(filename))
        check_target(path, owner, delay=delay)
        try:
            super().__init__(filename, mode, encoding=encoding, delay=delay, errors=errors)
        except IsADirectoryError:
            raise
        except OSError as exc:
            raise explain_open_error(exc, path, owner) from exc
        self.compress: Compression | None = compress
        self.multiprocess = multiprocess
        self.max_age = max_age
        self._encoded_length: Callable[[str], int] = encoded_length_function(self.encoding, errors)
        self._ascii_identity = self._encoded_length("\n~") == 2
        self._process_lock = InterprocessLock(self.baseFilename + ".lock") if multiprocess else None
        self._lock_depth = 0
        self._shared = ""
        #: (device, inode) of the open file, to notice another process's rollover.
        self._identity: tuple[int, int] | None = None
        #: Bytes in the current file (planned records included); None when unknown.
        self._size: int | None = None
        #: False for a target that is not a regular file (/dev/null): never rotated.
        self._regular = True
        #: The time of the record whose arrival triggered the rollover in progress.
        self._rollover_time: float | None = None
        self._track_blocking()  # the constructor may block: the stdlib's opens the file

    # -- names and rotation -----------------------------------------------------------------

    def rotation_filename(self, default_name: str) -> str:
        """The name a rotated file gets: ``namer(default_name)`` when a namer is set.

        With ``compress="gzip"`` the name ends in ``.gz``. A coroutine ``namer`` is awaited
        by the rollover itself; this sync method cannot await it and says so.
        """
        namer = self.namer
        if not callable(namer):
            return self._compressed(default_name)
        name = namer(default_name)
        if inspect.isawaitable(name):
            if inspect.iscoroutine(name):
                name.close()
            raise TypeError(
                f"{type(self).__name__}.namer {namer!r} is async, so rotation_filename() "
                f"(a sync method) cannot call it; rollovers await it themselves"
            )
        return self._compressed(name)

    async def _rotation_name(self, default_name: str) -> str:
        """``rotation_filename`` that also awaits a coroutine ``namer``."""
        if type(self).rotation_filename is not BaseRotatingHandler.rotation_filename:
            return self.rotation_filename(default_name)  # overridden: the user's rule
        namer = self.namer
        if not callable(namer):
            return self._compressed(default_name)
        name = namer(default_name)
        if inspect.isawaitable(name):
            name = await name
        return self._compressed(name)

    def _compressed(self, name: str) -> str:
        if self.compress == "gzip" and not name.endswith(".gz"):
            return name + ".gz"
        return name

    async def rotate(self, source: str, dest: str) -> None:
        """Move the current log ``source`` to ``dest``, or hand both to :attr:`rotator`.

        The default renames (compresses with ``compress="gzip"``) in a worker thread and
        does nothing when ``source`` does not exist (a delayed file never opened).
        """
        rotator = self.rotator
        if not callable(rotator):
            if self.compress == "gzip":
                await self._output.run(gzip_rotate, source, dest)
            else:
                await self._output.run(_rename_if_exists, source, dest)
            return
        if _is_async_callable(rotator):
            await rotator(source, dest)  # type: ignore[misc]
            return
        result = await self._output.run(rotator, source, dest)
        if inspect.isawaitable(result):
            await result

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` must go to a fresh file. Subclasses decide; no I/O here."""
        return False

    async def doRollover(self) -> None:
        """Close the current file, rotate it, and open a fresh one. Subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement doRollover()")

    # -- the write path ---------------------------------------------------------------------

    async def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record) + self.terminator
        await self._write_records([record], [text], raising=True)

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        texts, written = await self._format_each(records)
        if written:
            await self._write_records(written, texts, raising=False)

    async def _format_each(
        self, records: Sequence[logging.LogRecord]
    ) -> tuple[list[str], list[logging.LogRecord]]:
        """Format each record (with terminator) on the loop, in turns with the other tasks.

        A record whose formatting raises goes to handleError and is left out.
        """
        texts: list[str] = []
        done: list[logging.LogRecord] = []
        formats = self._batch_formatter()
        fmt, many = formats.one, formats.many
        in_contexts = self.needs_context()
        term = self.terminator
        add = texts.append
        async for _, chunk in formatting_steps(records):
            try:  # most chunks never raise
                made = run_each_in_context(chunk, many) if in_contexts else many(chunk)
                texts.extend([text + term for text in made])
            except Exception:  # again one by one, to find the records that raise
                for record in chunk:
                    try:
                        add(in_context(record, fmt, record) + term)
                    except Exception:
                        if type(record) is OwnRecord:  # loopsink's own warning
                            add(plain_text(record) + term)
                            done.append(record)
                            continue
                        self.handleError(record)
                        continue
                    done.append(record)
                continue
            done.extend(chunk)
        return texts, done

    async def _write_records(
        self, records: Sequence[logging.LogRecord], texts: list[str], *, raising: bool
    ) -> None:
        """Write records in order, rolling over before each one the stdlib would roll for.

        Under a queue (and with no other process writing the file) the text is held and
        written behind, as the file sink's is, with the size the plan tracked; a write
        that fails later makes the sink read the size again (:meth:`report_late_failure`).
        Otherwise each piece is written before the next is planned, and the size read back.
        """
        behind = not raising and self.linger_watched and self._process_lock is None
        async with self._interprocess():
            count = len(records)
            start = 0
            forced = False  # the record at ``start`` follows a rollover: written unconditionally
            while start < count:
                if self._size is None:
                    await self._output.run(self._refresh_blocking)
                cut, chunk = self._plan(records, texts, start, forced)
                if cut > start:
                    if chunk is None:
                        chunk = "".join(texts[start:cut])
                    if behind and self._size is not None:
                        if self._output.hold(chunk, cut - start, records[start]):
                            await self._output.push()
                    else:
                        try:
                            self._size = await self._output.run(self._write_blocking_tracked, chunk)
                        except Exception:
                            self._size = None
                            if raising:
                                raise
                            self.report_batch_failure(records[start:cut])
                if cut >= count:
                    break
                # what is held goes to the file being rotated, whatever doRollover does
                await self._output.drain()
                self._rollover_time = self._record_time(records[cut])
                try:
                    await self.doRollover()
                except Exception:
                    self._size = None
                    if raising:
                        raise
                    self.handleError(records[cut])  # the stdlib drops this record too
                    start, forced = cut + 1, False
                    continue
                finally:
                    self._rollover_time = None
                start, forced = cut, True

    def _plan(
        self,
        records: Sequence[logging.LogRecord],
        texts: list[str],
        start: int,
        forced: bool,
    ) -> tuple[int, str | None]:
        """Index of the first record from ``start`` that needs a rollover (or ``len``).

        Asks :meth:`shouldRollover` for each record, advancing the tracked size as if the
        records before it were written, which is the state the stdlib's check would see.
        Also returns the text of the records before the cut when it was built on the way.
        """
        length = self._encoded_length
        size = self._size or 0
        index = start
        if forced:
            size += length(texts[index])
            index += 1
        while index < len(records):
            self._size = size
            if self.shouldRollover(records[index]):
                return index, None
            size += length(texts[index])
            index += 1
        self._size = size
        return index, None

    def _record_time(self, record: logging.LogRecord) -> float:
        return record.created

    # -- blocking helpers (worker threads) --------------------------------------------------

    def _open_tracked(self) -> IO[Any]:
        """Open the log (blocking) and record its size, kind and identity."""
        stream = self._open()
        self.stream = stream
        self._note(stream)
        return stream

    def _note(self, stream: IO[Any]) -> None:
        st = os.fstat(stream.fileno())
        self._identity = (st.st_dev, st.st_ino)
        self._size = st.st_size
        self._regular = is_regular(stream.fileno())

    def _track_blocking(self) -> None:
        """Learn the size and kind of the current file, from the open stream or the path."""
        stream = self.stream
        if stream is not None:
            self._note(stream)
            return
        try:
            st = os.stat(self.baseFilename)
        except FileNotFoundError:
            self._size, self._regular, self._identity = 0, True, None
            return
        self._size = st.st_size
        self._regular = os.path.isfile(self.baseFilename)
        self._identity = None

    def _refresh_blocking(self) -> None:
        self._track_blocking()

    def _write_blocking_tracked(self, text: str) -> int:
        """Write and flush ``text``; return the file's size after it. Reopens a closed file.

        After a failed write the file is closed, buffered bytes and all, so that records
        already reported as failed are not written later, and the next batch reopens it
        in append mode (the sink recovers when the cause, such as a full disk, goes away).
        """
        stream = self.stream
        if stream is None:
            if self.mode == "w" and self._closed:
                return self._size or 0  # the stdlib does not reopen (truncate) a closed 'w' file
            stream = self._open_tracked()
        self._write_to(stream, text)
        return os.fstat(stream.fileno()).st_size

    def _reopen_blocking(self) -> None:
        """After a rollover: open the fresh file unless ``delay``, and track it."""
        if not self.delay:
            self._open_tracked()
        else:
            self._track_blocking()

    def _close_blocking(self) -> None:
        stream, self.stream = self.stream, None
        close_quietly(stream)

    async def _close_stream(self) -> None:
        await self._output.drain()  # held text first: the thread may open a delayed file
        if self.stream is not None:
            await self._output.run(self._close_blocking)

    def report_late_failure(self, exc: BaseException, first: logging.LogRecord, count: int) -> None:
        """A write behind failed: the size the sink planned with is not the file's any more,
        so it is read again before the next batch is planned."""
        self._size = None
        super().report_late_failure(exc, first, count)

    # -- several processes, one file --------------------------------------------------------

    @asynccontextmanager
    async def _interprocess(self) -> AsyncIterator[None]:
        """Hold the inter-process lock (re-entrant) when ``multiprocess`` is on.

        On taking it, the sink checks that the file at the path is still the one it has open
        and reopens it when another process has rotated it, so it never writes into a
        rotated file; the size it plans with is then the file's real size.
        """
        lock = self._process_lock
        if lock is None:
            yield
            return
        if self._lock_depth == 0:
            # Shielded: a cancellation must not land between taking the lock and the
            # ``try`` below that releases it.
            with anyio.CancelScope(shield=True):
                await self._output.run(self._acquire_blocking, lock)
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0:
                with anyio.CancelScope(shield=True):
                    await self._output.run(self._release_blocking, lock)

    def _acquire_blocking(self, lock: InterprocessLock) -> None:
        lock.acquire()
        try:
            self._sync_with_path_blocking()
            self._shared = lock.read_state()
            if self._shared:
                self._load_shared(self._shared)
        except BaseException:
            lock.release()
            raise

    def _release_blocking(self, lock: InterprocessLock) -> None:
        try:
            state = self._dump_shared()
            if state and state != self._shared:
                lock.write_state(state)
        finally:
            lock.release()

    def _load_shared(self, state: str) -> None:
        """Adopt the schedule the processes sharing the file agreed on (lock held)."""

    def _dump_shared(self) -> str:
        """This process's schedule, shared with the others through the lock file."""
        return ""

    def _sync_with_path_blocking(self) -> None:
        """Reopen when the path is not our open file any more (another process rotated it)."""
        stream = self.stream
        if stream is not None:
            try:
                st = os.stat(self.baseFilename)
                current: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except FileNotFoundError:
                current = None
            if current != self._identity:
                self.stream = None
                close_quietly(stream)
        if self.stream is None and not (self.mode == "w" and self._closed):
            self._open_tracked()
        else:
            self._track_blocking()

    async def close(self) -> None:
        await super().close()
        lock, self._process_lock = self._process_lock, None
        if lock is not None:
            await self._output.run(lock.close)


class RotatingFileHandler(BaseRotatingHandler):
    """Rolls the log over by size, with the stdlib's rule, names and renames.

    A record goes to a fresh file when the bytes already in the current file plus the
    length of ``"%s\\n" % format(record)`` reach ``maxBytes``; the current file becomes
    ``app.log.1`` and older ones shift to ``.2`` … ``.backupCount`` (the oldest is removed).
    With ``maxBytes=0`` or ``backupCount=0`` there is no rollover, and ``mode`` is forced
    to ``'a'`` when ``maxBytes`` is set, as in the stdlib. A target that is not a regular
    file (``/dev/null``) is never rotated.

    Args:
        filename: path of the log file.
        mode: ``'a'`` (default); ``'w'`` only matters when ``maxBytes`` is 0.
        maxBytes: size that triggers a rollover; 0 never rolls over.
        backupCount: how many rotated files to keep; 0 never rolls over.
        encoding: text encoding; ``None`` uses the locale's, as ``open`` does.
        delay: open the file only when the first record is written.
        errors: how encoding errors are handled, as for ``open``.
        compress: keyword-only; see :class:`BaseRotatingHandler`.
        multiprocess: keyword-only; see :class:`BaseRotatingHandler`.
        max_age: keyword-only; see :class:`BaseRotatingHandler`.
    """

    def __init__(
        self,
        filename: str | os.PathLike[str],
        mode: str = "a",
        maxBytes: int = 0,
        backupCount: int = 0,
        encoding: str | None = None,
        delay: bool = False,
        errors: str | None = None,
        *,
        compress: Compression | None = None,
        multiprocess: bool = False,
        max_age: float | None = None,
    ) -> None:
        _check_count("maxBytes", maxBytes, type(self).__name__)
        _check_count("backupCount", backupCount, type(self).__name__)
        if maxBytes > 0:
            mode = "a"  # the stdlib's rule: truncating a rotating log would lose the last run
        super().__init__(
            filename,
            mode,
            encoding=encoding,
            delay=delay,
            errors=errors,
            compress=compress,
            multiprocess=multiprocess,
            max_age=max_age,
        )
        self.maxBytes = maxBytes
        self.backupCount = backupCount

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        """The stdlib's size rule, against the size the sink tracks (no ``seek``/``tell``).

        An empty file never rolls over (gh-116263, CPython 3.13), whatever the record's size.
        With ``backupCount=0`` it answers ``False``: the stdlib answers ``True`` and then
        reopens the same file for every record, which writes the same file more slowly.
        """
        if not self._regular or self.maxBytes <= 0 or self.backupCount <= 0:
            return False
        if not self._size:
            return False  # gh-116263: an empty file is never rolled over
        line = "%s\n" % self.format(record)  # noqa: UP031 - the stdlib's exact measure
        return self._size + len(line) >= self.maxBytes

    def _plan(
        self,
        records: Sequence[logging.LogRecord],
        texts: list[str],
        start: int,
        forced: bool,
    ) -> tuple[int, str | None]:
        if type(self).shouldRollover is not RotatingFileHandler.shouldRollover:
            return super()._plan(records, texts, start, forced)
        count = len(texts)
        if not self._regular or self.maxBytes <= 0 or self.backupCount <= 0:
            self._size = None  # no rollover: not tracked here, read again after the write
            return count, None
        limit = self.maxBytes
        # The stdlib measures "%s\n" % message; texts end with the terminator instead.
        extra = 1 - len(self.terminator)
        size = self._size or 0
        # Fast path: the rule's left side (bytes so far + the next line) only grows along
        # the batch, so if the last line still stays under the limit, no line triggers a
        # rollover. For ASCII text in an ASCII-preserving encoding, characters are bytes.
        if self._ascii_identity and self.terminator.isascii():
            tail = "".join(texts[start:])
            if tail.isascii() and (
                (forced and start + 1 == count) or size + len(tail) + extra < limit
            ):
                self._size = size + len(tail)
                return count, tail
        length = self._encoded_length
        index = start
        if forced:
            size += length(texts[index])
            index += 1
        while index < count:
            text = texts[index]
            if size and size + len(text) + extra >= limit:  # an empty file never rolls over
                break
            size += length(text)
            index += 1
        self._size = size
        return index, None

    async def doRollover(self) -> None:
        """Close the file, shift ``.1`` … ``.N-1`` up by one, rotate the file to ``.1``, reopen."""
        async with self._interprocess():
            await self._close_stream()
            if self.backupCount > 0:
                base = self.baseFilename
                names = [
                    await self._rotation_name(f"{base}.{index}")
                    for index in range(1, self.backupCount + 1)
                ]
                # (.N-1 -> .N), ..., (.1 -> .2): the stdlib's order
                shifts = [
                    (names[index - 1], names[index]) for index in range(self.backupCount - 1, 0, -1)
                ]
                first = names[0]
                await self._output.run(_shift_backups, shifts, first)
                await self.rotate(base, first)
                if self.max_age is not None:
                    await self._output.run(_remove_older, names, self.max_age)
            await self._output.run(self._reopen_blocking)


class TimedRotatingFileHandler(BaseRotatingHandler):
    """Rolls the log over at timed intervals, with the stdlib's instants and suffixes.

    ``when`` is one of ``S``, ``M``, ``H``, ``D``, ``MIDNIGHT`` or ``W0`` to ``W6`` (any
    case); the rotated file is named after the start of its interval with the suffix
    ``%Y-%m-%d_%H-%M-%S`` or its shorter forms. The first rollover counts from the
    existing file's modification time (else from now). Each record is judged by its
    ``created`` time: the moment the stdlib's handler would have seen it.

    Args:
        filename: path of the log file.
        when: the unit of ``interval``, or ``MIDNIGHT``, or a weekday ``W0`` (Monday) to ``W6``.
        interval: how many units between rollovers: for MIDNIGHT days, for ``W0``-``W6``
            weeks (CPython 3.13's rule, on every Python).
        backupCount: how many rotated files to keep; 0 keeps all.
        encoding: text encoding; ``None`` uses the locale's, as ``open`` does.
        delay: open the file only when the first record is written.
        utc: use UTC instead of local time for instants and suffixes.
        atTime: a ``datetime.time``: the time of day of MIDNIGHT and weekly rollovers.
        errors: how encoding errors are handled, as for ``open``.
        clock: keyword-only; returns "now" in seconds since the epoch, for the first
            rollover of a new file and for rollovers asked for directly (tests inject it).
        compress: keyword-only; see :class:`BaseRotatingHandler`.
        multiprocess: keyword-only; see :class:`BaseRotatingHandler`.
        max_age: keyword-only; see :class:`BaseRotatingHandler`.
    """

    def __init__(
        self,
        filename: str | os.PathLike[str],
        when: str = "h",
        interval: int = 1,
        backupCount: int = 0,
        encoding: str | None = None,
        delay: bool = False,
        utc: bool = False,
        atTime: datetime.time | None = None,
        errors: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
        compress: Compression | None = None,
        multiprocess: bool = False,
        max_age: float | None = None,
    ) -> None:
        owner = type(self).__name__
        if not isinstance(when, str):
            raise TypeError(f"{owner} when must be a str such as 'h' or 'midnight', got {when!r}")
        _check_count("interval", interval, owner, minimum=1)
        _check_count("backupCount", backupCount, owner)
        if atTime is not None and not isinstance(atTime, datetime.time):
            raise TypeError(f"{owner} atTime must be a datetime.time or None, got {atTime!r}")
        if not callable(clock):
            raise TypeError(f"{owner} clock must be a callable returning seconds, got {clock!r}")
        self.when = when.upper()
        unit, self.suffix, pattern = schedule(self.when, owner)
        if self.when.startswith("W"):
            self.dayOfWeek = int(self.when[1])
        self.extMatch = re.compile(pattern, re.ASCII)
        self.interval = unit * interval
        self.backupCount = backupCount
        self.utc = utc
        self.atTime = atTime
        self._clock = clock
        super().__init__(
            filename,
            "a",
            encoding=encoding,
            delay=delay,
            errors=errors,
            compress=compress,
            multiprocess=multiprocess,
            max_age=max_age,
        )
        try:
            start = int(os.stat(self.baseFilename).st_mtime)
        except FileNotFoundError:
            start = int(clock())
        self.rolloverAt = self.computeRollover(start)

    def computeRollover(self, currentTime: int) -> int:
        """The instant of the next rollover after ``currentTime``: the stdlib's arithmetic.

        MIDNIGHT and weekly rollovers land on the next ``atTime`` (midnight by default) of
        the right day, corrected by an hour when a DST change lies in between; the other
        units simply add the interval.
        """
        return next_rollover(
            currentTime,
            when=self.when,
            interval=self.interval,
            utc=self.utc,
            at_time=self.atTime,
        )

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` (by its ``created`` time) falls at or after :attr:`rolloverAt`.

        A target that is not a regular file is never rotated; its schedule moves on instead.
        """
        moment = int(self._record_time(record))
        if moment < self.rolloverAt:
            return False
        if not self._regular:
            self.rolloverAt = self.computeRollover(moment)
            return False
        return True

    def getFilesToDelete(self) -> list[str]:
        """The oldest rotated files beyond :attr:`backupCount` (blocking: lists the directory).

        CPython 3.13's rule: without a ``namer`` a file is a backup when its name is the
        log's name, a dot, and exactly this schedule's suffix; with a ``namer`` (or
        ``compress``) when some date in its name, passed through the naming, gives back
        that very name. Another log's backups and lookalikes are left alone. Rollovers
        call it in a worker thread; with a coroutine ``namer`` they use their own async
        equivalent, since this sync method cannot await it.
        """
        return self._beyond_count(self._backup_files())

    def _beyond_count(self, backups: list[str]) -> list[str]:
        if len(backups) < self.backupCount:
            return []
        backups.sort()
        return backups[: len(backups) - self.backupCount]

    def _backup_files(self) -> list[str]:
        """Every rotated file of this log (blocking: lists the directory)."""
        folder, base = os.path.split(self.baseFilename)
        names = os.listdir(folder)
        if self.namer is None and self.compress is None:
            prefix = base + "."
            cut = len(prefix)
            full = self.extMatch.fullmatch
            return [
                os.path.join(folder, name)
                for name in names
                if name[:cut] == prefix and full(name[cut:])
            ]
        return [
            os.path.join(folder, name)
            for name in names
            if any(
                os.path.basename(self.rotation_filename(default)) == name
                for default in self._defaults_in(name)
            )
        ]

    def _defaults_in(self, name: str) -> Iterator[str]:
        """The default rotated names of every date-like part of ``name``, leftmost first."""
        search = self.extMatch.search
        found = search(name)
        while found:
            yield self.baseFilename + "." + found[0]
            found = search(name, found.start() + 1)

    async def _backups(self) -> list[str]:
        """:meth:`_backup_files`, awaiting a coroutine ``namer`` on the loop."""
        if not _is_async_callable(self.namer):
            names: list[str] = await self._output.run(self._backup_files)
            return names
        folder = os.path.dirname(self.baseFilename)
        found: list[str] = []
        for name in await self._output.run(os.listdir, folder):
            for default in self._defaults_in(name):
                if os.path.basename(await self._rotation_name(default)) == name:
                    found.append(os.path.join(folder, name))
                    break
        return found

    async def doRollover(self) -> None:
        """Rotate the file to ``<name>.<suffix of its interval>``, prune, reopen, reschedule.

        As in CPython 3.13, a rotated file that already exists under that name (another
        process, or an earlier run, rotated first) is never replaced: the log stays where
        it is and takes the record. Pruning never deletes the file just rotated.
        """
        async with self._interprocess():
            now = int(self._now())
            stamp = interval_stamp(self.rolloverAt, self.interval, now, utc=self.utc)
            dest = await self._rotation_name(
                self.baseFilename + "." + time.strftime(self.suffix, stamp)
            )
            if await self._output.run(os.path.exists, dest):
                # CPython 3.13 returns here without a new rolloverAt, so it checks the same
                # name again for every later record and never rotates again; moving on to
                # the next interval keeps the schedule (see docs/stdlib-differences.md).
                self.rolloverAt = self.computeRollover(now)
                return
            await self._close_stream()
            await self.rotate(self.baseFilename, dest)
            if self.backupCount > 0 or self.max_age is not None:
                await self._prune(dest)
            await self._output.run(self._reopen_blocking)
            self.rolloverAt = self.computeRollover(now)

    async def _prune(self, rotated: str) -> None:
        """Delete what ``backupCount`` and ``max_age`` leave out, never ``rotated`` itself."""
        own_rule = type(self).getFilesToDelete is TimedRotatingFileHandler.getFilesToDelete
        needed = self.max_age is not None or (self.backupCount > 0 and own_rule)
        backups = await self._backups() if needed else []
        doomed: list[str] = []
        if self.backupCount > 0:
            if own_rule:
                doomed = self._beyond_count(list(backups))
            else:  # a subclass's rule
                doomed = await self._output.run(self.getFilesToDelete)
        aged = backups if self.max_age is not None else []
        await self._output.run(_remove_files, doomed, aged, self.max_age, rotated)

    def _now(self) -> float:
        moment = self._rollover_time
        return self._clock() if moment is None else moment

    def _load_shared(self, state: str) -> None:
        # With multiprocess=True the next rollover instant lives in the lock file, so the
        # first process past it rotates and the others adopt the new instant instead of
        # rotating the fresh file a second time (which would replace the rotated one).
        try:
            self.rolloverAt = int(state)
        except ValueError:
            pass

    def _dump_shared(self) -> str:
        return str(self.rolloverAt)


def _check_count(name: str, value: object, owner: str, *, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner} {name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{owner} {name} must be at least {minimum}, got {value}")


def _rename_if_exists(source: str, dest: str) -> None:
    if os.path.exists(source):  # a delayed file may never have been created
        os.rename(source, dest)


def _shift_backups(shifts: list[tuple[str, str]], first: str) -> None:
    """Rename ``.N-1`` → ``.N`` … ``.1`` → ``.2`` (replacing), then clear the ``.1`` slot."""
    for source, dest in shifts:
        if os.path.exists(source):
            remove_if_exists(dest)
            os.rename(source, dest)
    remove_if_exists(first)


def _remove_files(doomed: list[str], aged: list[str], max_age: float | None, rotated: str) -> None:
    """Remove ``doomed``, then those of ``aged`` older than ``max_age`` seconds.

    The file just ``rotated`` is spared either way: it holds the records of the interval
    that just ended (it can sort before older-named backups when the clock went back).
    """
    keep = os.path.normcase(os.path.abspath(rotated))

    def spared(path: str) -> bool:
        return os.path.normcase(os.path.abspath(path)) == keep

    for path in doomed:
        if not spared(path):
            remove_if_exists(path)
    if max_age is not None:
        _remove_older([path for path in aged if not spared(path)], max_age)


def _remove_older(paths: list[str], max_age: float) -> None:
    """Remove the files among ``paths`` last modified more than ``max_age`` seconds ago."""
    limit = time.time() - max_age
    for path in paths:
        _remove_if_older(path, limit)


def _remove_if_older(path: str, limit: float) -> None:
    try:
        if os.stat(path).st_mtime < limit:
            os.remove(path)
    except FileNotFoundError:  # not there (a gap in the numbering) or removed meanwhile
        pass


FORMATTER_ONLY_SINKS.update({RotatingFileHandler, TimedRotatingFileHandler})
