"""dictConfig glue: building bridges and sinks, errors naming the key, and how queues start."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import loopsink
from loopsink.config import ConfiguredBridge, bridge, configured_bridges, run_bridges
from loopsink.testing import CapturingSink

CAPTURE = "loopsink.testing.CapturingSink"


def config(handler: dict[str, Any], **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(levelname)s:%(name)s:%(message)s"}},
        "filters": {"only_app": {"name": "app"}},
        "handlers": {"ls": handler},
        "root": {"handlers": ["ls"], "level": "DEBUG"},
    }
    base.update(extra)
    return base


@pytest.fixture(autouse=True)
def _close_bridges() -> Iterator[None]:
    yield
    for item in configured_bridges():
        item.close()


def the_bridge() -> ConfiguredBridge:
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, ConfiguredBridge)
    return handler


def captured(item: ConfiguredBridge, index: int = 0) -> CapturingSink:
    sink = item.sinks[index]
    assert isinstance(sink, CapturingSink)
    return sink


def app_messages(item: ConfiguredBridge) -> list[str]:
    """What the test logged (asyncio's own "Using selector" debug records left out)."""
    return [r.getMessage() for r in captured(item).records if r.name == "app"]


# -- building --------------------------------------------------------------------------------


def test_dictconfig_builds_bridge_with_named_sinks_and_their_options(tmp_path: Path) -> None:
    logging.config.dictConfig(
        config(
            {
                "()": "loopsink.config.bridge",
                "level": "INFO",
                "capacity": 50,
                "overflow": "drop_oldest",
                "start": "loop",
                "sinks": {
                    "file": {
                        "class": "FileHandler",
                        "filename": str(tmp_path / "app.log"),
                        "mode": "w",
                        "delay": True,
                        "level": "WARNING",
                        "formatter": "plain",
                        "filters": ["only_app"],
                    },
                    "console": {
                        "class": "loopsink.StreamHandler",
                        "stream": "ext://sys.stdout",
                        ".": {"terminator": "\r\n"},
                    },
                },
            }
        )
    )
    item = the_bridge()
    assert item.name == "ls"
    assert item.level == logging.INFO
    assert item.state == "idle"
    assert item.queue.capacity == 50
    assert item.queue.overflow == "drop_oldest"
    assert item.queue.name == "ls"
    file, console = item.sinks
    assert isinstance(file, loopsink.FileHandler)
    assert (file.name, file.mode, file.delay, file.level) == ("file", "w", True, logging.WARNING)
    assert file.baseFilename == str(tmp_path / "app.log")
    assert file.formatter is not None
    assert file.formatter._fmt == "%(levelname)s:%(name)s:%(message)s"
    assert [type(f) for f in file.filters] == [logging.Filter]
    assert isinstance(console, loopsink.StreamHandler)
    assert console.name == "console"
    assert console.stream is sys.stdout
    assert console.terminator == "\r\n"


def test_sinks_as_a_list_and_bridge_formatter_is_the_sinks_default() -> None:
    own = logging.Formatter("own:%(message)s")
    logging.config.dictConfig(
        config(
            {
                "()": "loopsink.config.bridge",
                "formatter": "plain",
                "start": "loop",
                "sinks": [{"class": CAPTURE}, {"class": CAPTURE, "formatter": own}],
            }
        )
    )
    item = the_bridge()
    first, second = item.sinks
    assert first.name is None
    assert first.formatter is item.formatter
    assert second.formatter is own


def test_bridge_from_python_takes_sink_objects() -> None:
    sink = CapturingSink()
    item = bridge(sinks=[sink], start="loop", name="py")
    assert item.sinks == (sink,)
    assert item.queue.name == "py"
    item.close()


# -- errors name the key -----------------------------------------------------------------------


def configure_error(handler: dict[str, Any]) -> str:
    with pytest.raises(ValueError, match=r"^Unable to configure handler 'ls'$") as info:
        logging.config.dictConfig(config(handler))
    return str(info.value.__cause__)


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        (
            {"class": "FileHandlr", "filename": "x.log"},
            r"^handler 'ls': sinks\[0\]\.class: unknown sink 'FileHandlr' "
            r"\(did you mean 'FileHandler'\?\); loopsink's sinks are .*FileHandler.*, or give "
            r"a dotted path to your own AsyncHandler subclass$",
        ),
        (
            {"class": "FileHandler", "filename": "x.log", "maxbytes": 10},
            r"^handler 'ls': sinks\[0\] \(FileHandler\): unknown option 'maxbytes'; it takes "
            r"filename, mode, encoding, delay, errors$",
        ),
        (
            {"class": "FileHandler", "delay": True},
            r"^handler 'ls': sinks\[0\] \(FileHandler\): missing required option 'filename'$",
        ),
        (
            {"class": "FileHandler", "filename": "x.log", "mode": "r"},
            r"^handler 'ls': sinks\[0\] \(FileHandler\): FileHandler mode must open the file "
            r"for writing .*, got 'r'$",
        ),
        (
            {"class": CAPTURE, "formatter": "plian"},
            r"^handler 'ls': sinks\[0\] \(CapturingSink\)\.formatter: no formatter named "
            r"'plian' \(did you mean 'plain'\?\) in the 'formatters' section "
            r"\(defined: 'plain'\)$",
        ),
        (
            {"class": CAPTURE, "filters": ["nope"]},
            r"^handler 'ls': sinks\[0\] \(CapturingSink\)\.filters\[0\]: no filter named "
            r"'nope' in the 'filters' section \(defined: 'only_app'\)$",
        ),
        (
            {"class": CAPTURE, "level": "LOUD"},
            r"^handler 'ls': sinks\[0\] \(CapturingSink\)\.level: Unknown level: 'LOUD'$",
        ),
        (
            {"class": "logging.FileHandler", "filename": "x.log"},
            r"^handler 'ls': sinks\[0\]\.class: 'logging.FileHandler' is a stdlib handler, not "
            r"a loopsink sink; use loopsink.FileHandler\. To keep it a stdlib handler, declare "
            r"it as a dictConfig handler of its own$",
        ),
        (
            {"filename": "x.log"},
            r"^handler 'ls': sinks\[0\] has no 'class': name the sink, e\.g\. "
            r"'class': 'FileHandler'$",
        ),
        (
            {"class": "loopsink.Nope"},
            r"^handler 'ls': sinks\[0\]\.class: module 'loopsink' has no attribute 'Nope'$",
        ),
    ],
    ids=[
        "unknown-sink",
        "unknown-option",
        "missing-option",
        "bad-value",
        "unknown-formatter",
        "unknown-filter",
        "bad-level",
        "stdlib-handler",
        "no-class",
        "bad-dotted-path",
    ],
)
def test_a_bad_sink_entry_fails_at_configuration_naming_the_key(
    sink: dict[str, Any], message: str
) -> None:
    cause = configure_error({"()": "loopsink.config.bridge", "sinks": [sink]})
    assert re.match(message, cause), cause


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (
            {"()": "loopsink.config.bridge", "sinks": [{"class": CAPTURE}], "capcity": 5},
            "handler 'ls': unknown option 'capcity' (did you mean 'capacity'?); a loopsink "
            "bridge takes sinks, level, capacity, overflow, name, start, backend, timeout, "
            "warn_after",
        ),
        (
            {"()": "loopsink.config.bridge", "sinks": [{"class": CAPTURE}], "start": "later"},
            "handler 'ls': start must be one of 'auto', 'loop', 'thread', got 'later'",
        ),
        (
            {"()": "loopsink.config.bridge", "sinks": [{"class": CAPTURE}], "overflow": "x"},
            "handler 'ls': overflow must be one of 'drop_newest', 'drop_oldest', 'block', got 'x'",
        ),
        (
            {"()": "loopsink.config.bridge", "sinks": []},
            "handler 'ls': sinks is empty; declare at least one sink",
        ),
        (
            {"()": "loopsink.config.bridge", "sinks": {"a": {"class": CAPTURE}}, "timeout": 0},
            "handler 'ls': timeout must be a positive number of seconds, got 0",
        ),
    ],
    ids=["unknown-bridge-option", "bad-start", "bad-overflow", "no-sinks", "bad-timeout"],
)
def test_a_bad_bridge_option_fails_naming_the_key(handler: dict[str, Any], message: str) -> None:
    assert configure_error(handler) == message


