"""Small helpers that more than one test module needs (not collected: no test_ prefix).

tests/conftest.py has pytest rewrite this module's asserts, so a failure shows its values.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import anyio
import anyio.lowlevel

from loopsink.testing import CapturingSink

EXAMPLES = Path(__file__).parents[1] / "examples"


def load_example(filename: str, module_name: str) -> ModuleType:
    """Import ``examples/<filename>`` as ``module_name`` (examples are scripts, not a package),
    registered in sys.modules so that its classes pickle and its dataclasses resolve."""
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / filename)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class ListHandler(logging.Handler):
    """A stdlib target that keeps what it gets, and the thread it got it on."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []
        self.threads: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.threads.add(threading.get_ident())


class GateSink(CapturingSink):
    """Blocks in emit_batch until released: a sink that hangs, under the test's control."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = anyio.Event()
        self.release = anyio.Event()

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        self.entered.set()
        await self.release.wait()
        await super().emit_batch(records)


def spin(seconds: float) -> None:
    """Keep this thread busy for ``seconds`` of its own CPU time, as a handler's work does:
    a machine that shares its cores with other work stretches it in wall time only."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


async def log_beside_a_busy_task(
    logger: logging.Logger, rate: int, seconds: float, step: float
) -> int:
    """Log ``record N`` at ``rate`` records a second for ``seconds`` (paced by the loop,
    1 ms at a time) while another task keeps the loop busy for ``step`` of CPU time between
    each two of its awaits: a service under load, whose loop never idles. Returns how many
    records were logged.

    Seconds are the loop thread's CPU time, as ``step`` is: a machine whose cores are shared
    (a sink's own thread, a server in the test's process, another job on a CI machine) then
    stretches the run, not the share of the loop that the logging needs."""
    stop = anyio.Event()

    async def busy() -> None:
        while not stop.is_set():
            spin(step)
            await anyio.lowlevel.checkpoint()

    sent = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(busy)
        start = time.thread_time()
        while (elapsed := time.thread_time() - start) < seconds:
            while sent < int(elapsed * rate):
                logger.info("record %d", sent)
                sent += 1
            await anyio.sleep(0.001)
        stop.set()
    return sent


async def until(condition: Callable[[], bool], deadline: float = 10.0) -> None:
    """Wait, a pass of the loop at a time, until ``condition()`` holds (at most ``deadline``)."""
    with anyio.fail_after(deadline):
        while not condition():
            await anyio.lowlevel.checkpoint()


def quiet_logger(name: str) -> logging.Logger:
    """Logger ``name`` at INFO that does not propagate: only the test's own handler sees it."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


class Ticker:
    """A task that counts its own steps: work that notes a count other than the one before
    it ran after the loop let other tasks run."""

    def __init__(self) -> None:
        self.count = 0
        self.stop = anyio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            self.count += 1
            await anyio.lowlevel.checkpoint()
