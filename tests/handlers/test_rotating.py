"""RotatingFileHandler and BaseRotatingHandler: CPython 3.13's files, batched, off the loop.

CPython 3.13's ``RotatingFileHandler`` is the reference. The main size scenarios compare
with what 3.13 wrote, written down here (``SIZE_FILES``), and the one rule 3.13 changed (an
empty file is never rolled over, gh-116263) has a written-down test of its own. The other
comparisons put the same records through the running stdlib's handler (one record at a
time) and loopsink's (in batches of assorted sizes) and compare the two directories byte
for byte: they stay clear of empty files, where 3.10-3.12 differ from 3.13, and the suite
runs them on 3.10 to 3.13.
"""

from __future__ import annotations

import errno
import gzip
import logging
import logging.handlers
import os
import random
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from filesinks_support import (
    batches,
    fill_disk,
    make_record,
    snapshot_dir,
    stdlib_write,
    tmpfs,
)

import loopsink
from loopsink import BaseRotatingHandler, RotatingFileHandler
from loopsink._fastformat import batch_formatter

pytestmark = pytest.mark.timeout(60)


def _records(count: int, seed: int, *, unicode: bool = True) -> list[logging.LogRecord]:
    rnd = random.Random(seed)
    records = []
    for i in range(count):
        padding = rnd.choice((0, 5, 40, 90, 150, 400))
        record = make_record(i, padding)
        if unicode and i % 7 == 3:
            record.msg += " é€😀"  # multi-byte characters: bytes and characters differ
        records.append(record)
    return records


async def _loopsink_write(
    handler: BaseRotatingHandler, records: list[logging.LogRecord], seed: int
) -> None:
    rnd = random.Random(seed)
    sizes = [rnd.choice((1, 2, 3, 17, 64, 250, 1024)) for _ in range(50)]
    for batch in batches(records, sizes):
        await handler.emit_batch(batch)
    await handler.close()


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    std, ours = tmp_path / "stdlib", tmp_path / "loopsink"
    std.mkdir()
    ours.mkdir()
    return std, ours


SCENARIOS = {
    "small files": {"maxBytes": 1000, "backupCount": 3},
    "many backups": {"maxBytes": 700, "backupCount": 12},
    "delay": {"maxBytes": 1500, "backupCount": 2, "delay": True},
    "latin-1": {"maxBytes": 900, "backupCount": 4, "encoding": "latin-1", "errors": "replace"},
    "utf-16": {"maxBytes": 2000, "backupCount": 3, "encoding": "utf-16"},
    "no maxBytes": {"maxBytes": 0, "backupCount": 3},
    "no backupCount": {"maxBytes": 500, "backupCount": 0},
}


# What CPython 3.13's RotatingFileHandler writes for each scenario, 600 records of
# _records(600, seed=1), one at a time: each file and the record numbers it holds
# (tests/handlers/derive_rotation_tables.py printed it).
SIZE_FILES: dict[str, dict[str, tuple[int, int]]] = {
    "small files": {
        "app.log": (593, 599),
        "app.log.1": (587, 592),
        "app.log.2": (582, 586),
        "app.log.3": (578, 581),
    },
    "many backups": {
        "app.log": (599, 599),
        "app.log.1": (594, 598),
        "app.log.10": (571, 571),
        "app.log.11": (569, 570),
        "app.log.12": (560, 568),
        "app.log.2": (589, 593),
        "app.log.3": (587, 588),
        "app.log.4": (586, 586),
        "app.log.5": (584, 585),
        "app.log.6": (581, 583),
        "app.log.7": (578, 580),
        "app.log.8": (573, 577),
        "app.log.9": (572, 572),
    },
    "delay": {"app.log": (595, 599), "app.log.1": (587, 594), "app.log.2": (581, 586)},
    "latin-1": {
        "app.log": (594, 599),
        "app.log.1": (589, 593),
        "app.log.2": (586, 588),
        "app.log.3": (581, 585),
        "app.log.4": (578, 580),
    },
    "utf-16": {
        "app.log": (595, 599),
        "app.log.1": (588, 594),
        "app.log.2": (583, 587),
        "app.log.3": (578, 582),
    },
    "no maxBytes": {"app.log": (0, 599)},
    "no backupCount": {"app.log": (0, 599)},
}


