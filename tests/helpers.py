"""Small helpers that more than one test module needs (not collected: no test_ prefix).

tests/conftest.py has pytest rewrite this module's asserts, so a failure shows its values.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import anyio

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