def test_missing_sinks_option() -> None:
    with pytest.raises(ValueError, match=r"^a loopsink bridge needs 'sinks': a list of sink"):
        bridge(level="INFO")


# -- starting ------------------------------------------------------------------------------------


async def test_loop_policy_keeps_early_records_until_run_bridges_starts_the_queue() -> None:
    logging.config.dictConfig(
        config({"()": "loopsink.config.bridge", "start": "loop", "sinks": [{"class": CAPTURE}]})
    )
    item = the_bridge()
    log = logging.getLogger("app")
    log.info("before the loop claims it")
    first_queue = item.queue
    assert item.state == "idle"
    assert captured(item).records == []
    with anyio.fail_after(10):
        async with run_bridges() as bridges:
            assert bridges == [item]
            assert item.state == "loop"
            log.info("while it runs")
            await item.queue.flush()
            assert app_messages(item) == ["before the loop claims it", "while it runs"]
            log.info("during shutdown")
    # the helper's exit delivered everything and handed the bridge a fresh idle queue
    assert app_messages(item)[-1] == "during shutdown"
    assert first_queue.closed
    assert item.state == "idle"
    assert item.queue is not first_queue
    assert item.queue.name == first_queue.name == "ls"
    log.info("after the loop")
    item.close()  # what logging.shutdown() does at exit: drains the late record in a thread
    assert app_messages(item) == [
        "before the loop claims it",
        "while it runs",
        "during shutdown",
        "after the loop",
    ]
    assert item.state == "closed"


