"""LoggingBridge and install(): the stdlib logging call into the queue."""

from __future__ import annotations

import logging
import pathlib
import subprocess
import sys
import textwrap
import threading

import anyio
import pytest

import loopsink
from loopsink import LoggingBridge, LogQueue
from loopsink.testing import CapturingSink, capture_records


def app_logger(name: str = "app") -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


async def test_install_bridges_the_root_logger_and_detaches_on_exit() -> None:
    sink = CapturingSink()
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    # The asyncio backend runs in debug mode here, whose "Executing <Task …> took 0.101
    # seconds" warnings on a loaded machine would reach this root bridge too (seen once in
    # CI): the harness's records, not the test's. (The conftest restores the logger.)
    logging.getLogger("asyncio").propagate = False
    async with loopsink.install(sink) as queue:
        assert any(isinstance(h, LoggingBridge) for h in root.handlers)
        logging.getLogger("some.module").info("hello %s", "world")
        await queue.flush()
        assert sink.messages == ["hello world"]
    assert not any(isinstance(h, LoggingBridge) for h in root.handlers)
    logging.getLogger("some.module").info("after")
    assert sink.messages == ["hello world"]


async def test_hundred_thousand_records_all_on_disk_once(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "app.log"
    logger = app_logger()
    count = 100_000
    async with loopsink.install(loopsink.FileHandler(path), logger=logger, capacity=count):
        for i in range(count):
            logger.info("record %d", i)
            if i % 1000 == 999:
                await anyio.sleep(0)
    lines = path.read_text().splitlines()
    assert lines == [f"record {i}" for i in range(count)]


async def test_mutated_argument_after_the_call_does_not_change_the_log() -> None:
    logger = app_logger()
    async with capture_records(logger) as captured:
        items = ["a"]
        state = {"user": "alice"}
        logger.info("items=%s", items)
        logger.info("state: %(user)s", state)
        items.append("b")
        state["user"] = "mallory"
    assert captured.messages == ["items=['a']", "state: alice"]


async def test_mutated_argument_from_a_foreign_thread() -> None:
    logger = app_logger()
    async with capture_records(logger) as captured:
        items = ["a"]

        def log_then_mutate() -> None:
            logger.info("items=%s", items)
            items.append("b")

        await anyio.to_thread.run_sync(log_then_mutate)
    assert captured.messages == ["items=['a']"]


async def test_exception_and_stack_info_survive_as_text() -> None:
    logger = app_logger()
    async with capture_records(logger) as captured:
        try:
            raise ValueError("bad input 42")
        except ValueError:
            logger.exception("request failed")
        logger.info("where am I", stack_info=True)
    failed, stacked = captured.records
    assert failed.exc_info is None  # the traceback is not kept alive in the queue
    assert failed.exc_text is not None
    assert "ValueError: bad input 42" in failed.exc_text
    assert 'raise ValueError("bad input 42")' in failed.exc_text
    rendered = logging.Formatter().format(failed)
    assert rendered.startswith("request failed\nTraceback (most recent call last):")
    assert stacked.stack_info is not None
    assert "test_exception_and_stack_info_survive_as_text" in stacked.stack_info


async def test_other_handlers_see_the_record_untouched() -> None:
    logger = app_logger()
    seen: list[tuple[object, object, object]] = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.msg, record.args, record.exc_info))

    async with capture_records(logger) as captured:
        logger.addHandler(Recorder())
        items = ["x"]
        logger.info("items=%s", items)
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            logger.exception("math %d", 1)
    assert seen[0] == ("items=%s", (items,), None)
    assert seen[1][0] == "math %d"
    assert seen[1][1] == (1,)
    assert isinstance(seen[1][2], tuple)  # exc_info still there for the stdlib handler
    assert captured.messages == ["items=['x']", "math 1"]


async def test_bridge_level_and_filters() -> None:
    sink = CapturingSink()
    logger = app_logger()
    async with LogQueue(sink) as queue:
        bridge = LoggingBridge(queue, logging.WARNING)
        bridge.addFilter(lambda r: not r.getMessage().startswith("noise"))
        logger.addHandler(bridge)
        logger.info("too low")
        logger.warning("noise here")
        logger.error("kept")
        await queue.flush()
    assert sink.messages == ["kept"]


