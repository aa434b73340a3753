"""Configuration errors: one short exception, the message on the first and the last line.

dictConfig wraps whatever a handler factory raises in its own generic
``ValueError: Unable to configure handler 'name'``; these tests pin what the user reads:
the factory's exception (the first one printed) carries the message once, without a chain
of its own, and when it ends the program the message is repeated as the last line.
"""

from __future__ import annotations

import json
import logging.config
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from loopsink.config import configured_bridges

OFFERED = (
    "BufferingHandler, DatagramHandler, FileHandler, HTTPHandler, MemoryHandler, NullHandler, "
    "QueueHandler, RotatingFileHandler, SMTPHandler, SocketHandler, StreamHandler, "
    "SysLogHandler, TimedRotatingFileHandler, WatchedFileHandler"
)
FILE = {"class": "FileHandler", "filename": "never-written.log", "delay": True}


@pytest.fixture(autouse=True)
def _close_bridges() -> Iterator[None]:
    yield
    for item in configured_bridges():
        item.close()


def handler_config(handler: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"loopsink": handler},
        "root": {"handlers": ["loopsink"]},
    }


# (handler entry, the message the factory raises, what the last line says after the
# "loopsink: Unable to configure handler 'loopsink': " prefix)
CASES = [
    pytest.param(
        {"()": "loopsink.config.bridge", "sinks": {"file": {"class": "FileHandlr"}}},
        "handler 'loopsink': sinks.file.class: unknown sink 'FileHandlr' (did you mean "
        f"'FileHandler'?); loopsink's sinks are {OFFERED}, or give a dotted path to your own "
        "AsyncHandler subclass",
        id="unknown-sink",
    ),
    pytest.param(
        {"()": "loopsink.config.bridge", "sink": {"file": FILE}},
        "handler 'loopsink': unknown option 'sink' (did you mean 'sinks'?); a loopsink bridge "
        "takes sinks, level, capacity, overflow, name, start, backend, timeout, warn_after",
        id="sink-for-sinks",
    ),
    pytest.param(
        {"()": "loopsink.config.bridge", "sinks": {"file": FILE}, "overflow": "dropp"},
        "handler 'loopsink': overflow must be one of 'drop_newest', 'drop_oldest', 'block', "
        "got 'dropp'",
        id="bad-overflow",
    ),
    pytest.param(
        {"()": "loopsink.config.bridge", "sinks": {"file": {"()": "loopsink.FileHandlr"}}},
        "handler 'loopsink': sinks.file.(): module 'loopsink' has no attribute 'FileHandlr' "
        "(did you mean 'FileHandler'?)",
        id="sink-factory-typo",
    ),
]


@pytest.mark.parametrize(("handler", "message"), CASES)
def test_the_factory_raises_one_exception_with_the_message_once(
    handler: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=r"^Unable to configure handler 'loopsink'$") as info:
        logging.config.dictConfig(handler_config(handler))
    cause = info.value.__cause__
    assert isinstance(cause, ValueError)
    assert str(cause) == message
    # no chain of its own: the message is printed once, not once per layer
    assert cause.__cause__ is None
    assert cause.__suppress_context__


SCRIPT = """
import json, logging.config, sys
logging.config.dictConfig(json.loads(sys.argv[1]))
"""


def run_config(handler: dict[str, Any], script: str = SCRIPT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, json.dumps(handler_config(handler))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("handler", "message"), CASES)
def test_a_config_error_that_ends_the_program_is_its_first_and_last_line(
    handler: dict[str, Any], message: str
) -> None:
    proc = run_config(handler)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    # the first exception printed is the factory's, after a traceback of three frames
    errors = [n for n, line in enumerate(lines) if line.startswith("ValueError: ")]
    assert lines[errors[0]] == f"ValueError: {message}"
    assert errors[0] < 12, proc.stderr
    assert lines[errors[1]] == "ValueError: Unable to configure handler 'loopsink'"
    detail = message.removeprefix("handler 'loopsink': ")
    assert lines[-1] == f"loopsink: Unable to configure handler 'loopsink': {detail}"
    assert proc.stderr.count(detail) == 2  # the first exception and the last line


def test_a_typo_in_the_factory_name_gets_a_suggestion_on_the_last_line() -> None:
    proc = run_config({"()": "loopsink.config.bridg", "sinks": {"file": FILE}})
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        "loopsink: Unable to configure handler 'loopsink': cannot resolve "
        "'loopsink.config.bridg' (did you mean 'loopsink.config.bridge'?)"
    )
    proc = run_config({"()": "loopsink.confg.bridge", "sinks": {"file": FILE}})
    assert proc.stderr.splitlines()[-1] == (
        "loopsink: Unable to configure handler 'loopsink': cannot resolve "
        "'loopsink.confg.bridge' (did you mean 'loopsink.config.bridge'?)"
    )


def test_a_config_error_the_program_handles_prints_nothing_at_exit() -> None:
    script = """
import json, logging.config, sys
try:
    logging.config.dictConfig(json.loads(sys.argv[1]))
except ValueError:
    print("handled")
"""
    proc = run_config(
        {"()": "loopsink.config.bridge", "sinks": {"file": {"class": "Nope"}}}, script
    )
    assert proc.returncode == 0
    assert proc.stdout == "handled\n"
    assert proc.stderr == ""
