"""A sink of your own: JSON lines appended to a file, written behind like the built-ins.

``JsonLinesSink`` is written from ``AsyncHandler``'s documented contract alone (see the
"Writing a sink" guide), and gets what the built-in file sink gets:

* **batches**: the queue hands it every record waiting, up to ``max_batch_size``, in one
  ``emit_batch`` call;
* **formatting in slices**: ``format_lines`` formats the batch on the event loop and yields
  to other tasks every fraction of a millisecond, so a burst never stalls the app;
* **its own I/O thread**: ``write_behind`` hands the bytes to the sink's thread, which calls
  ``write_blocking``; the event loop never waits on the disk;
* **write-behind**: under a queue, the bytes are held for a few milliseconds and joined
  with the next batches into one write; ``flush()`` and ``close()`` write them at once;
* **late failures**: a write that fails on the thread is reported (``handleError``) and
  taken back out of the sink's ``emitted`` count.

The script logs a burst of 5,000 records and a few more, each with a request id passed in
``extra``, then prints what the file holds and the sink's statistics. Run it with
``python examples/jsonl_sink.py``; it takes well under a second and writes under a
temporary directory.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from typing import BinaryIO

import anyio

import loopsink


class JsonLinesSink(loopsink.AsyncHandler):
    """Appends one JSON object per record to ``path`` (UTF-8, one line each).

    The file is opened by the sink's I/O thread on the first write, so neither a slow
    disk nor ``open`` ever runs on the event loop.
    """

    #: As the built-in file sink: the more records a batch carries, the less each costs.
    max_batch_size = 16_384

    def __init__(self, path: str, *, level: int | str = logging.NOTSET) -> None:
        super().__init__(level)
        self.path = os.path.abspath(path)
        self.setFormatter(loopsink.JSONFormatter())
        self._file: BinaryIO | None = None  # only ever touched on the I/O thread

    async def emit(self, record: logging.LogRecord) -> None:
        # One record, as handle() or a MemoryHandler delivers: the same path as a batch.
        await self.emit_batch([record])

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        # Formats on the loop in slices; a record whose formatting fails is reported
        # (handleError) and left out of `formatted`.
        text, formatted = await self.format_lines(records, "\n")
        if formatted:
            await self.write_behind(text.encode("utf-8"), formatted)

    def write_blocking(self, data: bytes) -> None:
        # The sink's I/O thread: blocking is fine here.
        if self._file is None:
            self._file = open(self.path, "ab")
        self._file.write(data)
        self._file.flush()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def close(self) -> None:
        # On the I/O thread, after everything handed over is written; then let it go.
        await self.run_in_io_thread(self._close_file)
        await super().close()


async def main() -> None:
    folder = tempfile.mkdtemp(prefix="loopsink-jsonl-")
    path = os.path.join(folder, "app.jsonl")
    sink = JsonLinesSink(path)
    logger = logging.getLogger("shop")
    logger.setLevel(logging.INFO)
    logger.propagate = False

    async with loopsink.install(sink, logger=logger) as queue:
        for i in range(5000):  # a burst: no await in between
            logger.info("order %d shipped", i, extra={"request_id": f"r{i % 50}"})
        await queue.flush()  # written and flushed: the file holds all 5,000
        with open(path, encoding="utf-8") as file:
            print(f"after flush(): {sum(1 for _ in file)} lines in {path}")
        logger.warning("stock low", extra={"request_id": "r-last"})
    # install() closed the queue, and the queue closed the sink: the last line is written
    with open(path, encoding="utf-8") as file:
        lines = [json.loads(line) for line in file]
    print(f"after close(): {len(lines)} lines; the last one: {json.dumps(lines[-1])}")
    stats = queue.stats.sinks[0]
    print(f"sink stats: emitted={stats.emitted} errors={stats.errors}")
    if len(lines) != 5001 or lines[-1]["message"] != "stock low":
        raise SystemExit("records went missing")


if __name__ == "__main__":
    anyio.run(main)
