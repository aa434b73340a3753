"""SysLogHandler against a real rsyslogd: what the daemon parsed, over UDP, TCP and unix.

The daemon is started by the tests (``tests/servers/rsyslog.py``) and writes every message
it parsed as JSON; the assertions are about that: facility, severity, tag, message, RFC 5424
fields, and that nothing was lost or split, also across a daemon restart.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from loopsink import LogQueue, SysLogHandler
from servers.rsyslog import Entry, Rsyslog, running_rsyslog

pytestmark = pytest.mark.rsyslog

SEVERITY_TEXT = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "err",
    logging.CRITICAL: "crit",
    25: "warning",  # a custom level: mapPriority's default
}


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    yield from running_rsyslog(tmp_path_factory.mktemp("rsyslog"))


@pytest.fixture
def own_rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    """A daemon of its own, for the test that stops and restarts it."""
    yield from running_rsyslog(tmp_path)


def _exc_info() -> Any:
    try:
        raise KeyError("missing key")
    except KeyError:
        return sys.exc_info()


def make_records(token: str, count: int) -> list[logging.LogRecord]:
    levels = list(SEVERITY_TEXT)
    records = []
    for i in range(count):
        level = levels[i % len(levels)]
        msg = f"{token} #{i} first line\nsecond line ✓" if i % 5 == 0 else f"{token} #{i} plain"
        record = logging.LogRecord("app", level, __file__, i, msg, None, None)
        if i == 3:
            record.exc_info = _exc_info()
        records.append(record)
    return records


def address_of(server: Rsyslog, transport: str) -> tuple[Any, int | None]:
    if transport == "udp":
        return server.udp_address, None
    if transport == "tcp":
        return server.tcp_address, socket.SOCK_STREAM
    return server.unix_path, None


async def send_all(handler: SysLogHandler, records: list[logging.LogRecord]) -> None:
    async with LogQueue(handler) as queue:
        for record in records:
            assert queue.put(record)
        with anyio.fail_after(10):
            await queue.flush()
    assert handler.error_count == 0


@pytest.mark.parametrize("transport", ["udp", "tcp", "unix"])
async def test_stdlib_format_is_parsed_by_rsyslog(rsyslog: Rsyslog, transport: str) -> None:
    token = uuid.uuid4().hex
    records = make_records(token, 120)
    address, socktype = address_of(rsyslog, transport)
    handler = SysLogHandler(address, "local3", socktype)
    handler.ident = "myapp[77]: "
    await send_all(handler, records)
    entries = await rsyslog.wait_for(token, len(records))

    by_line = {int(e.msg.split("#", 1)[1].split()[0]): e for e in entries}
    assert sorted(by_line) == list(range(len(records)))  # nothing lost, nothing split
    for i, record in enumerate(records):
        entry = by_line[i]
        assert entry.facility == "local3"
        assert entry.severity == SEVERITY_TEXT[record.levelno]
        assert entry.pri == 19 * 8 + SysLogHandler.priority_names[entry.severity]
        assert entry.tag == "myapp[77]:"
        # rsyslog stores line breaks as #012, whichever transport carried them
        assert entry.msg == " " + handler.format(record).replace("\n", "#012")
    traceback_entry = by_line[3]
    assert "#012Traceback (most recent call last):#012" in traceback_entry.msg
    assert traceback_entry.msg.endswith("KeyError: 'missing key'")


async def test_the_same_record_is_stored_the_same_over_every_transport(rsyslog: Rsyslog) -> None:
    token = uuid.uuid4().hex
    stored: dict[str, list[tuple[str, str, str, str]]] = {}
    for transport in ("udp", "tcp", "unix"):
        address, socktype = address_of(rsyslog, transport)
        handler = SysLogHandler(address, "daemon", socktype)  # no ident: compare raw text
        records = make_records(f"{token}-{transport}", 10)
        await send_all(handler, records)
        entries = await rsyslog.wait_for(f"{token}-{transport}", len(records))
        entries.sort(key=lambda e: int(e.rawmsg.split("#", 1)[1].split()[0]))
        stored[transport] = [
            (e.facility, e.severity, e.rawmsg.replace(f"-{transport}", ""), e.input)
            for e in entries
        ]
        assert [e.rawmsg for e in entries][1] == f"<30>{token}-{transport} #1 plain"
    assert [s[:3] for s in stored["udp"]] == [s[:3] for s in stored["tcp"]]
    assert [s[:3] for s in stored["udp"]] == [s[:3] for s in stored["unix"]]
    assert {s[3] for s in stored["tcp"]} == {"imtcp"}


async def test_stdlib_tcp_bytes_are_glued_by_rsyslog_unless_it_splits_on_nul(
    rsyslog: Rsyslog,
) -> None:
    """Why TCP defaults to LF framing: rsyslog's imtcp does not end a frame at a NUL."""
    token = uuid.uuid4().hex
    records = [
        logging.LogRecord("a", logging.INFO, __file__, i, f"{token} n{i}", None, None)
        for i in range(3)
    ]

    def stdlib_send() -> None:
        handler = logging.handlers.SysLogHandler(rsyslog.tcp_address, socktype=socket.SOCK_STREAM)
        for record in records:
            handler.emit(record)
        handler.close()

    await anyio.to_thread.run_sync(stdlib_send)
    (glued,) = await rsyslog.wait_for(token, 1)
    assert "#000" in glued.rawmsg

    nul_token = uuid.uuid4().hex
    for record in records:
        record.msg = record.msg.replace(token, nul_token)
    handler = SysLogHandler(rsyslog.tcp_nul_address, socktype=socket.SOCK_STREAM, framing="stdlib")
    await send_all(handler, records)
    entries = await rsyslog.wait_for(nul_token, 3)
    # no ident: rsyslog reads the first word as the host name, so compare the raw message
    assert [e.rawmsg for e in entries] == [f"<14>{nul_token} n{i}" for i in range(3)]


