"""WatchedFileHandler: follows a file moved or deleted under it, one ``stat`` per batch."""

from __future__ import annotations

import errno
import logging
import logging.handlers
import os
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from filesinks_support import fill_disk, make_record, snapshot_dir, tmpfs

import loopsink
from loopsink import WatchedFileHandler
from loopsink.handlers import _watched

pytestmark = pytest.mark.timeout(30)


def _moves(folder: Path) -> list[Callable[[], None]]:
    """What logrotate and people do to a log file between two bursts of records."""
    log = folder / "app.log"
    return [
        lambda: None,
        lambda: os.rename(log, folder / "app.log.1"),  # logrotate's create mode
        lambda: os.remove(log),  # deleted
        lambda: None,
        lambda: os.rename(log, folder / "app.log.2"),
    ]


async def test_same_files_as_the_stdlib_across_renames_and_deletes(tmp_path: Path) -> None:
    std, ours = tmp_path / "stdlib", tmp_path / "loopsink"
    std.mkdir()
    ours.mkdir()
    reference = logging.handlers.WatchedFileHandler(std / "app.log")
    handler = WatchedFileHandler(ours / "app.log")
    for burst, (move_std, move_ours) in enumerate(zip(_moves(std), _moves(ours), strict=True)):
        move_std()
        move_ours()
        records = [make_record(burst * 100 + i, i) for i in range(25)]
        for record in records:
            reference.handle(record)
        await handler.emit_batch(records)
    reference.close()
    await handler.close()
    expected = snapshot_dir(str(std))
    assert sorted(expected) == ["app.log", "app.log.1", "app.log.2"]
    assert snapshot_dir(str(ours)) == expected


async def test_one_stat_per_batch_not_per_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = WatchedFileHandler(tmp_path / "app.log")
    real_stat = os.stat
    calls: list[str] = []

    def counting_stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if os.fspath(path) == handler.baseFilename:  # type: ignore[call-overload]
            calls.append(handler.baseFilename)
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", counting_stat)
    await handler.emit_batch([make_record(i) for i in range(500)])
    await handler.emit_batch([make_record(i) for i in range(500, 1000)])
    monkeypatch.undo()
    await handler.close()
    assert len(calls) == 2
    assert len((tmp_path / "app.log").read_text().splitlines()) == 1000


async def test_delay_creates_the_file_with_the_first_record(tmp_path: Path) -> None:
    handler = WatchedFileHandler(tmp_path / "app.log", delay=True)
    assert not (tmp_path / "app.log").exists()
    await handler.emit_batch([make_record(1)])
    os.rename(tmp_path / "app.log", tmp_path / "moved.log")
    await handler.emit_batch([make_record(2)])
    await handler.close()
    assert (tmp_path / "moved.log").read_text() == "rec 1 \n"
    assert (tmp_path / "app.log").read_text() == "rec 2 \n"


async def test_end_to_end_through_install(tmp_path: Path) -> None:
    sink = WatchedFileHandler(tmp_path / "app.log")
    logger = logging.getLogger("test.watched.e2e")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    async with loopsink.install(sink, logger=logger) as queue:
        for i in range(300):
            logger.info("line %d", i)
            if i == 149:
                await queue.flush()
                os.rename(tmp_path / "app.log", tmp_path / "app.log.1")
    lines = (tmp_path / "app.log.1").read_text().splitlines()
    lines += (tmp_path / "app.log").read_text().splitlines()
    assert lines == [f"line {i}" for i in range(300)]
    assert (tmp_path / "app.log").read_text().startswith("line 150\n")


