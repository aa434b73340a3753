"""Sinks of one queue that use the same formatter format each record once (#17 item 3).

The text is shared only where it is sure to be the same; every sink still writes exactly
what it writes alone: its level, filters and formatter apply, and a record that fails to
format is reported by each sink.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

import loopsink
from loopsink import _sharedtexts
from loopsink._record import own_record, wrap
from servers.http import HTTPServer

pytestmark = pytest.mark.anyio

PLAIN = "%(levelname)s %(name)s %(message)s"


class Counting(logging.Formatter):
    """A formatter that counts its calls (a subclass: shared only as the same object)."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self.calls = 0

    def format(self, record: logging.LogRecord) -> str:
        self.calls += 1
        return super().format(record)


def _logger(name: str) -> logging.Logger:
    logger = logging.getLogger(f"t.shared.{name}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger


def _sinks(
    tmp_path: Path, count: int, formatter: logging.Formatter | None
) -> list[loopsink.FileHandler]:
    sinks = [loopsink.FileHandler(tmp_path / f"{i}.log") for i in range(count)]
    for sink in sinks:
        sink.setFormatter(formatter)
    return sinks


async def _log(logger: logging.Logger, start: int, count: int) -> None:
    for i in range(start, start + count):
        logger.info("hello %d", i)
        if i % 50 == 49:
            await anyio.lowlevel.checkpoint()


async def _log_after_joining(
    logger: logging.Logger, queue: loopsink.LogQueue, formatter: Counting, count: int
) -> None:
    """Log 10 records (after its first batch every sink has joined the sharing), then
    ``count`` more, and check that the formatter ran once for each of those."""
    await _log(logger, 0, 10)
    await queue.flush()
    formatter.calls = 0
    await _log(logger, 10, count)
    await queue.flush()
    assert formatter.calls == count


def _lines(name: str, start: int, count: int, fmt: str = "INFO t.shared.{name} hello {i}") -> str:
    return "".join(fmt.format(name=name, i=i) + "\n" for i in range(start, start + count))


async def test_sinks_with_one_format_write_what_one_sink_writes(tmp_path: Path) -> None:
    logger = _logger("same")
    formatter = logging.Formatter(PLAIN)
    sinks = _sinks(tmp_path, 4, formatter)
    async with loopsink.install(*sinks, logger=logger) as queue:
        await _log(logger, 0, 3000)
        await queue.flush()
        assert queue._sharing is not None
        groups = list(queue._sharing.groups.values())
        assert len(groups) == 1
        assert len(groups[0].members) == 4
    expected = _lines("same", 0, 3000)
    for i in range(4):
        assert (tmp_path / f"{i}.log").read_text() == expected


async def test_equal_stdlib_formatters_share_and_so_does_one_custom_object(tmp_path: Path) -> None:
    logger = _logger("equal")
    sinks = _sinks(tmp_path, 3, None)
    for sink in sinks:
        sink.setFormatter(logging.Formatter(PLAIN))  # equal, distinct objects
    async with loopsink.install(*sinks, logger=logger) as queue:
        await _log(logger, 0, 10)
        await queue.flush()
        assert queue._sharing is not None
        assert [len(g.members) for g in queue._sharing.groups.values()] == [3]
    for i in range(3):
        assert (tmp_path / f"{i}.log").read_text() == _lines("equal", 0, 10)


async def test_the_formatter_runs_once_per_record(tmp_path: Path) -> None:
    logger = _logger("once")
    formatter = Counting(PLAIN)
    sinks = _sinks(tmp_path, 3, formatter)
    async with loopsink.install(*sinks, logger=logger) as queue:
        await _log_after_joining(logger, queue, formatter, 1000)
    for i in range(3):
        assert (tmp_path / f"{i}.log").read_text() == _lines("once", 0, 1010)


async def test_equal_custom_formatters_do_not_share(tmp_path: Path) -> None:
    """A subclass may keep state or read the time: equal but distinct objects format alone."""
    logger = _logger("custom")
    formatters = [Counting(PLAIN) for _ in range(2)]
    sinks = _sinks(tmp_path, 2, None)
    for sink, formatter in zip(sinks, formatters, strict=False):
        sink.setFormatter(formatter)
    async with loopsink.install(*sinks, logger=logger):
        await _log(logger, 0, 200)
    assert [f.calls for f in formatters] == [200, 200]


async def test_filters_levels_and_other_formats_apply_as_alone(tmp_path: Path) -> None:
    logger = _logger("mixed")
    formatter = Counting(PLAIN)
    plain, filtered, warnings, other = _sinks(tmp_path, 4, formatter)

    def shout(record: logging.LogRecord) -> logging.LogRecord:
        copy = logging.makeLogRecord(record.__dict__)
        copy.msg = "shouted: " + str(record.msg)
        return copy

    filtered.addFilter(shout)
    warnings.setLevel(logging.WARNING)
    other.setFormatter(logging.Formatter("%(message)s|%(levelname)s"))
    async with loopsink.install(plain, filtered, warnings, other, logger=logger) as queue:
        logger.warning("warm-up")  # every sink formats once: the sharing sinks join
        await queue.flush()
        formatter.calls = 0
        for i in range(100):
            logger.info("hello %d", i)
            if i % 10 == 0:
                logger.warning("careful %d", i)
        await queue.flush()
        # plain and warnings share (the latter takes only its level's texts); filtered alone
        assert formatter.calls == 110 + 110
    read = [(tmp_path / f"{i}.log").read_text().splitlines() for i in range(4)]
    assert read[0][0] == read[2][0] == "WARNING t.shared.mixed warm-up"
    assert read[1][0] == "WARNING t.shared.mixed shouted: warm-up"
    read = [lines[1:] for lines in read]
    assert len(read[0]) == 110
    assert read[0][:2] == [
        "INFO t.shared.mixed hello 0",
        "WARNING t.shared.mixed careful 0",
    ]
    assert read[1][:2] == [
        "INFO t.shared.mixed shouted: hello 0",
        "WARNING t.shared.mixed shouted: careful 0",
    ]
    assert read[2] == [f"WARNING t.shared.mixed careful {i}" for i in range(0, 100, 10)]
    assert read[3][:2] == ["hello 0|INFO", "careful 0|WARNING"]
    assert queue._sharing is not None
    assert queue._sharing.groups == {}


class StalledFile(loopsink.FileHandler):
    """A file sink that waits for a go before its first batch: its backlog fills and drops."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.go = anyio.Event()

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        await self.go.wait()
        await super().emit_batch(records)


async def test_a_lane_that_drops_leaves_no_more_than_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sharedtexts, "SHARED_TEXTS_BOUND", 64)
    logger = _logger("drops")
    fast = loopsink.FileHandler(tmp_path / "fast.log")
    stalled = StalledFile(tmp_path / "stalled.log")
    for sink in (fast, stalled):
        sink.setFormatter(logging.Formatter(PLAIN))
    async with loopsink.install(fast, stalled, logger=logger, capacity=100) as queue:
        await _log(logger, 0, 20)
        with anyio.fail_after(5):
            while queue.stats.sinks[0].emitted < 20:
                await anyio.sleep(0.001)
        for start in range(20, 2000, 20):  # the stalled lane drops all but 100 of these
            await _log(logger, start, 20)
            with anyio.fail_after(5):
                while queue.stats.sinks[0].emitted < start + 20:
                    await anyio.sleep(0.001)
            assert queue._sharing is not None
            assert queue._sharing.kept() <= 64
        stalled.go.set()
        await queue.flush()
        assert queue._sharing.kept() <= 64
        dropped = queue.stats.sinks[1].dropped
    assert sum(dropped.values()) > 1000
    fast_lines = (tmp_path / "fast.log").read_text().splitlines()
    assert [line for line in fast_lines if line.startswith("INFO")] == _lines(
        "drops", 0, 2000
    ).splitlines()
    kept = (tmp_path / "stalled.log").read_text().splitlines()
    assert kept[:20] == _lines("drops", 0, 20).splitlines()


async def test_a_formatter_changed_mid_run(tmp_path: Path) -> None:
    logger = _logger("change")
    formatter = Counting(PLAIN)
    first, second = _sinks(tmp_path, 2, formatter)
    async with loopsink.install(first, second, logger=logger) as queue:
        await _log(logger, 0, 100)
        await queue.flush()
        second.setFormatter(logging.Formatter("%(message)s"))
        await _log(logger, 100, 100)
        await queue.flush()
        assert queue._sharing is not None
        assert sorted(len(g.members) for g in queue._sharing.groups.values()) == [1, 1]
        assert queue._sharing.kept() == 0  # a member alone keeps no text
    assert (tmp_path / "0.log").read_text() == _lines("change", 0, 200)
    assert (tmp_path / "1.log").read_text() == _lines("change", 0, 100) + "".join(
        f"hello {i}\n" for i in range(100, 200)
    )


async def test_a_record_that_fails_to_format_is_reported_by_each_sink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = _logger("fails")
    sinks = _sinks(tmp_path, 3, logging.Formatter(PLAIN))
    async with loopsink.install(*sinks, logger=logger) as queue:
        await _log(logger, 0, 10)
        await queue.flush()
        logger.info("bad %d", "not a number")
        await _log(logger, 10, 10)
    assert [sink.error_count for sink in sinks] == [1, 1, 1]
    assert capsys.readouterr().err.count("--- Logging error ---") == 3
    for i in range(3):
        assert (tmp_path / f"{i}.log").read_text() == _lines("fails", 0, 20)


async def test_one_sink_alone_keeps_nothing(tmp_path: Path) -> None:
    logger = _logger("alone")
    sinks = _sinks(tmp_path, 1, logging.Formatter(PLAIN))
    async with loopsink.install(*sinks, logger=logger) as queue:
        await _log(logger, 0, 100)
        assert queue._sharing is None
        assert sinks[0].format_sharing is None


def test_sharing_keys() -> None:
    key = _sharedtexts.sharing_key
    assert key(logging.Formatter(PLAIN)) == key(logging.Formatter(PLAIN))
    assert key(logging.Formatter(PLAIN)) != key(logging.Formatter(PLAIN, datefmt="%H"))
    assert key(logging.Formatter("{message}", style="{")) != key(logging.Formatter("%(message)s"))
    custom = Counting(PLAIN)
    assert key(custom) is custom
    with_defaults = logging.Formatter("%(x)s", defaults={"x": 1})
    assert key(with_defaults) is with_defaults


def test_a_kept_text_is_never_another_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records come and go (their ids are reused at once): a text is found only for the
    very record it was made for, and a group never keeps more than the bound."""
    monkeypatch.setattr(_sharedtexts, "SHARED_TEXTS_BOUND", 8)
    group = _sharedtexts.SharedTexts()
    group.members = [loopsink.NullHandler(), loopsink.NullHandler()]  # type: ignore[list-item]

    def many(records: Sequence[logging.LogRecord]) -> list[str]:
        return [record.getMessage() for record in records]

    for i in range(2000):
        record = logging.LogRecord("t", logging.INFO, __file__, 1, f"m{i}", None, None)
        queued = wrap(logging.LogRecord("t", logging.INFO, __file__, 1, f"q{i}", None, None), None)
        assert group.format([record, queued], many, False) == [f"m{i}", f"q{i}"]
        assert len(group) <= 8
        del record, queued  # freed: the next records may get the same ids
    # a record of another type is never shared
    own = own_record("t", logging.INFO, "own %s", ("x",))
    assert group.format([own], many, False) == ["own x"]
    assert group.format([own], lambda records: ["again"], False) == ["again"]


async def test_a_services_file_syslog_and_http_sinks_format_each_record_once(
    tmp_path: Path,
) -> None:
    """The syslog sink formatted every record again through ``format``, and the HTTP sink's
    JSON bodies did too: with a file sink beside them, each record was formatted three
    times on the loop."""
    logger = _logger("service")
    formatter = Counting(PLAIN)
    received = bytearray()
    with socket.create_server(("127.0.0.1", 0)) as listener, HTTPServer() as server:
        listener.settimeout(10)

        def receive() -> None:  # until the sink closes its connection
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                while data := conn.recv(65536):
                    received.extend(data)

        sinks: list[loopsink.AsyncHandler] = [
            loopsink.FileHandler(tmp_path / "app.log"),
            loopsink.SysLogHandler(
                listener.getsockname(), socktype=socket.SOCK_STREAM, framing="lf"
            ),
            loopsink.HTTPHandler(server.host, "/bulk", "POST", body="ndjson"),
        ]
        for sink in sinks:
            sink.setFormatter(formatter)
        receiver = threading.Thread(target=receive)
        receiver.start()
        async with loopsink.install(*sinks, logger=logger) as queue:
            await _log_after_joining(logger, queue, formatter, 500)
        await anyio.to_thread.run_sync(receiver.join, 10)
        bodies = [line for r in server.delivered() for line in r.body.splitlines()]
    texts = [f"INFO t.shared.service hello {i}" for i in range(510)]
    assert (tmp_path / "app.log").read_text() == "".join(t + "\n" for t in texts)
    assert received.decode() == "".join(f"<14>{t}\n" for t in texts)
    assert [json.loads(line)["message"] for line in bodies] == [f"hello {i}" for i in range(510)]


def _many(records: Sequence[logging.LogRecord]) -> list[str]:
    return [record.getMessage() for record in records]


def _record(msg: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("t", level, __file__, 1, msg, None, None)


def _members(*levels: int) -> list[loopsink.AsyncHandler]:
    members: list[loopsink.AsyncHandler] = []
    for level in levels:
        member = loopsink.NullHandler()
        member.setLevel(level)
        members.append(member)
    return members


def test_a_text_every_other_member_took_is_not_kept() -> None:
    """Texts stayed until the bound pushed them out: a group of sinks that kept pace with
    each other held the last texts and records of every one of them."""
    group = _sharedtexts.SharedTexts()
    group.members = _members(logging.INFO, logging.INFO, logging.INFO)
    records = [_record(f"m{i}") for i in range(100)]
    assert group.format(records, _many, False) == [f"m{i}" for i in range(100)]
    assert len(group) == 100
    assert group.format(records, lambda records: ["not again"], False)[0] == "m0"
    assert len(group) == 100  # the third member has not taken them yet
    assert group.format(records[:60], lambda records: ["not again"], False)[0] == "m0"
    assert len(group) == 40
    assert group.format(records[60:], lambda records: ["not again"], False)[-1] == "m99"
    assert len(group) == 0


def test_a_text_no_other_member_will_take_by_its_level_is_not_kept() -> None:
    group = _sharedtexts.SharedTexts()
    group.members = _members(logging.DEBUG, logging.WARNING)
    info, warning = _record("i"), _record("w", logging.WARNING)
    assert group.format([info, warning], _many, False) == ["i", "w"]
    assert len(group) == 1  # the WARNING member will take the warning, never the info


def test_a_text_kept_again_under_a_reused_id_outlives_the_old_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A text taken by all leaves its id in the order of keeping; the bound pushing that
    old entry out must not take away a later text kept under the same id."""
    monkeypatch.setattr(_sharedtexts, "SHARED_TEXTS_BOUND", 3)
    group = _sharedtexts.SharedTexts()
    group.members = _members(logging.INFO, logging.INFO)
    same = _record("first")
    group.format([same], _many, False)
    group.format([same], _many, False)  # taken by the other member: gone
    assert len(group) == 0
    same.msg = "second"  # another record at the same id, as far as the group can tell
    group.format([same], _many, False)
    for i in range(2):  # pushes the old entry of that id out of the order, not the new one
        group.format([_record(f"x{i}")], _many, False)
    assert group.format([same], lambda records: ["formatted again"], False) == ["second"]


def test_a_lagging_member_still_takes_batches_the_others_took_whole() -> None:
    """Members that get the same batch take it whole; one that lags a batch behind finds
    the texts record by record, and nothing is formatted twice or left behind."""
    group = _sharedtexts.SharedTexts()
    group.members = _members(logging.INFO, logging.INFO, logging.INFO)
    first = [_record(f"a{i}") for i in range(10)]
    second = [_record(f"b{i}") for i in range(10)]
    made: list[int] = []

    def counted(records: Sequence[logging.LogRecord]) -> list[str]:
        made.append(len(records))
        return _many(records)

    assert group.format(first, counted, False) == _many(first)  # member 1 makes it
    assert group.format(first, counted, False) == _many(first)  # member 2 takes it whole
    assert group.format(second, counted, False) == _many(second)  # member 1, next batch
    assert group.format(first, counted, False) == _many(first)  # member 3, a batch behind
    assert group.format(second[:4], counted, False) == _many(second[:4])  # member 2, a part
    assert group.format(second[4:], counted, False) == _many(second[4:])
    assert group.format(second, counted, False) == _many(second)  # member 3 catches up
    assert made == [10, 10]
    assert len(group) == 0


def test_a_batch_kept_whole_keeps_its_records_ids_their_own() -> None:
    """A batch waiting for the other members pins its records: another record cannot
    come at the same id and take its text."""
    group = _sharedtexts.SharedTexts()
    group.members = _members(logging.INFO, logging.INFO)
    for i in range(500):
        batch = [_record(f"m{i}"), wrap(_record(f"q{i}"), None)]
        assert group.format(batch, _many, False) == [f"m{i}", f"q{i}"]
        del batch  # nobody takes it: the group alone keeps the records alive
    assert len(group) <= _sharedtexts.SHARED_TEXTS_BOUND