def test_auto_policy_starts_a_thread_on_the_first_record_and_close_drains_it() -> None:
    logging.config.dictConfig(
        config({"()": "loopsink.config.bridge", "sinks": [{"class": CAPTURE}]})
    )
    item = the_bridge()
    assert item.state == "idle"
    logging.getLogger("app").warning("first")
    assert item.state in {"starting", "thread"}  # a starter thread: the log call never waits

    def log_from_threads(n: int) -> None:
        for i in range(n):
            logging.getLogger("app").info("t%d", i)

    workers = [threading.Thread(target=log_from_threads, args=(200,)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    item.flush()
    assert item.state == "thread"
    assert len(app_messages(item)) == 601
    item.close()
    assert item.state == "closed"
    assert item not in configured_bridges()


async def test_run_bridges_adopts_a_bridge_already_running_in_its_thread() -> None:
    logging.config.dictConfig(
        config({"()": "loopsink.config.bridge", "start": "thread", "sinks": [{"class": CAPTURE}]})
    )
    item = the_bridge()
    assert item.state in {"starting", "thread"}  # started at configuration time
    assert item.queue.overflow == "block"
    with anyio.fail_after(10):
        async with run_bridges():
            for i in range(100):
                logging.getLogger("app").info("r%d", i)
        # the exit waited for the thread's full flush
        assert app_messages(item) == [f"r{i}" for i in range(100)]
    assert item.state == "thread"


def test_reconfiguring_closes_the_previous_bridge_and_delivers_its_records() -> None:
    logging.config.dictConfig(
        config({"()": "loopsink.config.bridge", "start": "loop", "sinks": [{"class": CAPTURE}]})
    )
    old = the_bridge()
    logging.getLogger("app").info("kept")
    logging.config.dictConfig(
        config({"()": "loopsink.config.bridge", "start": "loop", "sinks": [{"class": CAPTURE}]})
    )
    assert old.state == "closed"
    # dictConfig holds the logging lock while it closes the old bridge, so the drain runs
    # in a (non-daemon) thread of its own
    for thread in threading.enumerate():
        if thread.name == "loopsink-close":
            thread.join(10)
    assert app_messages(old) == ["kept"]
    assert configured_bridges() == [the_bridge()]


# -- real processes: nothing lost when a script just ends ---------------------------------------

SCRIPT = textwrap.dedent(
    """
    import json, logging, logging.config, sys, threading
    cfg = json.loads(sys.argv[1])
    logging.config.dictConfig(cfg)
    log = logging.getLogger("app")

    def work(tag):
        for i in range(2500):
            log.info("%s %d", tag, i)

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.info("last line")
    """
)


@pytest.mark.parametrize("start", ["auto", "loop", "thread"])
def test_a_script_that_just_exits_loses_nothing(tmp_path: Path, start: str) -> None:
    log_file = tmp_path / "out.log"
    cfg = config(
        {
            "()": "loopsink.config.bridge",
            "start": start,
            "capacity": 100_000,
            "sinks": [{"class": "FileHandler", "filename": str(log_file), "formatter": "plain"}],
        }
    )
    cfg["root"]["level"] = "INFO"  # leave out asyncio's "Using selector" debug lines
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = log_file.read_text().splitlines()
    expected = [f"INFO:app:t{n} {i}" for n in range(4) for i in range(2500)]
    expected.append("INFO:app:last line")
    assert sorted(lines) == sorted(expected)


# -- more shapes -------------------------------------------------------------------------------


def test_public_module_surface() -> None:
    import loopsink.config

    assert loopsink.config.__all__ == [
        "ConfiguredBridge",
        "StartPolicy",
        "bridge",
        "configured_bridges",
        "run_bridges",
    ]
    assert ConfiguredBridge.__module__ == "loopsink.config"
    assert bridge.__module__ == "loopsink.config"


async def test_a_nested_entry_builds_a_memory_handler_target() -> None:
    logging.config.dictConfig(
        config(
            {
                "()": "loopsink.config.bridge",
                "start": "loop",
                "sinks": {
                    "memory": {
                        "class": "MemoryHandler",
                        "capacity": 100,
                        "flushLevel": "ERROR",
                        "target": {"class": CAPTURE, "formatter": "plain"},
                    }
                },
            }
        )
    )
    item = the_bridge()
    (memory,) = item.sinks
    assert isinstance(memory, loopsink.MemoryHandler)
    target = memory.target
    assert isinstance(target, CapturingSink)
    assert target.formatter is not None
    with anyio.fail_after(10):
        async with run_bridges():
            logging.getLogger("app").info("buffered")
            logging.getLogger("app").error("flushes the buffer")
    assert target.lines == ["INFO:app:buffered", "ERROR:app:flushes the buffer"]


def test_thread_policy_on_trio() -> None:
    item = bridge(sinks=[CapturingSink()], start="thread", backend="trio")
    logging.getLogger().addHandler(item)
    logging.getLogger("app").warning("via trio")
    item.flush()
    assert item.state == "thread"
    assert app_messages(item) == ["via trio"]
    item.close()
    logging.getLogger().removeHandler(item)


async def test_bridge_configured_inside_a_loop_can_still_run_in_a_thread() -> None:
    """A queue is bound to the async library that made it; the bridge makes its queues so
    that they can run on any loop, whichever loop configured logging."""
    logging.config.dictConfig(
        config({"()": "loopsink.config.bridge", "sinks": [{"class": CAPTURE}]})
    )
    item = the_bridge()
    logging.getLogger("app").info("first record starts the thread")
    await anyio.to_thread.run_sync(item.flush)
    assert item.state == "thread"
    assert app_messages(item) == ["first record starts the thread"]
    await anyio.to_thread.run_sync(item.close)


async def test_records_before_the_loop_are_kept_up_to_capacity_and_the_rest_counted() -> None:
    # Only the app's records may compete for the 10 places: under load, asyncio's debug mode
    # logs a slow-callback warning while the queue starts, which would be one drop more.
    logging.config.dictConfig(
        config(
            {
                "()": "loopsink.config.bridge",
                "filters": ["only_app"],
                "start": "loop",
                "capacity": 10,
                "sinks": [{"class": CAPTURE}],
            }
        )
    )
    item = the_bridge()
    for i in range(15):
        logging.getLogger("app").info("early %d", i)
    queue = item.queue
    assert queue.stats.dropped == {loopsink.DropReason.FULL: 5}
    with anyio.fail_after(10):
        async with run_bridges():
            pass
    assert app_messages(item) == [f"early {i}" for i in range(10)]
    summaries = [r.getMessage() for r in captured(item).records if r.name == "loopsink"]
    assert len(summaries) == 1
    assert summaries[0].startswith("5 records dropped: queue full (capacity 10")


FORK_SCRIPT = textwrap.dedent(
    """
    import json, logging, logging.config, os, sys
    cfg = json.loads(sys.argv[1])
    logging.config.dictConfig(cfg)
    log = logging.getLogger("app")
    log.info("parent before fork")
    logging.getLogger().handlers[0].flush()  # the parent's sink is idle when it forks
    pid = os.fork()
    if pid == 0:
        log.info("child 1")
        log.info("child 2")
        # a new configuration in the child closes the inherited bridge without hanging
        cfg["handlers"]["ls"]["sinks"][0]["filename"] = sys.argv[2]
        logging.config.dictConfig(cfg)
        log.info("child after its own configuration")
        sys.exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    log.info("parent after fork")
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_delivers_its_records_through_the_inherited_bridge(
    tmp_path: Path,
) -> None:
    """Fork is supported (#22): the child's bridge gets a queue and a thread of its own."""
    parent_log, child_log = tmp_path / "parent.log", tmp_path / "child.log"
    cfg = config(
        {
            "()": "loopsink.config.bridge",
            "start": "thread",
            "sinks": [{"class": "FileHandler", "filename": str(parent_log), "formatter": "plain"}],
        }
    )
    cfg["root"]["level"] = "INFO"
    proc = subprocess.run(
        # 3.12+ warns about fork() in a process with threads: the very case under test
        [
            sys.executable,
            "-W",
            "ignore::DeprecationWarning",
            "-c",
            FORK_SCRIPT,
            json.dumps(cfg),
            str(child_log),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert parent_log.read_text().splitlines() == [
        "INFO:app:parent before fork",
        "INFO:app:child 1",
        "INFO:app:child 2",
        "INFO:app:parent after fork",
    ]
    assert child_log.read_text().splitlines() == ["INFO:app:child after its own configuration"]
    assert proc.stderr == ""
