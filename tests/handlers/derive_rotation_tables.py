"""Print the tables of ``test_timed_rotating.py`` and ``test_rotating.py`` from CPython 3.13.

Not a test: the tests hold the printed tables as literals and never ask the running stdlib.
Run it with CPython 3.13 (``~/.pyenv/versions/3.13.0/bin/python
tests/handlers/derive_rotation_tables.py``) only to extend or re-check the tables; it
refuses any other version, since the point is 3.13's behaviour, fixes included.
"""

from __future__ import annotations

import datetime
import logging
import logging.handlers
import os
import random
import sys
import tempfile
import time
import types
from typing import Any

ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
]
CONFIGS: list[tuple[str, int, datetime.time | None, bool]] = [  # when, interval, atTime, utc
    ("MIDNIGHT", 1, None, False),
    ("MIDNIGHT", 3, None, False),
    ("MIDNIGHT", 1, datetime.time(0, 0), False),
    ("MIDNIGHT", 2, datetime.time(2, 30, 15), False),
    ("W6", 1, None, False),
    ("W2", 2, datetime.time(2, 30, 15), False),
    ("W0", 1, datetime.time(0, 0), False),
    ("H", 3, None, False),
    ("MIDNIGHT", 2, None, True),
]
NY_SPRING = 1710054000
NY_FALL = 1730613600
RUNS: dict[str, tuple[dict[str, Any], float, float, int]] = {
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
    "midnight every 3 days": ({"when": "MIDNIGHT", "interval": 3}, NY_SPRING - 400_000, 30e3, 60),
    "weekly W6, utc": ({"when": "W6", "utc": True, "backupCount": 2}, NY_FALL - 900_000, 5e4, 60),
    "weekly W2 local, delay": ({"when": "w2", "delay": True}, NY_SPRING - 900_000, 40_000.0, 60),
    "weekly W4 every 2 weeks": ({"when": "W4", "interval": 2}, NY_FALL - 1_500_000, 6e4, 70),
}
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
    "app.log.b.2024-01-01",
    "app.log.2024-01-031",
]


def _set_zone(zone: str) -> None:
    os.environ["TZ"] = zone
    time.tzset()


def _dst_changes(year: int) -> list[int]:
    start = int(time.mktime((year, 1, 1, 0, 0, 0, 0, 0, -1)))
    found, previous = [], time.localtime(start).tm_isdst
    for moment in range(start, start + 366 * 86400, 900):
        flag = time.localtime(moment).tm_isdst
        if flag != previous:
            found.append(moment)
            previous = flag
    return found


def _local_iso(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment).astimezone().isoformat()


def _local(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int:
    return int(time.mktime((year, month, day, hour, minute, second, 0, 0, -1)))


def _instants() -> list[int]:
    changes = _dst_changes(2024) or [_local(2024, 3, 31, 2, 0, 0)]
    found = []
    for change in changes:
        day = time.localtime(change)
        before = time.localtime(change - 86400)
        ymd = (before.tm_year, before.tm_mon, before.tm_mday)
        found += [
            _local(*ymd, 12, 0, 0),
            _local(*ymd, 2, 30, 15),
            _local(day.tm_year, day.tm_mon, day.tm_mday, 0, 0, 0),
            change - 1,
            change + 3600,
        ]
    return sorted(set(found))


def print_rollovers(folder: str) -> None:
    print('ROLLOVERS = """')
    for zone in ZONES:
        _set_zone(zone)
        for when, interval, at_time, utc in CONFIGS:
            handler = logging.handlers.TimedRotatingFileHandler(
                os.path.join(folder, "x.log"),
                when=when,
                interval=interval,
                atTime=at_time,
                utc=utc,
                delay=True,
            )
            for moment in _instants():
                expected = handler.computeRollover(moment)
                at = at_time.isoformat() if at_time else "-"
                clock = "utc" if utc else "local"
                print(
                    f"{zone:<19} {_local_iso(moment):<25} {when:<8} {interval} {at:<8} "
                    f"{clock:<5} {_local_iso(expected)}"
                )
            handler.close()
    print('"""')


class _FakeTime(types.SimpleNamespace):
    """Stands in for the ``time`` module inside ``logging.handlers``: ``time()`` is ours."""

    def time(self) -> float:
        return float(self.now)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _record(index: int, created: float) -> logging.LogRecord:
    record = logging.LogRecord(
        "test.files", logging.INFO, __file__, 1, f"rec {index} xxx", None, None
    )
    record.created = created
    record.msecs = (created - int(created)) * 1000
    return record


def print_runs() -> None:
    _set_zone("America/New_York")
    print("RUNS = {")
    for label, (options, start, step, count) in RUNS.items():
        rnd = random.Random(count)
        records, now = [], start
        for index in range(count):
            now += step * rnd.uniform(0.2, 1.8)
            records.append(_record(index, now))
        folder = tempfile.mkdtemp()
        path = os.path.join(folder, "app.log")
        if not options.get("delay"):
            with open(path, "w") as file:
                file.write("from before\n")
            os.utime(path, (start, start))
        fake = _FakeTime(now=start)
        real = logging.handlers.time  # type: ignore[attr-defined]
        logging.handlers.time = fake  # type: ignore[attr-defined]
        try:
            handler = logging.handlers.TimedRotatingFileHandler(path, **options)
            for record in records:
                fake.now = record.created
                handler.handle(record)
            handler.close()
        finally:
            logging.handlers.time = real  # type: ignore[attr-defined]
        print(f"    {label!r}: (\n        {options!r},\n        {start!r}, {step!r}, {count!r},")
        print("        {")
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name)) as file:
                lines = file.read().splitlines()
            spec: list[Any] = ["from before"] if lines[:1] == ["from before"] else []
            numbers = [int(line.split()[1]) for line in lines if line.startswith("rec ")]
            assert numbers == list(range(numbers[0], numbers[-1] + 1))
            spec.append((numbers[0], numbers[-1]))
            print(f"            {name!r}: {tuple(spec)!r},")
        print("        },\n    ),")
    print("}")


