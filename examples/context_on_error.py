"""Context on error: keep the last N DEBUG records, write them only when an ERROR arrives.

Logging every DEBUG line costs disk and drowns the signal; logging none leaves you blind
when something breaks. The recipe people build by hand: a ``MemoryHandler`` subclass that
keeps only the most recent ``capacity`` records (a sliding window instead of "flush when
full") and hands them to its target only when an ERROR comes, so ``incidents.log`` holds
each error with the few dozen lines that led to it, and nothing else.

The app below handles 200 requests; request 120 fails. Normal output (INFO and up) goes to
stdout as usual through a second sink. At the end the example prints ``incidents.log``:
the 20 DEBUG/INFO records before the failure, then the error, and checks that nothing
else got in (it exits with status 1 otherwise).

Run it with ``python examples/context_on_error.py``; it takes a fraction of a second.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

import anyio
import anyio.lowlevel

import loopsink


class ContextOnError(loopsink.MemoryHandler):
    """A sliding window of the last ``capacity`` records, sent on a record >= ``flushLevel``.

    Unlike ``MemoryHandler`` it never sends because it is full (it forgets the oldest
    record instead), and its ``flush()`` sends nothing: ``queue.flush()`` and the queue's
    close call ``flush()`` on every sink (as ``logging.shutdown()`` does in the stdlib), and
    a window that never led to an error is not worth keeping.
    """

    def __init__(
        self,
        capacity: int,
        target: loopsink.AsyncHandler | logging.Handler,
        flushLevel: int = logging.ERROR,
    ) -> None:
        super().__init__(capacity, flushLevel, target, flushOnClose=False)

    def shouldFlush(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.flushLevel

    async def emit(self, record: logging.LogRecord) -> None:
        self.buffer.append(record)
        if self.shouldFlush(record):
            await super().flush()  # MemoryHandler.flush: the window and the error, in order
        elif len(self.buffer) > self.capacity:
            del self.buffer[0]  # only the recent past explains an error

    async def flush(self) -> None:
        """Nothing is due until an error arrives: the window is context, not pending output."""


async def handle_request(logger: logging.Logger, number: int) -> None:
    logger.debug("request %d: parsed headers", number)
    logger.debug("request %d: cache %s", number, "hit" if number % 3 else "miss")
    if number == 120:
        try:
            raise ConnectionResetError("database went away")
        except ConnectionResetError:
            logger.exception("request %d failed", number)
            return
    logger.debug("request %d: rendered", number)
    if number % 50 == 0:
        logger.info("%d requests served", number)
    await anyio.lowlevel.checkpoint()


async def main() -> int:
    folder = tempfile.mkdtemp(prefix="loopsink-context-")
    incidents = loopsink.FileHandler(os.path.join(folder, "incidents.log"))
    incidents.setFormatter(logging.Formatter("%(levelname)-5s %(message)s"))
    window = ContextOnError(20, target=incidents)
    console = loopsink.StreamHandler(sys.stdout)
    console.setLevel(logging.INFO)
    console.setFormatter(logging.Formatter("console: %(levelname)s %(message)s"))

    logger = logging.getLogger("shop")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    async with loopsink.install(window, console, logger=logger):
        for number in range(1, 201):
            await handle_request(logger, number)
    await incidents.close()  # the target is ours to close: MemoryHandler leaves it open

    with open(incidents.baseFilename, encoding="utf-8") as file:
        lines = file.read().splitlines()
    print(f"\n{incidents.baseFilename}:")
    print("\n".join(lines))
    entries = [line for line in lines if line[:5].strip() in {"DEBUG", "INFO", "ERROR"}]
    ok = (
        len(entries) == 21
        and entries[-1] == "ERROR request 120 failed"
        and entries[0] == "DEBUG request 114: parsed headers"
        and any("ConnectionResetError: database went away" in line for line in lines)
    )
    if not ok:
        print("unexpected incidents.log content", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
