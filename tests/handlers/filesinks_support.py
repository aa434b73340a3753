"""Shared helpers for the file-sink tests (watched, rotating, timed, logrotate).

Not a test module: records with chosen sizes and times, directory snapshots to compare
with what the stdlib wrote, and a small tmpfs (a real full disk, a real read-only
directory) mounted for one test.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator

import pytest


def make_record(
    index: int, padding: int = 0, *, created: float | None = None, msg: str | None = None
) -> logging.LogRecord:
    """A record whose message is ``rec <index>`` plus ``padding`` filler characters."""
    text = msg if msg is not None else f"rec {index} " + "x" * padding
    record = logging.LogRecord("test.files", logging.INFO, __file__, 1, text, None, None)
    if created is not None:
        record.created = created
        record.msecs = (created - int(created)) * 1000
    return record


def snapshot_dir(folder: str, *, skip_suffixes: tuple[str, ...] = (".lock",)) -> dict[str, bytes]:
    """Every file of ``folder`` (name → bytes), the lock side-file excepted."""
    files = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(skip_suffixes):
            continue
        with open(os.path.join(folder, name), "rb") as file:
            files[name] = file.read()
    return files


def stdlib_write(handler: logging.Handler, records: list[logging.LogRecord]) -> None:
    for record in records:
        handler.handle(record)
    handler.close()


def batches(
    records: list[logging.LogRecord], sizes: list[int]
) -> Iterator[list[logging.LogRecord]]:
    """Cut ``records`` into consecutive batches of the given sizes (cycled)."""
    start, turn = 0, 0
    while start < len(records):
        size = sizes[turn % len(sizes)]
        yield records[start : start + size]
        start += size
        turn += 1


@contextlib.contextmanager
def tmpfs(size: str, *, read_only: bool = False) -> Iterator[str]:
    """Mount a tmpfs of ``size`` (e.g. ``"64k"``) on a fresh directory for the test.

    A real full disk (ENOSPC) and a real read-only file system (EROFS, which stops root
    too, unlike permission bits). Needs the right to mount; skips the test otherwise.
    """
    point = tempfile.mkdtemp(prefix="loopsink-tmpfs-")
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", point],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        os.rmdir(point)
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        os.rmdir(point)


def fill_disk(path: str) -> None:
    """Create ``path`` and grow it until the file system says ENOSPC."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