async def test_disk_full_then_recovery_when_the_path_changes(tmp_path: Path) -> None:
    """ENOSPC from a real device: the path is a symlink to /dev/full, later a plain file."""
    link = tmp_path / "app.log"
    os.symlink("/dev/full", link)
    handler = WatchedFileHandler(link)
    logging.raiseExceptions = False
    await handler.emit_batch([make_record(i) for i in range(5)])
    await handler.emit_batch([make_record(i) for i in range(5, 8)])
    assert handler.error_count == 8  # every record of both batches, counted
    assert "No space left on device" in (handler.last_error or "")
    os.remove(link)
    link.write_text("")
    await handler.emit_batch([make_record(i) for i in range(8, 10)])
    await handler.close()
    assert handler.error_count == 8
    assert link.read_text() == "rec 8 \nrec 9 \n"


async def test_disk_full_on_a_small_tmpfs_is_counted_then_recovered() -> None:
    with tmpfs("64k") as folder:
        path = os.path.join(folder, "app.log")
        handler = WatchedFileHandler(path)
        fill_disk(os.path.join(folder, "filler"))
        logging.raiseExceptions = False
        await handler.emit_batch([make_record(i, 300) for i in range(30)])
        assert handler.error_count == 30
        os.remove(os.path.join(folder, "filler"))
        await handler.emit_batch([make_record(i) for i in range(100, 103)])
        await handler.close()
        assert handler.error_count == 30
        with open(path, errors="replace") as file:
            tail = file.read().splitlines()[-3:]
        assert tail == ["rec 100 ", "rec 101 ", "rec 102 "]


def test_bad_paths_fail_at_construction(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match=r"^\[Errno 21\] WatchedFileHandler was given"):
        WatchedFileHandler(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"does not exist; create it first"):
        WatchedFileHandler(tmp_path / "missing" / "app.log", delay=True)
    with tmpfs("64k", read_only=True) as folder:
        with pytest.raises(OSError, match=r"WatchedFileHandler cannot open") as caught:
            WatchedFileHandler(os.path.join(folder, "app.log"))
        assert caught.value.errno == errno.EROFS


async def test_reopen_if_needed_is_a_coroutine(tmp_path: Path) -> None:
    handler = WatchedFileHandler(tmp_path / "app.log")
    before = (handler.dev, handler.ino)
    os.rename(tmp_path / "app.log", tmp_path / "old.log")
    with anyio.fail_after(5):
        await handler.reopenIfNeeded()
    assert (handler.dev, handler.ino) != before
    assert (tmp_path / "app.log").exists()
    await handler.close()


def logrotate_create(path: Path) -> None:
    """logrotate's ``create`` step, as strace shows it: ``O_EXCL``, and a file already at
    the path (a writer created it after the rename) is renamed aside as a ``.backup``."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        os.rename(path, f"{path}-2026120601.backup")
        fd = os.open(path, flags, 0o644)
    os.close(fd)


async def test_a_rename_is_not_raced_by_creating_the_path_before_logrotate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """logrotate renames the file, then creates the path: the sink waits for the create.

    A sink that created the path itself in between (as the stdlib's does) lost a batch to
    ``app.log-<date>.backup``; the stand-in rotator here creates the path during the sink's
    grace pause, or, if the sink did not pause, right after its batch.
    """
    log = tmp_path / "app.log"
    handler = WatchedFileHandler(log)
    await handler.emit_batch([make_record(i, i) for i in range(10)])
    os.rename(log, tmp_path / "app.log.1")
    created: list[float] = []

    def rotator_creates(seconds: float) -> None:
        logrotate_create(log)
        created.append(seconds)

    monkeypatch.setattr(_watched, "_sleep", rotator_creates)
    await handler.emit_batch([make_record(i, i) for i in range(10, 20)])
    if not created:
        logrotate_create(log)  # the rotator's create, after a sink that did not wait for it
    await handler.emit_batch([make_record(i, i) for i in range(20, 30)])
    await handler.close()
    assert sorted(os.listdir(tmp_path)) == ["app.log", "app.log.1"]
    assert (tmp_path / "app.log.1").read_text().count("\n") == 10
    assert (tmp_path / "app.log").read_text().count("\n") == 20
    assert created == [_watched._ROTATOR_GRACE]