def _expected_files(
    ranges: dict[str, tuple[int, int]], records: list[logging.LogRecord], options: dict[str, Any]
) -> dict[str, bytes]:
    encoding = str(options.get("encoding", "utf-8"))
    errors = str(options.get("errors") or "strict")
    return {
        name: "".join(records[i].getMessage() + "\n" for i in range(first, last + 1)).encode(
            encoding, errors
        )
        for name, (first, last) in ranges.items()
    }


@pytest.mark.parametrize("options", SCENARIOS.values(), ids=SCENARIOS.keys())
async def test_same_files_as_cpython_313(tmp_path: Path, options: dict[str, Any]) -> None:
    name = next(label for label, value in SCENARIOS.items() if value is options)
    options = {"encoding": "utf-8", **options}
    records = _records(600, seed=1)
    await _loopsink_write(RotatingFileHandler(tmp_path / "app.log", **options), records, seed=2)
    assert snapshot_dir(str(tmp_path)) == _expected_files(SIZE_FILES[name], records, options)


async def test_existing_file_near_the_limit_rolls_over_first(tmp_path: Path) -> None:
    std, ours = _dirs(tmp_path)
    for folder in (std, ours):
        (folder / "app.log").write_text("old line\n" * 110, encoding="utf-8")  # 990 bytes
    records = [make_record(i, 5) for i in range(5)]
    stdlib_write(
        logging.handlers.RotatingFileHandler(std / "app.log", maxBytes=1000, backupCount=2), records
    )
    await _loopsink_write(
        RotatingFileHandler(ours / "app.log", maxBytes=1000, backupCount=2), records, seed=4
    )
    assert snapshot_dir(str(ours)) == snapshot_dir(str(std))
    assert (ours / "app.log.1").read_text(encoding="utf-8") == "old line\n" * 110


async def test_a_record_larger_than_maxbytes_gets_a_file_of_its_own(tmp_path: Path) -> None:
    std, ours = _dirs(tmp_path)
    records = [make_record(0, 10), make_record(1, 5000), make_record(2, 10), make_record(3, 10)]
    stdlib_write(
        logging.handlers.RotatingFileHandler(std / "app.log", maxBytes=1000, backupCount=5), records
    )
    handler = RotatingFileHandler(ours / "app.log", maxBytes=1000, backupCount=5)
    await handler.emit_batch(records)  # one batch, three cuts
    await handler.close()
    assert snapshot_dir(str(ours)) == snapshot_dir(str(std))


@pytest.mark.parametrize(("mode", "max_bytes"), [("w", 1000), ("w", 0), ("a", 0)])
async def test_mode_w_as_the_stdlib(tmp_path: Path, mode: str, max_bytes: int) -> None:
    std, ours = _dirs(tmp_path)
    for folder in (std, ours):
        (folder / "app.log").write_text("from the last run\n", encoding="utf-8")
    records = _records(50, seed=5)
    stdlib_write(
        logging.handlers.RotatingFileHandler(
            std / "app.log", mode, maxBytes=max_bytes, backupCount=2
        ),
        records,
    )
    await _loopsink_write(
        RotatingFileHandler(ours / "app.log", mode, maxBytes=max_bytes, backupCount=2),
        records,
        seed=6,
    )
    assert snapshot_dir(str(ours)) == snapshot_dir(str(std))


@pytest.mark.parametrize("delay", [False, True])
async def test_end_to_end_through_install_matches_the_stdlib(tmp_path: Path, delay: bool) -> None:
    """Under a queue the text is written behind, held across batches; every rollover
    still cuts where the stdlib's does (with ``delay``, the file the held text opens)."""
    std, ours = _dirs(tmp_path)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    reference = logging.handlers.RotatingFileHandler(
        std / "app.log", maxBytes=4000, backupCount=9, delay=delay
    )
    reference.setFormatter(fmt)
    sink = RotatingFileHandler(ours / "app.log", maxBytes=4000, backupCount=9, delay=delay)
    sink.setFormatter(fmt)
    logger = logging.getLogger("test.rotating.e2e")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(reference)
    async with loopsink.install(sink, logger=logger, capacity=5000) as queue:
        for i in range(2000):
            logger.info("request %d took %.1f ms %s", i, i / 7, "z" * (i % 60))
            if i % 300 == 0:
                await anyio.lowlevel.checkpoint()
            elif i % 7 == 0:
                await anyio.sleep(0)  # small batches too, held together for a linger
    reference.close()
    assert queue.stats.dropped_total == 0
    expected = snapshot_dir(str(std))
    assert len(expected) == 10
    assert snapshot_dir(str(ours)) == expected