def _dated_namer(name: str) -> str:
    return name.replace(".log.", ".") + ".log" if ".log." in name else name


def print_deletions() -> None:
    print("DELETIONS = {")
    for named in (False, True):
        for count in (1, 2, 3, 5, 9):
            folder = tempfile.mkdtemp()
            for name in NAMES:
                with open(os.path.join(folder, name), "w") as file:
                    file.write("x\n")
            handler = logging.handlers.TimedRotatingFileHandler(
                os.path.join(folder, "app.log"), when="D", backupCount=count, delay=True
            )
            if named:
                handler.namer = _dated_namer
            doomed = [os.path.basename(path) for path in handler.getFilesToDelete()]
            print(f"    ({named!r}, {count}): {doomed!r},")
            handler.close()
    print("}")


def print_first_rollovers() -> None:
    _set_zone("Europe/London")
    path = os.path.join(tempfile.mkdtemp(), "app.log")
    with open(path, "w") as file:
        file.write("old\n")
    os.utime(path, (1_711_846_000, 1_711_846_000))
    for when in ("H", "MIDNIGHT", "W3"):
        handler = logging.handlers.TimedRotatingFileHandler(path, when=when, delay=True)
        print(f"({when!r}, {_local_iso(handler.rolloverAt)!r}),")


# test_rotating.py's size scenarios and records (the same seeds and paddings).
SIZE_SCENARIOS: dict[str, dict[str, Any]] = {
    "small files": {"maxBytes": 1000, "backupCount": 3},
    "many backups": {"maxBytes": 700, "backupCount": 12},
    "delay": {"maxBytes": 1500, "backupCount": 2, "delay": True},
    "latin-1": {"maxBytes": 900, "backupCount": 4, "encoding": "latin-1", "errors": "replace"},
    "utf-16": {"maxBytes": 2000, "backupCount": 3, "encoding": "utf-16"},
    "no maxBytes": {"maxBytes": 0, "backupCount": 3},
    "no backupCount": {"maxBytes": 500, "backupCount": 0},
}


def _sized_records(count: int, seed: int) -> list[logging.LogRecord]:
    rnd = random.Random(seed)
    records = []
    for index in range(count):
        padding = rnd.choice((0, 5, 40, 90, 150, 400))
        text = f"rec {index} " + "x" * padding
        if index % 7 == 3:
            text += " é€😀"
        records.append(logging.LogRecord("test.files", logging.INFO, __file__, 1, text, None, None))
    return records


def print_size_runs() -> None:
    print("SIZE_FILES = {")
    for label, options in SIZE_SCENARIOS.items():
        folder = tempfile.mkdtemp()
        handler = logging.handlers.RotatingFileHandler(
            os.path.join(folder, "app.log"), **{"encoding": "utf-8", **options}
        )
        records = _sized_records(600, seed=1)
        for record in records:
            handler.handle(record)
        handler.close()
        ranges = {}
        for name in sorted(os.listdir(folder)):
            encoding = options.get("encoding", "utf-8")
            with open(os.path.join(folder, name), encoding=encoding, errors="replace") as file:
                numbers = [int(line.split()[1]) for line in file.read().splitlines()]
            assert numbers == list(range(numbers[0], numbers[-1] + 1))
            ranges[name] = (numbers[0], numbers[-1])
        print(f"    {label!r}: {ranges!r},")
    print("}")


def main() -> None:
    if sys.version_info[:2] != (3, 13):
        sys.exit(f"run this with CPython 3.13, not {sys.version.split()[0]}")
    print_rollovers(tempfile.mkdtemp())
    print_runs()
    print_deletions()
    print_first_rollovers()
    print_size_runs()


if __name__ == "__main__":
    main()
