"""Where a configured bridge's queue runs: ``auto`` moves onto the app's loop, ``loop`` says
when no loop comes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import loopsink
from loopsink import LoggingBridge
from loopsink._sinkentries import reopen_appending
from loopsink.config import ConfiguredBridge, configured_bridges, run_bridges
from loopsink.testing import CapturingSink


@pytest.fixture(autouse=True)
def _close_bridges() -> Iterator[None]:
    yield
    for item in configured_bridges():
        item.close()


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("app", logging.INFO, __file__, 1, message, None, None)


async def test_an_auto_bridge_started_in_a_thread_moves_onto_the_helpers_loop() -> None:
    sink = CapturingSink()
    item = ConfiguredBridge([sink], start="auto")
    item.handle(record("before the loop"))  # starts the thread, as uvicorn's first line does
    async with run_bridges():
        assert item.state == "loop"
        during = record("on the loop")
        item.handle(during)
        await item.queue.flush()
        # on the app's loop the bridge hands the record over as it is (the fast path: the
        # sink sees it through a view that carries its context, sharing its attributes);
        # from a thread it would have queued a copy
        assert sink.records[-1].__dict__ is during.__dict__
    item.handle(record("after the app"))
    item.close()
    assert sink.messages == ["before the loop", "on the loop", "after the app"]


async def test_a_thread_bridge_stays_in_its_thread_under_a_helper() -> None:
    sink = CapturingSink()
    item = ConfiguredBridge([sink], start="thread")
    async with run_bridges():
        assert item.state == "thread"
        item.handle(record("r"))
    item.close()
    assert sink.messages == ["r"]


def test_a_loop_bridge_that_no_loop_takes_says_so_once(capsys: pytest.CaptureFixture[str]) -> None:
    sink = CapturingSink()
    item = ConfiguredBridge([sink], start="loop", warn_after=0.05, capacity=3)
    item.name = "ls"
    for n in range(5):
        item.handle(record(f"r{n}"))
    timer = item._watch_timer
    assert timer is not None
    timer.join(10)
    item.handle(record("later"))
    assert item._watch_timer is timer  # armed once
    assert capsys.readouterr().err == (
        "loopsink: handler 'ls' (start='loop') has waited 0.05 s for an event loop to start "
        "its queue (3 records held, 2 dropped; the queue holds 3); they are written only at "
        "exit. Run the app with loopsink.contrib.fastapi.lifespan() (or "
        "loopsink.config.run_bridges()), or use start: 'auto'.\n"
    )
    item.close()  # the exit path delivers what was held
    assert sink.messages[:3] == ["r0", "r1", "r2"]


async def test_no_warning_when_a_loop_takes_the_queue_in_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = CapturingSink()
    item = ConfiguredBridge([sink], start="loop", warn_after=0.05)
    item.handle(record("early"))
    async with run_bridges():
        timer = item._watch_timer
        assert timer is not None
        timer.join(10)
    assert capsys.readouterr().err == ""
    assert sink.messages == ["early"]


@pytest.mark.parametrize("value", [0, None])
def test_warn_after_zero_or_none_never_warns(value: float | None) -> None:
    item = ConfiguredBridge([CapturingSink()], start="loop", warn_after=value)
    item.handle(record("r"))
    assert item._watch_timer is None
    item.close()


def test_a_bad_warn_after_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"^warn_after must be a number of seconds \(0 or None: never\), got -1$"
    ):
        ConfiguredBridge([CapturingSink()], start="loop", warn_after=-1)


def test_a_burst_while_the_thread_starts_waits_for_room_under_block() -> None:
    """Once, under load: a burst logged while the queue's thread was still starting filled
    the intake and was dropped as "full", although the policy was to block."""
    sink = CapturingSink()
    item = ConfiguredBridge([sink], start="thread", capacity=8)
    assert item.queue.overflow == "block"
    for i in range(2000):
        item.handle(record(f"r{i}"))
    item.close()
    assert item.queue.stats.dropped_total == 0
    assert sink.messages == [f"r{i}" for i in range(2000)]


def test_a_thread_bridge_is_the_only_handler_that_feeds_its_queue() -> None:
    """The thread that runs a configured bridge's queue is a ThreadedQueue with no bridge of
    its own: no second handler over the same queue sits in logging's list for
    ``logging.shutdown()`` to flush and close."""
    sink = CapturingSink()
    item = ConfiguredBridge([sink], start="thread")
    item._wait_started(5.0)
    assert item.state == "thread"
    runner = item._threaded
    assert runner is not None
    assert (runner.bridge, runner.logger, runner.queue) == (None, None, item.queue)
    feeding = [
        ref()
        for ref in logging._handlerList  # type: ignore[attr-defined]
        if isinstance(ref(), LoggingBridge) and ref().queue is item.queue  # type: ignore[union-attr]
    ]
    assert feeding == [item]
    item.handle(record("r"))
    item.flush()
    assert sink.messages == ["r"]
    item.close()
    assert not runner.running
    assert item.queue.closed


async def test_a_file_declared_with_mode_w_is_truncated_once_per_configuration(
    tmp_path: Path,
) -> None:
    """Each time an app's loop ends, the bridge's next queue reopens the sinks: a file sink
    declared with mode "w" appends from then on instead of erasing what was written."""
    path = tmp_path / "app.log"
    path.write_text("from an earlier run\n")
    sink = loopsink.FileHandler(str(path), mode="w")
    item = ConfiguredBridge([sink], start="loop")
    for turn in ("first", "second", "third"):
        async with run_bridges():
            item.handle(record(f"{turn} app"))
        assert sink.mode == "a"
    item.close()
    assert path.read_text() == "first app\nsecond app\nthird app\n"


def test_reopen_appending_turns_w_into_a_for_file_sinks_only(tmp_path: Path) -> None:
    truncating = loopsink.FileHandler(str(tmp_path / "w.log"), mode="w", delay=True)
    appending = loopsink.FileHandler(str(tmp_path / "a.log"), mode="a", delay=True)
    exclusive = loopsink.FileHandler(str(tmp_path / "x.log"), mode="x", delay=True)
    other = CapturingSink()
    other.mode = "w"  # type: ignore[attr-defined] # not a file sink: no baseFilename
    reopen_appending([truncating, appending, exclusive, other])
    assert [s.mode for s in (truncating, appending, exclusive)] == ["a", "a", "x"]
    assert other.mode == "w"  # type: ignore[attr-defined]