class CountingRotating(RotatingFileHandler):
    """Counts the writes its thread makes (each batch's, or each joined text's)."""

    writes = 0

    def _write_to(self, stream: Any, text: str) -> None:
        self.writes += 1
        super()._write_to(stream, text)


class CountingTimedRotating(loopsink.TimedRotatingFileHandler):
    writes = 0

    def _write_to(self, stream: Any, text: str) -> None:
        self.writes += 1
        super()._write_to(stream, text)


@pytest.mark.parametrize("kind", ["size", "time"])
async def test_under_a_queue_batches_within_a_linger_share_one_write(
    tmp_path: Path, kind: str
) -> None:
    """As a queue's worker drives it (linger_watched), a rotating sink holds its text and
    writes it behind, joined, as the file sink does: it waited for a write of every batch,
    a hand-over (and a lend of the loop's thread) per batch."""
    path = tmp_path / "app.log"
    sink: CountingRotating | CountingTimedRotating
    if kind == "size":
        sink = CountingRotating(path, maxBytes=1_000_000, backupCount=2)
    else:
        sink = CountingTimedRotating(path, when="midnight", backupCount=2)
    sink.linger_watched = True  # as a queue's worker sets it
    for batch in range(10):
        await sink.emit_batch([make_record(batch * 5 + i, 10) for i in range(5)])
    await sink.flush()
    sink.linger_watched = False
    await sink.close()
    assert path.read_text().splitlines() == [f"rec {i} " + "x" * 10 for i in range(50)]
    assert sink.writes <= 5, sink.writes  # one, unless the machine stalled past a linger


async def test_not_a_regular_file_is_never_rotated(tmp_path: Path) -> None:
    handler = RotatingFileHandler(os.devnull, maxBytes=10, backupCount=2)
    await handler.emit_batch(_records(20, seed=7))
    await handler.close()
    assert handler.error_count == 0
    assert not os.path.exists(os.devnull + ".1")


