"""TimedRotatingFileHandler: the stdlib's instants, suffixes and retention, on a fake clock.

No test waits for time to pass. The rollover arithmetic is compared with the stdlib's own
``computeRollover`` on a grid of instants, ``when`` values and time zones (``TZ``); whole
runs are compared file for file, the stdlib reading a fake ``time.time()`` set to each
record's creation time and loopsink judging each record by that same ``created`` time.
"""

from __future__ import annotations

import datetime
import gzip
import logging
import logging.handlers
import os
import random
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from filesinks_support import batches, make_record, snapshot_dir

from loopsink import TimedRotatingFileHandler

pytestmark = pytest.mark.timeout(60)

ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"]
WHENS = ["S", "M", "H", "D", "MIDNIGHT", *(f"W{day}" for day in range(7))]


@pytest.fixture
def zone(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test in the time zone given by the parameter, then restore the old one."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        yield request.param
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def _dst_changes(year: int) -> list[int]:
    """The instants (to the hour) where the local zone's DST flag flips during ``year``."""
    start = int(time.mktime((year, 1, 1, 0, 0, 0, 0, 0, -1)))
    changes, previous = [], time.localtime(start).tm_isdst
    for hour in range(start, start + 366 * 24 * 3600, 3600):
        flag = time.localtime(hour).tm_isdst
        if flag != previous:
            changes.append(hour)
            previous = flag
    return changes


def _instants(seed: int) -> list[int]:
    rnd = random.Random(seed)
    points = [*_dst_changes(2024), 1704067200, 1709251199]  # + new year, end of a leap Feb
    instants = []
    for point in points:
        instants.extend(
            point + offset * 60 + rnd.randrange(60) for offset in range(-3 * 1440, 3 * 1440, 97)
        )
    instants.extend(rnd.randrange(1_500_000_000, 1_900_000_000) for _ in range(60))
    return instants


@pytest.mark.parametrize("zone", ZONES, indirect=True)
def test_compute_rollover_equals_the_stdlib(zone: str, tmp_path: Path) -> None:
    instants = _instants(seed=len(zone))
    compared = 0
    for when in WHENS:
        for interval in (1, 3):
            for utc in (False, True):
                for at_time in (None, datetime.time(0, 0), datetime.time(2, 30, 15)):
                    options: dict[str, Any] = {
                        "when": when,
                        "interval": interval,
                        "utc": utc,
                        "atTime": at_time,
                        "delay": True,
                    }
                    reference = logging.handlers.TimedRotatingFileHandler(
                        tmp_path / "std.log", **options
                    )
                    ours = TimedRotatingFileHandler(tmp_path / "ours.log", **options)
                    for instant in instants:
                        expected = reference.computeRollover(instant)
                        assert ours.computeRollover(instant) == expected, (
                            zone,
                            options,
                            instant,
                        )
                        compared += 1
                    reference.close()
    assert compared > 20_000


class _FakeTime(types.SimpleNamespace):
    """Stands in for the ``time`` module inside ``logging.handlers``: ``time()`` is ours."""

    def __init__(self, now: float) -> None:
        super().__init__(now=now)

    def time(self) -> float:
        return float(self.now)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _stdlib_run(
    folder: Path,
    options: dict[str, Any],
    start: float,
    records: list[logging.LogRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _FakeTime(start)
    with monkeypatch.context() as patch:
        patch.setattr(logging.handlers, "time", fake)
        handler = logging.handlers.TimedRotatingFileHandler(folder / "app.log", **options)
        for record in records:
            fake.now = record.created
            handler.handle(record)
        handler.close()


async def _loopsink_run(
    folder: Path,
    options: dict[str, Any],
    start: float,
    records: list[logging.LogRecord],
    seed: int,
) -> TimedRotatingFileHandler:
    handler = TimedRotatingFileHandler(folder / "app.log", clock=lambda: start, **options)
    rnd = random.Random(seed)
    for batch in batches(records, [rnd.choice((1, 3, 8, 40, 500)) for _ in range(30)]):
        await handler.emit_batch(batch)
    await handler.close()
    return handler


def _timeline(start: float, steps: list[float]) -> list[logging.LogRecord]:
    records, now = [], start
    for index, step in enumerate(steps):
        now += step
        records.append(make_record(index, 3, created=now))
    return records


NY_SPRING = 1710054000  # 2024-03-10 02:00 EST -> 03:00 EDT, minus a day or so below
NY_FALL = 1730613600  # 2024-11-03 02:00 EDT -> 01:00 EST

RUNS = {
    "S every 2 s": ({"when": "S", "interval": 2, "backupCount": 3}, 1_700_000_000.25, 0.7, 60),
    "M, delay": ({"when": "m", "delay": True}, 1_700_000_013.5, 17.3, 40),
    "H with gaps": ({"when": "H", "backupCount": 4}, 1_700_000_000.0, 2900.0, 30),
    "D every 2 days": ({"when": "D", "interval": 2}, 1_700_000_000.0, 20_000.0, 40),
    "midnight, spring DST": (
        {"when": "midnight", "backupCount": 3},
        NY_SPRING - 200_000,
        9000.0,
        60,
    ),
    "midnight at 02:30, fall DST": (
        {"when": "MIDNIGHT", "atTime": datetime.time(2, 30)},
        NY_FALL - 200_000,
        7000.0,
        70,
    ),
    "weekly W6, utc": (
        {"when": "W6", "utc": True, "backupCount": 2},
        NY_FALL - 900_000,
        50_000.0,
        60,
    ),
    "weekly W2 local, delay": ({"when": "w2", "delay": True}, NY_SPRING - 900_000, 40_000.0, 60),
}


@pytest.mark.parametrize("zone", ["America/New_York"], indirect=True)
@pytest.mark.parametrize(("options", "start", "step", "count"), RUNS.values(), ids=RUNS.keys())
async def test_same_files_as_the_stdlib_on_a_fake_clock(
    zone: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
    start: float,
    step: float,
    count: int,
) -> None:
    rnd = random.Random(count)
    records = _timeline(start, [step * rnd.uniform(0.2, 1.8) for _ in range(count)])
    std, ours = tmp_path / "stdlib", tmp_path / "loopsink"
    for folder in (std, ours):
        folder.mkdir()
        if not options.get("delay"):
            # The first rollover counts from the file's mtime: a file from "start".
            (folder / "app.log").write_text("from before\n")
            os.utime(folder / "app.log", (start, start))
    _stdlib_run(std, options, start, records, monkeypatch)
    handler = await _loopsink_run(ours, options, start, records, seed=count)
    expected = snapshot_dir(str(std))
    assert len(expected) > 2  # the run crossed several rollovers
    assert snapshot_dir(str(ours)) == expected
    assert handler.error_count == 0


@pytest.mark.parametrize("zone", ["Europe/London"], indirect=True)
@pytest.mark.parametrize("when", ["H", "MIDNIGHT", "W3"])
def test_first_rollover_counts_from_the_existing_files_mtime(
    zone: str, tmp_path: Path, when: str
) -> None:
    path = tmp_path / "app.log"
    path.write_text("old\n")
    mtime = 1_711_846_000  # just before London's 2024 spring change
    os.utime(path, (mtime, mtime))
    reference = logging.handlers.TimedRotatingFileHandler(path, when=when, delay=True)
    ours = TimedRotatingFileHandler(path, when=when, delay=True, clock=lambda: 5.0)
    assert ours.rolloverAt == reference.rolloverAt == reference.computeRollover(mtime)
    reference.close()


NAMES = [
    "app.log",
    "app.log.2024-01-01",
    "app.log.2024-01-02.gz",
    "app.log.2024-01-03",
    "app.log.2024-01-04",
    "app.log.bak",
    "app.log.2024-1-05",
    "app.log.lock",
    "app.2024-01-06.log",
    "app.2024-01-07.log",
    "other.log.2024-01-01",
    "app.logx.2024-01-08",
    "app.log.2024-01-09_10",
]


@pytest.mark.parametrize("backup_count", [1, 2, 3, 5, 9])
@pytest.mark.parametrize("named", [False, True])
def test_get_files_to_delete_equals_the_stdlib(
    tmp_path: Path, backup_count: int, named: bool
) -> None:
    for name in NAMES:
        (tmp_path / name).write_text("x\n")
    reference = logging.handlers.TimedRotatingFileHandler(
        tmp_path / "app.log", when="D", backupCount=backup_count, delay=True
    )
    ours = TimedRotatingFileHandler(
        tmp_path / "app.log", when="D", backupCount=backup_count, delay=True
    )
    if named:

        def namer(name: str) -> str:
            return name

        reference.namer = namer
        ours.namer = namer
    expected = reference.getFilesToDelete()
    assert ours.getFilesToDelete() == expected
    kept = {os.path.basename(p) for p in expected}
    assert not kept & {"app.log", "app.log.bak", "app.log.lock", "other.log.2024-01-01"}
    reference.close()


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("X", r"when must be one of S, M, H, D, MIDNIGHT or W0-W6 \(any case\), got 'X'"),
        ("W7", r"weekly rollover needs a day from W0 \(Monday\) to W6 \(Sunday\), got when='W7'"),
        ("w", r"weekly rollover needs a day .*, got when='W'"),
        ("", r"when must be one of .*, got ''"),
    ],
)
def test_bad_when_is_a_clear_value_error(tmp_path: Path, when: str, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^TimedRotatingFileHandler {message}$"):
        TimedRotatingFileHandler(tmp_path / "app.log", when=when, delay=True)


def test_other_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    with pytest.raises(TypeError, match=r"when must be a str"):
        TimedRotatingFileHandler(path, when=3, delay=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"interval must be at least 1, got 0"):
        TimedRotatingFileHandler(path, interval=0, delay=True)
    with pytest.raises(TypeError, match=r"atTime must be a datetime.time or None"):
        TimedRotatingFileHandler(path, atTime="00:00", delay=True)  # type: ignore[arg-type]
    assert not path.exists()


async def test_gzip_keeps_backup_count_compressed_files(tmp_path: Path) -> None:
    start = 1_700_000_000.0
    handler = TimedRotatingFileHandler(
        tmp_path / "app.log",
        when="S",
        backupCount=2,
        delay=True,
        compress="gzip",
        clock=lambda: start,
    )
    records = _timeline(start, [1.0] * 6)
    for record in records:
        await handler.emit_batch([record])
    await handler.close()
    names = sorted(os.listdir(tmp_path))
    assert names == [
        "app.log",
        f"app.log.{time.strftime('%Y-%m-%d_%H-%M-%S', time.localtime(start + 4))}.gz",
        f"app.log.{time.strftime('%Y-%m-%d_%H-%M-%S', time.localtime(start + 5))}.gz",
    ]
    assert gzip.decompress((tmp_path / names[2]).read_bytes()) == b"rec 4 xxx\n"
    assert (tmp_path / "app.log").read_text() == "rec 5 xxx\n"


async def test_a_target_that_is_not_a_regular_file_is_never_rotated() -> None:
    start = 1_700_000_000.0
    handler = TimedRotatingFileHandler(os.devnull, when="S", clock=lambda: start)
    await handler.emit_batch(_timeline(start, [1.5] * 5))
    await handler.close()
    assert handler.error_count == 0
    assert handler.rolloverAt > start + 5  # the schedule moved on instead
    assert not os.path.isfile(os.devnull)  # still the device, not a rotated file


async def test_a_backlog_lands_in_the_file_of_its_creation_time(tmp_path: Path) -> None:
    """Records created before the boundary but written after it stay in the old file."""
    start = 1_700_000_000.0
    handler = TimedRotatingFileHandler(
        tmp_path / "app.log", when="M", delay=True, clock=lambda: start
    )
    late = [make_record(i, created=start + 59.9) for i in range(3)]
    fresh = [make_record(9, created=start + 60.0)]
    await handler.emit_batch(late + fresh)  # one batch that straddles the boundary
    await handler.close()
    rotated = tmp_path / f"app.log.{time.strftime('%Y-%m-%d_%H-%M', time.localtime(start))}"
    assert rotated.read_text().splitlines() == ["rec 0 ", "rec 1 ", "rec 2 "]
    assert (tmp_path / "app.log").read_text() == "rec 9 \n"


TIMED_WORKER = textwrap.dedent(
    """
    import logging, sys, time, anyio, anyio.lowlevel, loopsink

    path, worker, count, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    t0 = float(sys.argv[5])

    def speed_up(record):
        # A shared fast clock: 40 "seconds" of log time per real second, for every process.
        record.created = base + (time.time() - t0) * 40
        return True

    async def main():
        sink = loopsink.TimedRotatingFileHandler(
            path, when="S", backupCount=0, multiprocess=True, clock=lambda: base
        )
        logger = logging.getLogger("mp")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addFilter(speed_up)
        async with loopsink.install(sink, logger=logger, capacity=count) as queue:
            for i in range(count):
                logger.info("w%d r%d", worker, i)
                if i % 200 == 199:
                    await anyio.lowlevel.checkpoint()
        assert queue.stats.dropped_total == 0, queue.stats
        assert sink.error_count == 0

    anyio.run(main)
    """
)


@pytest.mark.slow
def test_processes_share_one_timed_file_and_rotate_each_interval_once(tmp_path: Path) -> None:
    processes, count = 3, 8000
    base = int(time.time())
    path = tmp_path / "app.log"
    path.write_text("")
    os.utime(path, (base, base))
    t0 = time.time()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", TIMED_WORKER, str(path), str(n), str(count), str(base), str(t0)]
        )
        for n in range(processes)
    ]
    for worker in workers:
        assert worker.wait(timeout=50) == 0
    seen: dict[str, int] = {}
    rotated = 0
    for name in os.listdir(tmp_path):
        if name.endswith(".lock"):
            continue
        rotated += name != "app.log"
        for line in (tmp_path / name).read_text().splitlines():
            seen[line] = seen.get(line, 0) + 1
    assert rotated >= 2  # the shared clock crossed several seconds
    assert len(seen) == processes * count  # no rotated file was replaced by a second rollover
    assert set(seen.values()) == {1}


async def test_max_age_prunes_by_modification_time_as_well(tmp_path: Path) -> None:
    start = 1_700_000_000.0
    handler = TimedRotatingFileHandler(
        tmp_path / "app.log", when="S", delay=True, max_age=600, clock=lambda: start
    )
    for record in _timeline(start, [1.0] * 3):  # two rollovers: two rotated files
        await handler.emit_batch([record])
    rotated = sorted(name for name in os.listdir(tmp_path) if name != "app.log")
    assert len(rotated) == 2
    stale = time.time() - 3600
    os.utime(tmp_path / rotated[0], (stale, stale))
    (tmp_path / "app.log.bak").write_text("a lookalike, never pruned\n")
    os.utime(tmp_path / "app.log.bak", (stale, stale))
    await handler.emit_batch(_timeline(start + 3, [1.0]))  # third rollover
    await handler.close()
    left = sorted(os.listdir(tmp_path))
    assert rotated[0] not in left
    assert rotated[1] in left
    assert "app.log.bak" in left
    assert len(left) == 4  # app.log, app.log.bak and two recent rotated files
