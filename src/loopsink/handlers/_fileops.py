"""Blocking file operations shared by the watched and rotating file sinks.

Everything here blocks (``stat``, ``rename``, ``open``, ``flock``, gzip) and is meant to run
on the sink's I/O thread (its :class:`~loopsink._executor.Executor`), never on the event loop.
The one exception is :func:`check_target`, which runs in constructors, where the stdlib
opens the file too.
"""

from __future__ import annotations

import codecs
import errno
import gzip
import locale
import os
import shutil
import stat
import sys
from typing import IO, Any

__all__ = [
    "InterprocessLock",
    "check_target",
    "close_quietly",
    "encoded_length_function",
    "gzip_rotate",
    "remove_if_exists",
]


def check_target(path: str, owner: str, *, delay: bool) -> None:
    """Fail at construction, with a message that names the fix, when ``path`` cannot be a log.

    What the OS would report later anyway (a directory, a missing or read-only parent) is
    known now; saying it at construction beats one ``handleError`` per record at run time.
    """
    if os.path.isdir(path):
        raise IsADirectoryError(
            errno.EISDIR,
            f"{owner} was given a directory, not a file: {path!r}; pass the path of the log "
            f"file inside it, e.g. {os.path.join(path, 'app.log')!r}",
            path,
        )
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise FileNotFoundError(
            errno.ENOENT,
            f"{owner} cannot create {path!r}: the directory {parent!r} does not exist; "
            f"create it first (os.makedirs)",
            path,
        )
    if delay and not os.path.exists(path) and not os.access(parent, os.W_OK):
        raise PermissionError(
            errno.EACCES,
            f"{owner} cannot create {path!r}: the directory {parent!r} is not writable "
            f"(permissions or a read-only file system)",
            path,
        )


def explain_open_error(exc: OSError, path: str, owner: str) -> OSError:
    """The same kind of ``OSError`` as ``exc``, with a message that names the handler and path."""
    reason = exc.strerror or str(exc)
    return type(exc)(
        exc.errno or 0,
        f"{owner} cannot open {path!r} for writing: {reason}; check the path, its "
        f"permissions and that its file system is writable",
        path,
    )


def close_quietly(stream: IO[Any] | None) -> None:
    """Flush and close ``stream``; a flush that fails (disk full) still closes the file."""
    if stream is None:
        return
    try:
        stream.flush()
    except OSError:
        pass
    finally:
        try:
            stream.close()
        except OSError:  # the flush inside close() failed again: the descriptor is closed anyway
            pass


def is_regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


def remove_if_exists(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def gzip_rotate(source: str, dest: str) -> None:
    """Compress ``source`` into ``dest`` atomically, then remove ``source``.

    The archive is written to ``dest + ".tmp"``, synced, and renamed over ``dest``, so
    ``dest`` is either absent or complete: a crash or shutdown never leaves a truncated
    ``.gz`` under the final name. A crash between the rename and the removal of ``source``
    leaves its lines in both files (duplicated, not lost).
    """
    if not os.path.exists(source):
        return
    staged = dest + ".tmp"
    try:
        with open(source, "rb") as src, open(staged, "wb") as raw:
            with gzip.GzipFile(
                filename=os.path.basename(dest[:-3] if dest.endswith(".gz") else dest),
                mode="wb",
                fileobj=raw,
                compresslevel=6,
            ) as out:
                shutil.copyfileobj(src, out, 1 << 20)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(staged, dest)
    except BaseException:
        remove_if_exists(staged)
        raise
    os.remove(source)


def encoded_length_function(encoding: str | None, errors: str | None) -> Any:
    """Return ``f(text) -> int``: the bytes ``text`` takes in a file of this encoding.

    The size rule of ``RotatingFileHandler`` adds bytes already in the file to the next
    record's length, so the sink must know how many bytes each record it has planned but
    not yet written will take. For encodings that write ASCII as itself (UTF-8, Latin-1…),
    ASCII text costs one byte a character and needs no encoding; anything else is encoded.
    """
    name = encoding or "utf-8"
    if name == "locale":
        name = locale.getpreferredencoding(False)
    try:
        codecs.lookup(name)
        ascii_identity = "\n~ a".encode(name) == b"\n~ a"
    except LookupError:
        return len
    strict = errors or "strict"
    bom = len("".encode(name))  # UTF-16/32 and utf-8-sig: written once, at the file's start

    def encoded_length(text: str) -> int:
        if ascii_identity and text.isascii():
            return len(text)
        try:
            return len(text.encode(name, strict)) - bom
        except (UnicodeError, LookupError):
            return len(text)

    return encoded_length


class InterprocessLock:
    """An exclusive ``fcntl.flock`` on a side file, shared by every process logging to a path.

    The lock lives on ``<log>.lock`` rather than on the log itself because the log is
    renamed at every rollover: processes that locked the old inode would not exclude the
    ones that locked the new one. ``flock`` belongs to the open file description, not the
    thread, so it may be taken in one worker thread and released in another.
    """

    def __init__(self, path: str) -> None:
        if sys.platform == "win32":  # pragma: no cover - checked at construction too
            raise NotImplementedError("multiprocess=True needs fcntl.flock (POSIX only)")
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def read_state(self) -> str:
        """The small text the holders share in the lock file (call with the lock held)."""
        if self._fd is None:
            return ""
        return os.pread(self._fd, 256, 0).decode("ascii", "replace").strip()

    def write_state(self, text: str) -> None:
        """Replace the shared text (call with the lock held)."""
        if self._fd is not None:
            data = text.encode("ascii")
            os.pwrite(self._fd, data, 0)
            os.ftruncate(self._fd, len(data))

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