async def test_should_rollover_override_is_honoured_within_a_batch(tmp_path: Path) -> None:
    """A subclass's own rule decides the cuts, record by record, as in the stdlib."""

    def rolls(record: logging.LogRecord) -> bool:
        return "ROLL" in record.getMessage()

    class StdlibOnMarker(logging.handlers.RotatingFileHandler):
        def shouldRollover(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
            return rolls(record)

    class OursOnMarker(RotatingFileHandler):
        def shouldRollover(self, record: logging.LogRecord) -> bool:
            return rolls(record)

    std, ours = _dirs(tmp_path)
    records = [make_record(i, msg=f"{i} ROLL" if i % 9 == 4 else f"{i}") for i in range(60)]
    stdlib_write(StdlibOnMarker(std / "app.log", backupCount=20), records)
    await _loopsink_write(OursOnMarker(ours / "app.log", backupCount=20), records, seed=8)
    assert snapshot_dir(str(ours)) == snapshot_dir(str(std))
    assert len(snapshot_dir(str(ours))) == 8


def _stdlib_namer(name: str) -> str:
    return name.replace("app.log.", "app-") + ".log"


def _stdlib_rotator(source: str, dest: str) -> None:
    with open(source, "rb") as src, open(dest, "wb") as out:
        out.write(b"[rotated]\n" + src.read())
    os.remove(source)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_namer_and_rotator_sync_or_async(tmp_path: Path, kind: str) -> None:
    std, ours = _dirs(tmp_path)
    records = _records(300, seed=9)
    reference = logging.handlers.RotatingFileHandler(std / "app.log", maxBytes=800, backupCount=3)
    reference.namer = _stdlib_namer
    reference.rotator = _stdlib_rotator
    stdlib_write(reference, records)
    handler = RotatingFileHandler(ours / "app.log", maxBytes=800, backupCount=3)
    if kind == "sync":
        handler.namer = _stdlib_namer
        handler.rotator = _stdlib_rotator
    else:

        async def namer(name: str) -> str:
            await anyio.lowlevel.checkpoint()
            return _stdlib_namer(name)

        async def rotator(source: str, dest: str) -> None:
            await anyio.to_thread.run_sync(_stdlib_rotator, source, dest)

        handler.namer = namer
        handler.rotator = rotator
    await _loopsink_write(handler, records, seed=10)
    files = snapshot_dir(str(ours))
    assert files == snapshot_dir(str(std))
    assert {"app-1.log", "app-2.log", "app-3.log"} <= set(files)


def test_rotation_filename_cannot_call_an_async_namer(tmp_path: Path) -> None:
    handler = RotatingFileHandler(tmp_path / "app.log", delay=True)

    async def namer(name: str) -> str:
        return name

    handler.namer = namer
    with pytest.raises(TypeError, match=r"namer .* is async, so rotation_filename\(\)"):
        handler.rotation_filename("x")
    handler.namer = str.upper
    assert handler.rotation_filename("a.1") == "A.1"


def _flaky_rotator(refusals: int) -> Callable[[str, str], None]:
    left = [refusals]

    def rotate(source: str, dest: str) -> None:
        if left[0]:
            left[0] -= 1
            raise OSError(errno.EBUSY, "rotation refused for the test")
        os.rename(source, dest)

    return rotate


async def test_a_failing_rotator_is_reported_and_the_sink_recovers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class CountingStdlib(logging.handlers.RotatingFileHandler):
        failures = 0

        def handleError(self, record: logging.LogRecord) -> None:
            self.failures += 1

    std, ours = _dirs(tmp_path)
    records = [make_record(i, 60) for i in range(12)]
    reference = CountingStdlib(std / "app.log", maxBytes=200, backupCount=10)
    reference.rotator = _flaky_rotator(2)
    stdlib_write(reference, records)
    handler = RotatingFileHandler(ours / "app.log", maxBytes=200, backupCount=10)
    handler.rotator = _flaky_rotator(2)
    await handler.emit_batch(records)
    await handler.close()
    # As in the stdlib, a record whose rollover failed is reported and not written; the
    # next rollover succeeds and the sink carries on.
    assert reference.failures == 2
    assert handler.error_count == 2
    assert "rotation refused for the test" in capsys.readouterr().err
    files = snapshot_dir(str(ours))
    assert files == snapshot_dir(str(std))
    assert sum(data.count(b"\n") for data in files.values()) == 10


async def test_gzip_compress_names_contents_and_retention(tmp_path: Path) -> None:
    std, ours = _dirs(tmp_path)
    records = _records(500, seed=11)
    stdlib_write(
        logging.handlers.RotatingFileHandler(std / "app.log", maxBytes=1200, backupCount=4),
        records,
    )
    handler = RotatingFileHandler(ours / "app.log", maxBytes=1200, backupCount=4, compress="gzip")
    await _loopsink_write(handler, records, seed=12)
    names = sorted(os.listdir(ours))
    assert names == ["app.log", "app.log.1.gz", "app.log.2.gz", "app.log.3.gz", "app.log.4.gz"]
    for index in range(1, 5):
        plain = (std / f"app.log.{index}").read_bytes()
        assert gzip.decompress((ours / f"app.log.{index}.gz").read_bytes()) == plain
    assert (ours / "app.log").read_bytes() == (std / "app.log").read_bytes()


def test_constructor_rejects_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    with pytest.raises(
        ValueError, match=r"^RotatingFileHandler maxBytes must be at least 0, got -1$"
    ):
        RotatingFileHandler(path, maxBytes=-1)
    with pytest.raises(
        TypeError, match=r"^RotatingFileHandler backupCount must be an int, got '3'$"
    ):
        RotatingFileHandler(path, backupCount="3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"compress must be None or 'gzip', got 'zip'"):
        RotatingFileHandler(path, compress="zip")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"multiprocess must be True or False, got 1"):
        RotatingFileHandler(path, multiprocess=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("delay", [False, True])
def test_a_directory_or_a_missing_parent_fails_at_construction(tmp_path: Path, delay: bool) -> None:
    with pytest.raises(IsADirectoryError, match=r"was given a directory, not a file"):
        RotatingFileHandler(tmp_path, maxBytes=10, backupCount=1, delay=delay)
    with pytest.raises(FileNotFoundError, match=r"the directory .* does not exist"):
        RotatingFileHandler(tmp_path / "nope" / "app.log", delay=delay)


@pytest.mark.parametrize("delay", [False, True])
def test_a_read_only_directory_fails_at_construction(delay: bool) -> None:
    with tmpfs("64k", read_only=True) as folder:
        with pytest.raises(OSError, match=r"cannot (open|create) .*app\.log") as caught:
            RotatingFileHandler(os.path.join(folder, "app.log"), delay=delay)
        assert caught.value.errno in (errno.EROFS, errno.EACCES)


async def test_disk_full_is_reported_counted_and_recovered_from() -> None:
    with tmpfs("64k") as folder:
        filler = os.path.join(folder, "filler")
        handler = RotatingFileHandler(os.path.join(folder, "app.log"), maxBytes=4000, backupCount=2)
        fill_disk(filler)
        logging.raiseExceptions = False  # counted, not printed: 40 tracebacks help nobody
        await handler.emit_batch([make_record(i, 200) for i in range(40)])
        assert handler.error_count >= 1
        errors_when_full = handler.error_count
        os.remove(filler)
        await handler.emit_batch([make_record(i, 20) for i in range(100, 110)])
        await handler.close()
        assert handler.error_count == errors_when_full
        lines = [
            line
            for name in os.listdir(folder)
            for line in Path(folder, name).read_text(errors="replace").splitlines()
        ]
        assert [line for line in lines if line.startswith("rec 1")][-10:] == [
            f"rec {i} " + "x" * 20 for i in range(100, 110)
        ]


async def test_a_write_behind_that_fails_makes_the_sink_read_the_size_again() -> None:
    """Under a queue a write that fails on the sink's thread (a full disk) is found later,
    and the failed text is cut off the file again. The sink then reads the file's size
    anew: planning on with the size it had counted, failed text included, it rolled the
    file over when it held half of what the rule allows."""
    with tmpfs("64k") as folder:
        filler = os.path.join(folder, "filler")
        sink = RotatingFileHandler(os.path.join(folder, "app.log"), maxBytes=4000, backupCount=5)
        sink.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger("test.rotating.behind_full")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        fill_disk(filler)
        logging.raiseExceptions = False  # counted, not printed
        async with loopsink.install(sink, logger=logger, capacity=1000) as queue:
            for i in range(10):  # 2,140 bytes: no rollover while the disk is full
                logger.info("lost %03d %s", i, "x" * 204)
            await queue.flush()
            assert sink.error_count >= 1
            os.remove(filler)
            for i in range(30):
                logger.info("kept %03d %s", i, "y" * 204)
        assert queue.stats.sinks[0].emitted == 30
        line = len("kept 000 " + "y" * 204 + "\n")
        # the stdlib's rule from an empty file: roll before the line that would reach maxBytes
        fits = next(n for n in range(1, 30) if n * line + line >= 4000)
        first = Path(folder, "app.log.1").read_text().splitlines()
        assert [text[:8] for text in first] == [f"kept {i:03d}" for i in range(fits)]
        rest = Path(folder, "app.log").read_text().splitlines()
        assert [text[:8] for text in rest] == [f"kept {i:03d}" for i in range(fits, 30)]


WORKER = textwrap.dedent(
    """
    import logging, sys, anyio, anyio.lowlevel, loopsink

    path, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    MP = sys.argv[4] == "1"

    async def main():
        sink = loopsink.RotatingFileHandler(
            path, maxBytes=200_000, backupCount=1000, multiprocess=MP
        )
        logger = logging.getLogger("mp")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        async with loopsink.install(sink, logger=logger, capacity=count) as queue:
            for i in range(count):
                logger.info("w%d r%d %s", worker, i, "p" * (i % 50))
                if i % 500 == 499:
                    await anyio.lowlevel.checkpoint()
        assert queue.stats.dropped_total == 0, queue.stats
        assert sink.error_count == 0

    anyio.run(main)
    """
)


@pytest.mark.slow
def test_four_processes_share_one_rotating_file_without_loss(tmp_path: Path) -> None:
    processes, count = 4, 20_000
    path = tmp_path / "app.log"
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(path), str(n), str(count), "1"])
        for n in range(processes)
    ]
    for worker in workers:
        assert worker.wait(timeout=50) == 0
    seen: dict[tuple[int, int], int] = {}
    files = 0
    for name in os.listdir(tmp_path):
        if name.endswith(".lock"):
            continue
        files += 1
        data = (tmp_path / name).read_text(encoding="utf-8")
        assert data.endswith("\n")
        if name != "app.log":
            assert len(data.encode()) <= 200_000  # nobody wrote into a rotated file
        for line in data.splitlines():
            head, rec, padding = line.split(" ")
            worker, index = int(head[1:]), int(rec[1:])
            assert padding == "p" * (index % 50), line
            seen[worker, index] = seen.get((worker, index), 0) + 1
    assert files >= 10  # rotation happened many times
    assert len(seen) == processes * count  # every record is there...
    assert set(seen.values()) == {1}  # ...exactly once