async def test_bad_format_arguments_go_to_handle_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = app_logger()
    async with capture_records(logger) as captured:
        items: list[str] = []
        logger.info("%d items", "not a number", items)  # a mutable arg: the copy path
        logger.info("fine")
    assert captured.messages == ["fine"]
    assert "--- Logging error ---" in capsys.readouterr().err


async def test_records_from_threads_and_the_loop_all_arrive() -> None:
    logger = app_logger()
    sink = CapturingSink()
    threads, per_thread = 8, 10_000
    async with loopsink.install(sink, logger=logger, capacity=200_000) as queue:

        def produce(t: int) -> None:
            for i in range(per_thread):
                logger.info("t%d %d", t, i)

        workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for i in range(per_thread):
            logger.info("loop %d", i)
            if i % 500 == 0:
                await anyio.sleep(0)
        await anyio.to_thread.run_sync(lambda: [w.join() for w in workers])
        await queue.flush()
    by_source: dict[str, list[int]] = {}
    for message in sink.messages:
        source, number = message.split()
        by_source.setdefault(source, []).append(int(number))
    assert sorted(by_source) == sorted(["loop", *(f"t{t}" for t in range(threads))])
    for source, numbers in by_source.items():
        assert numbers == list(range(per_thread)), source


async def test_cancelled_install_body_still_drains(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "cancel.log"
    logger = app_logger()
    with anyio.move_on_after(0.05) as scope:
        async with loopsink.install(loopsink.FileHandler(path), logger=logger):
            for i in range(1000):
                logger.info("r%d", i)
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert path.read_text().splitlines() == [f"r{i}" for i in range(1000)]


def test_bridge_needs_a_queue() -> None:
    with pytest.raises(TypeError, match=r"^LoggingBridge needs a loopsink.LogQueue, got 'x'$"):
        LoggingBridge("x")  # type: ignore[arg-type]


async def test_install_rejects_a_bad_logger() -> None:
    with pytest.raises(TypeError, match=r"^logger must be a logging.Logger, a logger name or None"):
        async with loopsink.install(CapturingSink(), logger=42):  # type: ignore[arg-type]
            pass


def test_start_in_thread_for_a_program_without_a_loop(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "sync.log"
    logger = app_logger("legacy")
    runner = loopsink.start_in_thread(loopsink.FileHandler(path), logger=logger)
    try:
        for i in range(1000):
            logger.info("line %d", i)
        runner.flush(timeout=10)
        assert len(path.read_text().splitlines()) == 1000
    finally:
        runner.close(timeout=10)
    assert not runner.running
    assert runner.bridge not in logger.handlers
    assert path.read_text().splitlines() == [f"line {i}" for i in range(1000)]


def test_logging_shutdown_at_exit_flushes_the_threaded_queue(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "exit.log"
    script = textwrap.dedent(
        f"""
        import logging, threading, loopsink
        logging.getLogger().setLevel(logging.INFO)
        loopsink.start_in_thread(loopsink.FileHandler({str(path)!r}))
        def work(t):
            for i in range(25_000):
                logging.getLogger("w").info("t%d %d", t, i)
        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    lines = path.read_text().splitlines()
    assert len(lines) == 100_000
    assert len(set(lines)) == 100_000


async def test_a_loop_that_never_idles_still_gets_its_file_written(tmp_path: pathlib.Path) -> None:
    # The app yields (sleep(0)) but always has work ready, so the loop never sleeps in
    # select(): a worker thread waiting for the GIL would starve for the whole burst and the
    # file sink's backlog would overflow (80,000 of these records were lost that way).
    path = tmp_path / "busy.log"
    logger = app_logger()
    count = 100_000
    async with loopsink.install(loopsink.FileHandler(path), logger=logger, capacity=20_000) as q:
        for i in range(count):
            logger.info("record %d", i)
            if i % 100 == 99:
                await anyio.sleep(0)
    assert q.stats.dropped_total == 0, q.stats
    assert path.read_text().splitlines() == [f"record {i}" for i in range(count)]