@pytest.mark.parametrize(
    ("transport", "framing"),
    [("udp", None), ("tcp", None), ("tcp", "lf"), ("unix", None)],
)
async def test_rfc5424_is_parsed_by_rsyslog(
    rsyslog: Rsyslog, transport: str, framing: str | None
) -> None:
    token = uuid.uuid4().hex
    address, socktype = address_of(rsyslog, transport)
    handler = SysLogHandler(
        address,
        SysLogHandler.LOG_LOCAL5,
        socktype,
        format="rfc5424",
        framing=framing,  # type: ignore[arg-type]
        app_name="billing",
        hostname="web-1.example",
    )
    records = []
    for i in range(20):
        record = logging.LogRecord(
            "app",
            logging.ERROR if i % 2 else logging.INFO,
            __file__,
            i,
            f"{token} r{i}",
            None,
            None,
        )
        record.msgid = "PAY" if i % 2 else None
        record.structured_data = {"pay@32473": {"user": "alice", "note": 'say "hi"]'}}
        records.append(record)
    records[4].msg = f"{token} r4 two\nlines"
    await send_all(handler, records)
    entries = await rsyslog.wait_for(token, len(records))
    entries.sort(key=lambda e: int(e.msg.split(" r", 1)[1].split()[0]))
    for i, entry in enumerate(entries):
        assert entry.protocol_version == "1"
        assert entry.facility == "local5"
        assert entry.severity == ("err" if i % 2 else "info")
        assert entry.app_name == "billing"
        assert entry.hostname == "web-1.example"
        assert entry.procid == str(os.getpid())
        assert entry.msgid == ("PAY" if i % 2 else "-")
        assert entry.structured_data == '[pay@32473 user="alice" note="say \\"hi\\"\\]"]'
        assert entry.tag == f"billing[{os.getpid()}]"
    assert entries[0].msg == f"{token} r0"
    assert entries[4].msg == f"{token} r4 two#012lines"
    # microseconds and the offset survive the trip
    header_ts = entries[1].rawmsg.split(" ")[1]
    assert entries[1].timestamp == header_ts
    assert len(header_ts.split(".")[1]) == len("123456+00:00")


@pytest.mark.parametrize("transport", ["tcp", "unix"])
async def test_reconnects_after_the_daemon_restarts_and_loses_nothing(
    own_rsyslog: Rsyslog, transport: str
) -> None:
    token = uuid.uuid4().hex
    address, socktype = address_of(own_rsyslog, transport)
    handler = SysLogHandler(address, socktype=socktype, retry_timeout=30)
    handler.ident = "restart: "
    handler.retry_max = 0.1
    records = [
        logging.LogRecord("a", logging.WARNING, __file__, i, f"{token} {i}", None, None)
        for i in range(300)
    ]
    async with LogQueue(handler) as queue:
        for record in records[:100]:
            queue.put(record)
        with anyio.fail_after(10):
            await queue.flush()
        await own_rsyslog.wait_for(token, 100)

        await anyio.to_thread.run_sync(own_rsyslog.stop)
        for record in records[100:]:  # the daemon is down: they wait in the sink
            assert queue.put(record)
        await anyio.to_thread.run_sync(own_rsyslog.start)
        with anyio.fail_after(20):
            await queue.flush()
    entries: list[Entry] = await own_rsyslog.wait_for(token, len(records))
    numbers = [int(e.msg.split()[-1]) for e in entries]
    assert sorted(numbers) == list(range(len(records)))
    assert handler.error_count == 0