class _UpperFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).upper()


FORMATTERS = {
    "default": logging.Formatter(),
    "asctime": logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"),
    "datefmt": logging.Formatter("%(asctime)s|%(message)s", datefmt="%H:%M:%S"),
    "brace": logging.Formatter("{asctime} {message}", style="{"),
    "dollar": logging.Formatter("$asctime $message", style="$"),
    "defaults": logging.Formatter("%(asctime)s %(app)s %(message)s", defaults={"app": "shop"}),
    "utc": logging.Formatter("%(asctime)s %(message)s"),
    "subclass": _UpperFormatter("%(asctime)s %(message)s"),
}
FORMATTERS["utc"].converter = time.gmtime


@pytest.mark.parametrize("formatter", FORMATTERS.values(), ids=FORMATTERS.keys())
def test_the_batch_formatter_writes_what_the_formatter_writes(
    formatter: logging.Formatter,
) -> None:
    fast = batch_formatter(formatter)
    rnd = random.Random(13)
    created = 1_700_000_000.0
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        exc_info = sys.exc_info()
    for i in range(3000):
        created += rnd.choice((0.0, 0.0004, 0.01, 0.3, 1.7))
        record = make_record(i, i % 13, created=created)
        record.msecs = int((created - int(created)) * 1000) + 0.0  # as LogRecord computes it
        if i % 500 == 7:
            record.exc_info = exc_info
        if i % 700 == 9:
            record.stack_info = "Stack (most recent call last):\n  here"
        twin = logging.makeLogRecord(dict(record.__dict__))
        assert fast(record) == formatter.format(twin)
        assert record.__dict__ == twin.__dict__  # the same attributes set on the record


