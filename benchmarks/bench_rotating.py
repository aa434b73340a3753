"""RotatingFileHandler throughput, loopsink against the stdlib, rollover every 1 MB.

Both run end to end in the same process on an event loop: the producer calls
``logger.info`` on the loop thread and yields with ``anyio.lowlevel.checkpoint()`` every
1000 records. The stdlib handler writes inside the call; loopsink's goes through
``loopsink.install`` (bridge → queue → sink). The clock stops when the handler is closed
(loopsink: when ``install`` has drained and closed the sink). Every record is then found
exactly once, in order, across the rotated files.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import shutil
import tempfile

import anyio
import anyio.lowlevel
from _common import Row, Section, loopsink_rate, print_rows, stdlib_rate

import loopsink

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_BYTES = 1 << 20
YIELD_EVERY = 1000


def _verify(folder: str, count: int) -> int:
    """Every record exactly once, in order from the oldest file; no file over the limit."""
    names = sorted(
        os.listdir(folder),
        key=lambda name: -int(name.rsplit(".", 1)[1]) if name[-1].isdigit() else 0,
    )
    expected = 0
    for name in names:
        path = os.path.join(folder, name)
        if name[-1].isdigit() and os.path.getsize(path) > MAX_BYTES:
            raise AssertionError(f"{path} is larger than maxBytes")
        with open(path, encoding="utf-8") as file:
            for line in file:
                if not line.endswith(f"request {expected} handled in 1.250 ms\n"):
                    raise AssertionError(f"{path}: expected record {expected}, got {line!r}")
                expected += 1
    if expected != count:
        raise AssertionError(f"{folder}: found {expected} of {count} records")
    return len(names)


async def _stdlib(folder: str, count: int) -> float:
    handler = logging.handlers.RotatingFileHandler(
        os.path.join(folder, "app.log"), maxBytes=MAX_BYTES, backupCount=100, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter(FORMAT))
    return await stdlib_rate("rotating.stdlib", handler, count, yield_every=YIELD_EVERY)


async def _loopsink(folder: str, count: int) -> float:
    sink = loopsink.RotatingFileHandler(
        os.path.join(folder, "app.log"), maxBytes=MAX_BYTES, backupCount=100, encoding="utf-8"
    )
    sink.setFormatter(logging.Formatter(FORMAT))
    rate, stats = await loopsink_rate("rotating.loopsink", sink, count, yield_every=YIELD_EVERY)
    if stats.dropped_total:
        raise AssertionError(f"records dropped: {stats}")
    return rate


def run(quick: bool) -> list[Section]:
    count, rounds = (30_000, 1) if quick else (150_000, 3)
    rates: dict[str, list[float]] = {"stdlib": [], "loopsink": []}
    files: dict[str, int] = {}

    async def main() -> None:
        for _ in range(rounds):
            for name, bench in (("stdlib", _stdlib), ("loopsink", _loopsink)):
                folder = tempfile.mkdtemp(prefix=f"loopsink-bench-rot-{name}-")
                try:
                    rates[name].append(await bench(folder, count))
                    files[name] = _verify(folder, count)
                finally:
                    shutil.rmtree(folder, ignore_errors=True)

    anyio.run(main)
    std, ours = max(rates["stdlib"]), max(rates["loopsink"])
    if files["stdlib"] != files["loopsink"]:
        raise AssertionError(f"different numbers of files: {files}")
    section = Section(
        "RotatingFileHandler, rollover every 1 MB",
        notes=(
            f"{count:,} records of about 90 bytes (`{FORMAT}`), {files['loopsink']} files each, "
            "logged on the loop thread, yielding every 1,000 records; timed until the handler "
            "is closed (loopsink: `install` drained and closed), then every record found "
            f"exactly once, in order, across the files. Best of {rounds}. Ratio: records/s "
            "against the stdlib RotatingFileHandler."
        ),
        rows=[
            Row("stdlib RotatingFileHandler", std, "records/s", 1.0),
            Row(
                "loopsink RotatingFileHandler (install + bridge)",
                ours,
                "records/s",
                ours / std,
                ">= 2x",
                ours / std >= 2.0,
            ),
        ],
    )
    return [section]


if __name__ == "__main__":
    print_rows(
        run(quick=bool(os.environ.get("QUICK"))),
        "  {name:50} {value:12,.0f} {unit} {ratio} {target} {met}",
    )