def test_the_batch_formatter_raises_what_the_formatter_raises() -> None:
    formatter = logging.Formatter("%(asctime)s %(missing)s")
    fast = batch_formatter(formatter)
    with pytest.raises(ValueError, match="Formatting field not found in record: 'missing'"):
        fast(make_record(1))


async def test_handle_one_record_at_a_time_matches_the_stdlib(tmp_path: Path) -> None:
    std, ours = _dirs(tmp_path)
    records = _records(200, seed=14)
    stdlib_write(
        logging.handlers.RotatingFileHandler(std / "app.log", maxBytes=900, backupCount=3), records
    )
    handler = RotatingFileHandler(ours / "app.log", maxBytes=900, backupCount=3)
    for record in records:
        assert await handler.handle(record)
    await handler.close()
    assert snapshot_dir(str(ours)) == snapshot_dir(str(std))


async def test_a_failing_namer_is_reported_like_an_emit_error(tmp_path: Path) -> None:
    calls = {"n": 0}

    def namer(name: str) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("namer refused for the test")
        return name

    handler = RotatingFileHandler(tmp_path / "app.log", maxBytes=100, backupCount=1)
    handler.namer = namer
    logging.raiseExceptions = False
    await handler.emit_batch([make_record(i, 60) for i in range(3)])
    await handler.close()
    assert handler.error_count == 1
    assert "namer refused for the test" in (handler.last_error or "")
    assert (tmp_path / "app.log.1").read_text() == "rec 0 " + "x" * 60 + "\n"
    assert (tmp_path / "app.log").read_text() == "rec 2 " + "x" * 60 + "\n"


async def test_do_rollover_on_demand(tmp_path: Path) -> None:
    handler = RotatingFileHandler(tmp_path / "app.log", maxBytes=10_000, backupCount=2)
    await handler.emit_batch([make_record(1)])
    async with handler.io_lock():
        await handler.doRollover()
    await handler.emit_batch([make_record(2)])
    await handler.close()
    assert (tmp_path / "app.log.1").read_text() == "rec 1 \n"
    assert (tmp_path / "app.log").read_text() == "rec 2 \n"


async def test_max_age_removes_old_rotated_files_at_rollover(tmp_path: Path) -> None:
    handler = RotatingFileHandler(tmp_path / "app.log", maxBytes=100, backupCount=5, max_age=3600)
    await handler.emit_batch([make_record(i, 60) for i in range(4)])  # app.log + .1 .. .3
    old = time.time() - 7200
    for index in (2, 3):
        os.utime(tmp_path / f"app.log.{index}", (old, old))
    await handler.emit_batch([make_record(9, 60)])  # a rollover: .2 and .3 become .3 and .4
    await handler.close()
    assert sorted(os.listdir(tmp_path)) == ["app.log", "app.log.1", "app.log.2"]
    assert (tmp_path / "app.log.2").read_text().startswith("rec 2 ")  # rec 0, 1 were old


def test_max_age_must_be_positive_seconds(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"max_age must be more than 0 seconds, got 0$"):
        RotatingFileHandler(tmp_path / "app.log", delay=True, max_age=0)
    with pytest.raises(TypeError, match=r"max_age must be seconds \(a number\) or None"):
        RotatingFileHandler(tmp_path / "app.log", delay=True, max_age="1d")  # type: ignore[arg-type]


async def test_gzip_that_fails_midway_leaves_no_partial_archive() -> None:
    """ENOSPC while compressing: no ``.gz`` and no temporary left, the log kept, retried."""
    with tmpfs("64k") as folder:
        path = os.path.join(folder, "app.log")
        handler = RotatingFileHandler(path, maxBytes=20_000, backupCount=2, compress="gzip")
        await handler.emit_batch([make_record(i, 80) for i in range(200)])  # ~18 KB, no rollover
        with open(path, "rb") as file:
            before = file.read()
        filler = os.path.join(folder, "filler")
        fill_disk(filler)
        logging.raiseExceptions = False
        await handler.emit_batch([make_record(500, 3000)])  # triggers a rollover: gzip fails
        assert handler.error_count == 1
        assert "No space left on device" in (handler.last_error or "")
        assert sorted(os.listdir(folder)) == ["app.log", "filler"]  # nothing half-written
        os.remove(filler)
        await handler.emit_batch([make_record(501, 3000)])  # the rollover is tried again
        await handler.close()
        assert handler.error_count == 1
        assert sorted(os.listdir(folder)) == ["app.log", "app.log.1.gz"]
        with gzip.open(os.path.join(folder, "app.log.1.gz"), "rb") as archive:
            assert archive.read() == before


@pytest.mark.parametrize("delay", [False, True])
@pytest.mark.parametrize("how", ["handle", "batch"])
async def test_an_empty_file_is_never_rolled_over(tmp_path: Path, delay: bool, how: str) -> None:
    """gh-116263 (CPython 3.13): a record larger than maxBytes goes into an empty file.

    Older CPythons rotate the empty file, pushing the oldest backup out for nothing.
    """
    (tmp_path / "app.log.1").write_text("backup one\n")
    (tmp_path / "app.log.2").write_text("backup two\n")
    (tmp_path / "app.log").write_text("")
    handler = RotatingFileHandler(tmp_path / "app.log", maxBytes=100, backupCount=2, delay=delay)
    big = make_record(0, 300)
    if how == "handle":
        await handler.handle(big)
    else:
        await handler.emit_batch([big])
    await handler.close()
    assert snapshot_dir(str(tmp_path)) == {
        "app.log": b"rec 0 " + b"x" * 300 + b"\n",
        "app.log.1": b"backup one\n",
        "app.log.2": b"backup two\n",
    }
    # The next record finds the file non-empty and over the limit: now it rolls over.
    handler = RotatingFileHandler(tmp_path / "app.log", maxBytes=100, backupCount=2, delay=delay)
    await handler.emit_batch([make_record(1), make_record(2, 300)])
    await handler.close()
    assert snapshot_dir(str(tmp_path)) == {
        "app.log": b"rec 2 " + b"x" * 300 + b"\n",
        "app.log.1": b"rec 1 \n",
        "app.log.2": b"rec 0 " + b"x" * 300 + b"\n",
    }
