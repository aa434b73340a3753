"""SysLogHandler against the stdlib's bytes, RFC 5424, framing, TLS, and the syslog receiver.

The stdlib's ``logging.handlers.SysLogHandler`` is the reference: both send the same records
to the same capturing socket and the bytes must be equal (UDP, unix datagram, and TCP with
``framing="stdlib"``). What rsyslog makes of the bytes is in ``test_syslog_rsyslog.py``.
"""

from __future__ import annotations

import datetime
import logging
import logging.handlers
import re
import select
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
import pytest
import trustme

import loopsink
from helpers import quiet_logger, until
from loopsink import LogQueue, RFC5424Formatter, SysLogHandler, _tuning
from loopsink.handlers import _syslog
from loopsink.receiver._syslog import SyslogReceiver, parse_syslog_frame, split_syslog_stream

STD = logging.handlers.SysLogHandler


def _exc_info() -> Any:
    try:
        raise ZeroDivisionError("division by zero, on purpose")
    except ZeroDivisionError:
        return sys.exc_info()


def make_records() -> list[logging.LogRecord]:
    """Records that exercise every branch of the stdlib's emit."""
    custom = logging.LogRecord("app.db", 25, __file__, 10, "custom level %d", (25,), None)
    custom.levelname = "NOTICE-ISH"
    return [
        logging.LogRecord("app", logging.DEBUG, __file__, 1, "debug %s", ("x",), None),
        logging.LogRecord("app", logging.INFO, __file__, 2, "héllo wörld ✓", None, None),
        logging.LogRecord("app", logging.WARNING, __file__, 3, "two\nlines", None, None),
        logging.LogRecord("app", logging.ERROR, __file__, 4, "failed: %r", ({"k": 1},), None),
        logging.LogRecord("app", logging.CRITICAL, __file__, 5, "with exc", None, _exc_info()),
        custom,
    ]


# -- capturing sockets -----------------------------------------------------------------------------


@asynccontextmanager
async def udp_capture() -> AsyncIterator[anyio.abc.UDPSocket]:
    async with await anyio.create_udp_socket(family=socket.AF_INET, local_host="127.0.0.1") as sock:
        yield sock


class UnixDatagramCapture:
    """A bound unix datagram socket. Plain ``socket`` rather than anyio's helper, whose
    ``create_unix_datagram_socket`` stats the path on the event loop."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.path = path

    async def __aenter__(self) -> UnixDatagramCapture:
        await anyio.to_thread.run_sync(self.sock.bind, self.path)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.sock.close()

    async def receive(self) -> bytes:
        await anyio.wait_readable(self.sock)
        return self.sock.recv(65536)


async def receive_datagrams(sock: Any, count: int) -> list[bytes]:
    out: list[bytes] = []
    with anyio.fail_after(5):
        for _ in range(count):
            data = await sock.receive()
            out.append(data[0] if isinstance(data, tuple) else data)
    return out


class StreamCapture:
    """A TCP or unix stream listener that keeps every byte of every connection."""

    def __init__(self, listener: Any) -> None:
        self.listener = listener
        self.data = bytearray()
        self.connections = 0
        self.finished = 0
        self._changed = anyio.Event()

    def _fire(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _serve(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        async with stream:
            async for chunk in stream:
                self.data += chunk
                self._fire()
        self.finished += 1
        self._fire()

    async def wait_bytes(self, size: int) -> bytes:
        with anyio.fail_after(5):
            while len(self.data) < size:
                await self._changed.wait()
        return bytes(self.data)

    async def wait_finished(self, count: int) -> bytes:
        """Wait until ``count`` connections were closed by the sender; return all bytes."""
        with anyio.fail_after(5):
            while self.finished < count:
                await self._changed.wait()
        return bytes(self.data)


@asynccontextmanager
async def stream_capture(listener: Any) -> AsyncIterator[StreamCapture]:
    capture = StreamCapture(listener)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, capture._serve)
        yield capture
        tg.cancel_scope.cancel()


async def tcp_capture() -> Any:
    return stream_capture(await anyio.create_tcp_listener(local_host="127.0.0.1"))


def port_of(listener: anyio.abc.SocketListener) -> tuple[str, int]:
    return ("127.0.0.1", listener.extra(anyio.abc.SocketAttribute.local_port))


def configure(handler: Any, variant: str) -> None:
    """The same settings on a stdlib handler and on ours."""
    if variant == "ident":
        handler.ident = "myapp[42]: "
    elif variant == "no_nul":
        handler.append_nul = False
    elif variant == "formatter":
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s", "%H:%M:%S")
        )


async def stdlib_send(
    make: Callable[[], logging.Handler], records: list[logging.LogRecord]
) -> None:
    def run() -> None:
        handler = make()
        try:
            for record in records:
                handler.handle(record)
        finally:
            handler.close()

    await anyio.to_thread.run_sync(run)


VARIANTS = ["plain", "ident", "no_nul", "formatter"]


# -- the stdlib surface ----------------------------------------------------------------------------


def test_constants_and_maps_equal_the_stdlib() -> None:
    names = [n for n in dir(STD) if n.startswith("LOG_")]
    assert len(names) == 32
    for name in names:
        assert getattr(SysLogHandler, name) == getattr(STD, name), name
    assert SysLogHandler.priority_names == STD.priority_names
    assert SysLogHandler.facility_names == STD.facility_names
    assert SysLogHandler.priority_map == STD.priority_map
    assert SysLogHandler.ident == ""
    assert SysLogHandler.append_nul is True
    assert _syslog.SYSLOG_UDP_PORT == logging.handlers.SYSLOG_UDP_PORT
    assert _syslog.SYSLOG_TCP_PORT == logging.handlers.SYSLOG_TCP_PORT


def test_defaults_are_the_stdlibs() -> None:
    handler = SysLogHandler()
    assert handler.address == ("localhost", 514)
    assert handler.facility == SysLogHandler.LOG_USER
    assert handler.socktype is None
    assert handler.socket is None  # opened by the first record, not at construction
    assert handler.unixsocket is False
    assert handler.effective_framing() is None


@pytest.mark.parametrize(
    ("facility", "priority", "expected"),
    [
        ("user", "info", 14),
        (1, 6, 14),
        ("local7", "emerg", 184),
        (SysLogHandler.LOG_AUTHPRIV, "warn", 84),
        ("kern", "debug", 7),
        ("mail", SysLogHandler.LOG_CRIT, 18),
    ],
)
def test_encode_priority_takes_names_or_numbers(
    facility: int | str, priority: int | str, expected: int
) -> None:
    handler = SysLogHandler()
    assert handler.encodePriority(facility, priority) == expected
    assert STD.encodePriority(STD.__new__(STD), facility, priority) == expected


def test_map_priority_defaults_unknown_levels_to_warning() -> None:
    handler = SysLogHandler()
    for name in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        assert handler.mapPriority(name) == name.lower()
    assert handler.mapPriority("TRACE") == "warning"
    assert handler.mapPriority("Level 5") == "warning"


# -- byte-for-byte equality with the stdlib --------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
async def test_udp_bytes_equal_the_stdlib(variant: str) -> None:
    records = make_records()
    async with udp_capture() as capture:
        address = ("127.0.0.1", capture.extra(anyio.abc.SocketAttribute.local_port))

        def make_std() -> logging.Handler:
            handler = STD(address, facility="local3")
            configure(handler, variant)
            return handler

        await stdlib_send(make_std, records)
        expected = await receive_datagrams(capture, len(records))
        ours = SysLogHandler(address, facility="local3")
        configure(ours, variant)
        async with ours:
            for record in records:
                assert await ours.handle(record)
        got = await receive_datagrams(capture, len(records))
    assert got == expected
    assert ours.error_count == 0
    # what CPython does, whatever its docstring says: the traceback is sent (DESIGN §7)
    assert b"ZeroDivisionError: division by zero, on purpose" in got[4]


@pytest.mark.parametrize("variant", VARIANTS)
async def test_unix_datagram_bytes_equal_the_stdlib(variant: str, tmp_path: Path) -> None:
    path = str(tmp_path / "dev-log")
    records = make_records()
    async with UnixDatagramCapture(path) as capture:

        def make_std() -> logging.Handler:
            handler = STD(path, facility=STD.LOG_DAEMON)
            configure(handler, variant)
            return handler

        await stdlib_send(make_std, records)
        expected = await receive_datagrams(capture, len(records))
        ours = SysLogHandler(path, facility=STD.LOG_DAEMON)
        configure(ours, variant)
        async with ours:
            await ours.emit_batch(records)
            assert ours.socktype == socket.SOCK_DGRAM
            assert ours.unixsocket is True
        got = await receive_datagrams(capture, len(records))
    assert got == expected


@pytest.mark.parametrize("variant", VARIANTS)
async def test_tcp_stdlib_framing_bytes_equal_the_stdlib(variant: str) -> None:
    records = make_records()
    async with await tcp_capture() as capture:
        address = port_of(capture.listener)

        def make_std() -> logging.Handler:
            handler = STD(address, socktype=socket.SOCK_STREAM)
            configure(handler, variant)
            return handler

        await stdlib_send(make_std, records)
        expected = await capture.wait_finished(1)
        capture.data.clear()
        ours = SysLogHandler(address, socktype=socket.SOCK_STREAM, framing="stdlib")
        configure(ours, variant)
        async with ours:
            async with LogQueue(ours) as queue:
                for record in records:
                    queue.put(record)
        got = await capture.wait_finished(2)
    assert got == expected


async def test_a_full_unix_datagram_queue_waits_instead_of_dropping(tmp_path: Path) -> None:
    """The kernel holds only a few datagrams per unix socket (net.unix.max_dgram_qlen, often
    10); the sink waits for room instead of failing or dropping."""
    path = str(tmp_path / "slow-log")
    count = 300
    records = [
        logging.LogRecord("a", logging.INFO, __file__, i, f"n{i}", None, None) for i in range(count)
    ]
    async with UnixDatagramCapture(path) as capture, anyio.create_task_group() as tg:
        handler = SysLogHandler(path)
        tg.start_soon(handler.emit_batch, records)  # fills the queue before it yields
        got = await receive_datagrams(capture, count)
        await handler.close()
    assert got == [f"<14>n{i}\x00".encode() for i in range(count)]
    assert handler.error_count == 0


async def test_unix_stream_fallback_sends_the_stdlib_bytes(tmp_path: Path) -> None:
    """A unix *stream* socket (socktype=None): datagram first, stream next, NUL framing."""
    path = str(tmp_path / "stream-log")
    records = make_records()[:3]
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await anyio.to_thread.run_sync(listening.bind, path)  # a file system call: off the loop
    listening.listen()
    async with stream_capture(await anyio.abc.SocketListener.from_socket(listening)) as capture:
        await stdlib_send(lambda: STD(path), records)
        expected = await capture.wait_finished(1)
        capture.data.clear()
        ours = SysLogHandler(path)
        async with ours:
            for record in records:
                await ours.handle(record)
            assert ours.socktype == socket.SOCK_STREAM
            assert ours.effective_framing() == "stdlib"
        got = await capture.wait_finished(2)
    assert got == expected


# -- RFC 6587 framing over TCP ---------------------------------------------------------------------


async def test_tcp_default_is_lf_framing_with_inner_line_breaks_escaped() -> None:
    records = make_records()
    async with await tcp_capture() as capture:
        handler = SysLogHandler(port_of(capture.listener), "local0", socket.SOCK_STREAM)
        handler.ident = "app: "
        assert handler.effective_framing() == "lf"
        async with handler:
            await handler.emit_batch(records)
        expected = b"".join(
            (
                f"<{handler.encodePriority('local0', handler.mapPriority(r.levelname))}>app: "
                + handler.format(r).replace("\n", "#012")
                + "\n"
            ).encode()
            for r in records
        )
        got = await capture.wait_bytes(len(expected))
    assert got == expected
    assert got.count(b"\n") == len(records)  # one line per record: one message per record
    assert b"\x00" not in got


async def test_a_batch_is_one_write_on_tcp() -> None:
    sends: list[int] = []
    async with await tcp_capture() as capture:
        handler = SysLogHandler(port_of(capture.listener), socktype=socket.SOCK_STREAM)
        await handler.createSocket()
        stream = handler._stream
        assert stream is not None
        real_send = stream.send

        async def counting_send(data: bytes) -> None:
            sends.append(len(data))
            await real_send(data)

        stream.send = counting_send  # type: ignore[method-assign]
        records = make_records() * 100
        async with handler:
            await handler.emit_batch(records)
        got = await capture.wait_finished(1)
    assert len(sends) == 1
    assert sends[0] == len(got)
    assert got.count(b"\n") == len(records)


class _AfterBatch(SysLogHandler):
    """Records, for each delivered batch, its size and what it left held (read at once)."""

    after_batch: list[tuple[int, int]]

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        await super().emit_batch(records)
        self.__dict__.setdefault("after_batch", []).append((len(records), self.unwritten))


async def _hung_up(handler: SysLogHandler) -> None:
    """Wait until the sink's socket has seen the server's end of the connection."""
    sock = handler.socket
    assert sock is not None
    with anyio.fail_after(10):
        while not select.select([sock], [], [], 0)[0]:
            await anyio.lowlevel.checkpoint()


@asynccontextmanager
async def _daemon_gone_after_first(
    handler: SysLogHandler,
) -> AsyncIterator[tuple[LogQueue, logging.Logger]]:
    """A queue whose sink sent one record to a daemon that is gone since, its port refusing."""
    handler.retry_start = handler.retry_max = 0.02
    logger = quiet_logger(f"syslog.gone.{id(handler)}")
    async with loopsink.install(handler, logger=logger) as queue:
        async with await tcp_capture() as capture:
            handler.address = port_of(capture.listener)
            logger.info("first")
            await capture.wait_bytes(len(b"<14>first\n"))
        await _hung_up(handler)
        yield queue, logger


async def test_tcp_under_a_queue_frames_are_held_for_a_linger_and_flush_sends_them() -> None:
    """A trickle of records must not cost a send (a wake-up of the daemon) per batch."""
    async with await tcp_capture() as capture:
        handler = _AfterBatch(port_of(capture.listener), socktype=socket.SOCK_STREAM)
        logger = quiet_logger("syslog.linger")
        async with loopsink.install(handler, logger=logger) as queue:
            logger.info("first")  # no connection yet: sent as it comes, which opens one
            await capture.wait_bytes(len(b"<14>first\n"))
            logger.info("second")
            await until(lambda: len(getattr(handler, "after_batch", ())) == 2)
            assert handler.after_batch == [(1, 0), (1, 1)]  # held, counted as emitted
            assert handler.linger_deadline() is not None
            await queue.flush()
            assert handler.unwritten == 0
            assert await capture.wait_bytes(len(b"<14>first\n<14>second\n")) == (
                b"<14>first\n<14>second\n"
            )
            logger.info("third")  # no flush: the queue sends it when its linger is over
            await capture.wait_bytes(len(b"<14>first\n<14>second\n<14>third\n"))
            assert handler.unwritten == 0
        assert capture.connections == 1
    assert queue.stats.sinks[0].emitted == 3
    assert queue.stats.sinks[0].errors == 0


async def test_tcp_frames_whose_send_fails_after_the_linger_count_as_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = _AfterBatch(socktype=socket.SOCK_STREAM, retry_timeout=0.2)
    async with _daemon_gone_after_first(handler) as (queue, logger):
        logger.info("lost")
        await until(lambda: len(getattr(handler, "after_batch", ())) == 2)
        assert handler.after_batch[1] == (1, 1)
        with anyio.fail_after(10):
            await queue.flush()
        stats = queue.stats.sinks[0]
        assert (stats.emitted, stats.errors) == (1, 1)
        assert handler.late_failures == 1
        assert handler.unwritten == 0
    assert handler.error_count == 1
    assert "Logging error" in capsys.readouterr().err  # reported once, with its traceback


async def test_tcp_frames_held_when_a_close_runs_out_of_time_are_named_not_lost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = _AfterBatch(socktype=socket.SOCK_STREAM)  # waits 30 s for the daemon
    async with _daemon_gone_after_first(handler) as (queue, logger):
        for i in range(3):
            logger.info("held %d", i)
        await until(lambda: handler.unwritten == 3)
        with anyio.fail_after(10):
            await queue.aclose(timeout=0.2)
    assert queue.stats.sinks[0].emitted == 4
    assert handler.unwritten == 3
    err = capsys.readouterr().err
    assert "and 3 handed to it but not written yet" in err


def _udp_address(capture: anyio.abc.UDPSocket) -> tuple[str, int]:
    return ("127.0.0.1", capture.extra(anyio.abc.SocketAttribute.local_port))


async def test_udp_under_a_queue_datagrams_are_held_for_a_linger_and_flush_sends_them() -> None:
    """A trickle must not cost a datagram send (a wake-up of the daemon) per batch, and
    each record is still a datagram of its own."""
    async with udp_capture() as capture:
        handler = _AfterBatch(_udp_address(capture))
        logger = quiet_logger("syslog.udp.linger")
        async with loopsink.install(handler, logger=logger) as queue:
            logger.info("first")  # no socket yet: sent as it comes, which opens one
            assert await receive_datagrams(capture, 1) == [b"<14>first\x00"]
            logger.info("second")
            logger.info("third")
            await until(lambda: queue.stats.sinks[0].emitted == 3)
            assert handler.after_batch[0] == (1, 0)
            size = handler.after_batch[1][0]
            assert handler.after_batch[1] == (size, size)  # held, counted as emitted
            await queue.flush()
            assert handler.unwritten == 0
            assert await receive_datagrams(capture, 2) == [b"<14>second\x00", b"<14>third\x00"]
            logger.info("fourth")  # no flush: the queue sends it when its linger is over
            assert await receive_datagrams(capture, 1) == [b"<14>fourth\x00"]
            assert handler.unwritten == 0
    stats = queue.stats.sinks[0]
    assert (stats.emitted, stats.errors) == (4, 0)


@pytest.mark.parametrize("size", [10, 4000], ids=["count", "bytes"])
async def test_held_datagrams_go_once_they_fill_a_burst(size: int) -> None:
    """Held datagrams go out without waiting for the linger once HELD_DATAGRAMS or
    HELD_FRAMES_BYTES wait: a burst is one step of the loop, and small enough for the
    receiver's socket buffer."""
    frame = len("<14>") + size + len("\x00")
    burst = min(_tuning.HELD_DATAGRAMS, -(-_tuning.HELD_FRAMES_BYTES // frame))
    assert burst > 2
    async with udp_capture() as capture:
        handler = _AfterBatch(_udp_address(capture))
        async with handler:
            await handler.createSocket()
            async with handler.io_lock():
                handler.linger_watched = True  # as a queue sets it while it drives the sink

                def batch(count: int) -> list[logging.LogRecord]:
                    return [
                        logging.LogRecord("a", logging.INFO, __file__, 1, "x" * size, None, None)
                        for _ in range(count)
                    ]

                await handler.emit_batch(batch(burst - 2))
                assert handler.after_batch[-1] == (burst - 2, burst - 2)  # held
                await handler.emit_batch(batch(2))
                assert handler.after_batch[-1] == (2, 0)  # the burst is full: all sent
                await handler.emit_batch(batch(1))
                assert handler.after_batch[-1] == (1, 1)
                handler.linger_watched = False
                await handler.flush()
                assert handler.unwritten == 0
            got = await receive_datagrams(capture, burst + 1)
    assert got == [b"<14>" + b"x" * size + b"\x00"] * (burst + 1)


async def test_udp_datagram_that_fails_after_the_linger_is_a_late_error_of_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A held datagram the kernel refuses (larger than UDP carries) is taken back out of
    the records counted as emitted; the ones beside it still go."""
    async with udp_capture() as capture:
        handler = SysLogHandler(_udp_address(capture))
        logger = quiet_logger("syslog.udp.late")
        async with loopsink.install(handler, logger=logger) as queue:
            logger.info("open")
            assert await receive_datagrams(capture, 1) == [b"<14>open\x00"]
            logger.info("before")
            logger.info("%s", "y" * 70_000)  # over 65,507 bytes: EMSGSIZE
            logger.info("after")
            await queue.flush()
            assert await receive_datagrams(capture, 2) == [b"<14>before\x00", b"<14>after\x00"]
            stats = queue.stats.sinks[0]
            assert (stats.emitted, stats.errors) == (3, 1)
            assert handler.late_failures == 1
            assert handler.unwritten == 0
    assert "Message too long" in capsys.readouterr().err


async def test_tcp_octet_framing() -> None:
    records = make_records()
    async with await tcp_capture() as capture:
        handler = SysLogHandler(
            port_of(capture.listener), socktype=socket.SOCK_STREAM, framing="octet"
        )
        async with handler:
            await handler.emit_batch(records)
        bodies = [
            (
                f"<{handler.encodePriority(1, handler.mapPriority(r.levelname))}>"
                + handler.format(r)
            ).encode()
            for r in records
        ]
        expected = b"".join(b"%d %s" % (len(b), b) for b in bodies)
        got = await capture.wait_bytes(len(expected))
    assert got == expected
    buffer = bytearray(got)
    assert split_syslog_stream(buffer) == bodies
    assert not buffer


# -- RFC 5424 --------------------------------------------------------------------------------------

RFC5424 = re.compile(
    r"^<(?P<pri>\d+)>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|(?:\[.*?(?<!\\)\])+) (?P<msg>.*)$",
    re.DOTALL,
)


def test_rfc5424_formatter_header_fields() -> None:
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    record.msgid = "ID47"
    record.structured_data = {"exampleSDID@32473": {"iut": 3, "note": 'say "hi"] \\ ok'}}
    formatter = RFC5424Formatter(app_name="my app", hostname="web-1", procid=None)
    text = formatter.format(record)
    match = RFC5424.match("<14>" + text)
    assert match, text
    assert match["host"] == "web-1"
    assert match["app"] == "myapp"  # spaces are not allowed in a header field
    assert match["procid"] == str(record.process)
    assert match["msgid"] == "ID47"
    assert match["sd"] == '[exampleSDID@32473 iut="3" note="say \\"hi\\"\\] \\\\ ok"]'
    assert match["msg"] == "hello there"
    stamp = datetime.datetime.fromisoformat(match["ts"])
    assert stamp.utcoffset() is not None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d", match["ts"])
    assert abs(stamp.timestamp() - record.created) < 1e-6
    assert not text.encode().startswith(b"\xef\xbb\xbf")
    assert "\ufeff" not in text


def test_rfc5424_utc_and_nil_values() -> None:
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "x", None, None)
    formatter = RFC5424Formatter(app_name="", hostname="h", procid="-", utc=True)
    header = formatter.format_header(record)
    assert header.startswith("1 ")
    assert header.endswith(" h - - - -")
    assert "+00:00 " in header


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"bad id": {}}, r"^RFC 5424 structured data SD-ID must be 1-32 printable ASCII"),
        ({"ok@1": {"a=b": 1}}, r"^RFC 5424 structured data PARAM-NAME must be"),
        (["x"], r"^RFC 5424 structured data must be a mapping"),
        ("no bracket", r"^RFC 5424 structured data given as text must start with '\['"),
    ],
)
def test_structured_data_is_validated(data: object, error: str) -> None:
    with pytest.raises((ValueError, TypeError), match=error):
        _syslog.format_structured_data(data)


async def test_rfc5424_over_udp_and_a_bad_record_is_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with udp_capture() as capture:
        address = ("127.0.0.1", capture.extra(anyio.abc.SocketAttribute.local_port))
        handler = SysLogHandler(
            address, "local4", format="rfc5424", app_name="svc", hostname="box", msgid="M1"
        )
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        good = logging.LogRecord("a", logging.WARNING, __file__, 1, "multi\nline", None, None)
        bad = logging.LogRecord("a", logging.INFO, __file__, 1, "bad sd", None, None)
        bad.structured_data = {"bad id": {}}
        async with handler:
            await handler.emit_batch([bad, good])
        (datagram,) = await receive_datagrams(capture, 1)
    match = RFC5424.match(datagram.decode())
    assert match, datagram
    assert int(match["pri"]) == 20 * 8 + 4
    assert (match["host"], match["app"], match["msgid"]) == ("box", "svc", "M1")
    assert match["msg"] == "WARNING multi\nline"
    assert not datagram.endswith(b"\x00")  # no NUL in RFC 5424
    assert handler.error_count == 1
    assert "SD-ID must be" in capsys.readouterr().err


async def test_rfc5424_formatter_on_tcp_is_octet_counted_and_app_name_from_ident() -> None:
    async with await tcp_capture() as capture:
        handler = SysLogHandler(
            port_of(capture.listener), socktype=socket.SOCK_STREAM, format="rfc5424"
        )
        handler.ident = "billing: "
        assert handler.effective_framing() == "octet"
        record = logging.LogRecord("a", logging.ERROR, __file__, 1, "two\nlines", None, None)
        async with handler:
            await handler.handle(record)
        data = await capture.wait_bytes(10)
        buffer = bytearray(
            await capture.wait_bytes(int(data.split(b" ")[0]) + len(data.split(b" ")[0]) + 1)
        )
    (frame,) = split_syslog_stream(buffer)
    match = RFC5424.match(frame.decode())
    assert match
    assert match["app"] == "billing"
    assert match["msg"] == "two\nlines"

    formatter_handler = SysLogHandler(("127.0.0.1", 1), socktype=socket.SOCK_STREAM)
    formatter_handler.setFormatter(RFC5424Formatter())
    assert formatter_handler.uses_rfc5424
    assert formatter_handler.effective_framing() == "octet"


# -- construction errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"address": 514}, TypeError, r"^SysLogHandler address must be \(host, port\)"),
        (
            {"address": ("h", "514")},
            TypeError,
            r"^SysLogHandler address must be \(host: str, port: int\)",
        ),
        ({"socktype": 99}, ValueError, r"^SysLogHandler socktype must be None, socket.SOCK_DGRAM"),
        (
            {"facility": "nope"},
            ValueError,
            r"^SysLogHandler facility 'nope' is not a syslog facility",
        ),
        ({"format": "json"}, ValueError, r"^SysLogHandler format must be 'stdlib' or 'rfc5424'"),
        (
            {"framing": "nul"},
            ValueError,
            r"^SysLogHandler framing must be 'lf', 'octet' or 'stdlib'",
        ),
        (
            {"framing": "lf", "socktype": socket.SOCK_DGRAM},
            ValueError,
            r"^SysLogHandler framing='lf' applies to stream sockets",
        ),
        (
            {"app_name": "x"},
            ValueError,
            r"^SysLogHandler app_name only apply to RFC 5424 output: add format='rfc5424'$",
        ),
        (
            {"address": "/dev/log", "tls": True},
            ValueError,
            r"^SysLogHandler TLS needs a \(host, port\) address",
        ),
        (
            {"tls": True, "socktype": socket.SOCK_DGRAM},
            ValueError,
            r"^SysLogHandler TLS runs over TCP \(RFC 5425\)",
        ),
        (
            {"ssl_context": "yes"},
            TypeError,
            r"^SysLogHandler ssl_context must be an ssl.SSLContext",
        ),
        (
            {"retry_timeout": -1},
            ValueError,
            r"^SysLogHandler retry_timeout must be a number of seconds >= 0, got -1$",
        ),
    ],
)
def test_bad_arguments_fail_at_construction(
    kwargs: dict[str, Any], exc: type[Exception], message: str
) -> None:
    with pytest.raises(exc, match=message):
        SysLogHandler(**kwargs)


def test_tls_implies_tcp_and_octet_framing() -> None:
    handler = SysLogHandler(("localhost", 6514), tls=True)
    assert handler.socktype == socket.SOCK_STREAM
    assert isinstance(handler.ssl_context, ssl.SSLContext)
    assert handler.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert handler.ssl_context.check_hostname
    assert handler.effective_framing() == "octet"


def test_platform_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = tmp_path / "log"
    here.touch()
    monkeypatch.setitem(
        _syslog._PLATFORM_ADDRESSES, sys.platform[:5], (str(tmp_path / "missing"), str(here))
    )
    assert SysLogHandler.platform_address() == str(here)
    monkeypatch.setitem(_syslog._PLATFORM_ADDRESSES, sys.platform[:5], (str(tmp_path / "missing"),))
    with pytest.raises(
        FileNotFoundError,
        match=r"^no local syslog socket on .* \(looked for: .*missing\); start a syslog daemon",
    ):
        SysLogHandler.platform_address()


# -- failures, reconnection, TLS -------------------------------------------------------------------


async def test_nothing_listening_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        handler = SysLogHandler(("127.0.0.1", port), socktype=socket.SOCK_STREAM, retry_timeout=0)
        records = make_records()[:3]
        async with handler:
            await handler.emit_batch(records)
            assert await handler.handle(records[0]) is records[0]
    assert handler.error_count == 4
    assert "ConnectionRefusedError" in capsys.readouterr().err


async def test_unix_path_missing_is_not_an_error_at_create_socket(tmp_path: Path) -> None:
    handler = SysLogHandler(str(tmp_path / "nothing-here"), retry_timeout=0)
    await handler.createSocket()  # as the stdlib: ignored, retried by the next record
    assert handler.socket is None
    with pytest.raises(OSError):
        await SysLogHandler(("127.0.0.1", 9), socktype=socket.SOCK_STREAM).createSocket()
    logging.raiseExceptions = False
    await handler.handle(make_records()[0])
    assert handler.error_count == 1


async def test_tcp_reconnects_and_loses_nothing_when_the_receiver_restarts() -> None:
    records = [
        logging.LogRecord("a", logging.INFO, __file__, i, f"rec {i}", None, None) for i in range(40)
    ]
    async with SyslogReceiver(udp_port=None) as first:
        assert first.tcp_address is not None
        port = first.tcp_address[1]
        handler = SysLogHandler(first.tcp_address, socktype=socket.SOCK_STREAM, retry_timeout=20)
        handler.retry_max = 0.05
        async with LogQueue(handler) as queue:
            for record in records[:20]:
                queue.put(record)
            await queue.flush()
            with anyio.fail_after(5):
                await first.wait_count(20)
            await first.aclose()
            for record in records[20:]:  # the receiver is down: these wait in the sink
                queue.put(record)
            async with SyslogReceiver(udp_port=None, tcp_port=port) as second:
                with anyio.fail_after(10):
                    await queue.flush()
                    await second.wait_count(20)
                assert [m.body for m in second.messages] == [f"rec {i}" for i in range(20, 40)]
                assert second.connections == 1
    assert handler.error_count == 0


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    """Built outside the event loop: trustme writes the certificate to temporary files."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    return context


@pytest.fixture
def client_ctx(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def default_ctx() -> ssl.SSLContext:
    """What ``tls=True`` uses: the system's CAs, which do not know the test CA."""
    return ssl.create_default_context()


async def test_tls_with_a_private_ca(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async with SyslogReceiver("127.0.0.1", udp_port=None, ssl_context=server_ctx) as receiver:
        assert receiver.tcp_address is not None
        handler = SysLogHandler(
            receiver.tcp_address, ssl_context=client_ctx, server_hostname="localhost"
        )
        async with handler:
            await handler.emit_batch(make_records())
            await handler.emit_batch(make_records()[:2])  # same connection, checked alive
        with anyio.fail_after(5):
            await receiver.wait_count(8)
    assert {m.transport for m in receiver.messages} == {"tls"}
    assert receiver.messages[4].body.startswith("with exc\nTraceback")
    assert receiver.connections == 1
    assert handler.error_count == 0


async def test_tls_verification_failure_says_how_to_fix_it(
    server_ctx: ssl.SSLContext, default_ctx: ssl.SSLContext, capsys: pytest.CaptureFixture[str]
) -> None:
    tls_log = logging.getLogger("anyio.streams.tls")
    tls_log.disabled = True  # the server side logs the failed handshake
    try:
        async with SyslogReceiver("127.0.0.1", udp_port=None, ssl_context=server_ctx) as receiver:
            assert receiver.tcp_address is not None
            handler = SysLogHandler(
                receiver.tcp_address, ssl_context=default_ctx, server_hostname="localhost"
            )
            async with handler:
                await handler.emit_batch(make_records()[:2])
    finally:
        tls_log.disabled = False
    assert handler.error_count == 2
    err = capsys.readouterr().err
    assert "TLS verification of the syslog server 127.0.0.1" in err
    assert "pass ssl_context=ssl.create_default_context(cafile='ca.pem')" in err
    assert receiver.count == 0


# -- the whole path, and the receiver --------------------------------------------------------------


async def test_logging_calls_through_the_bridge_reach_the_receiver() -> None:
    async with SyslogReceiver() as receiver:
        assert receiver.udp_address is not None
        assert receiver.tcp_address is not None
        udp = SysLogHandler(receiver.udp_address, "local2")
        tcp = SysLogHandler(receiver.tcp_address, "local2", socket.SOCK_STREAM)
        for sink in (udp, tcp):
            sink.ident = "svc: "
        async with loopsink.install(udp, tcp, logger="svc"):
            log = logging.getLogger("svc")
            log.setLevel(logging.DEBUG)
            for i in range(300):
                log.log(
                    [logging.DEBUG, logging.INFO, logging.ERROR][i % 3], "event %d\nsecond line", i
                )
        with anyio.fail_after(5):
            await receiver.wait_count(600)
    by_transport: dict[str, list[Any]] = {"udp": [], "tcp": []}
    for message in receiver.messages:
        by_transport[message.transport].append(message)
    for transport, messages in by_transport.items():
        assert len(messages) == 300, transport
        assert {m.facility for m in messages} == {18}
        assert [m.severity for m in messages[:3]] == [7, 6, 3]
    assert by_transport["udp"][0].body == "svc: event 0\nsecond line"
    assert by_transport["tcp"][0].body == "svc: event 0#012second line"


def test_receiver_parsing() -> None:
    message = parse_syslog_frame(b"<165>1 2003-10-11T22:14:15.003Z host app - ID47 - hi\x00")
    assert (message.pri, message.facility, message.severity) == (165, 20, 5)
    assert message.body == "1 2003-10-11T22:14:15.003Z host app - ID47 - hi"
    assert parse_syslog_frame(b"no pri").pri is None
    assert parse_syslog_frame(b"<999>x").pri is None
    buffer = bytearray(b"<14>a\x00<14>b\n4 <1>c<13>d\n12")
    assert split_syslog_stream(buffer) == [b"<14>a", b"<14>b", b"<1>c", b"<13>d"]
    assert buffer == b"12"
    with pytest.raises(ValueError, match="bad octet count"):
        split_syslog_stream(bytearray(b"123456789012345"))
    with pytest.raises(ValueError, match="udp_port or tcp_port"):
        SyslogReceiver(udp_port=None, tcp_port=None)


# -- hostile or broken configuration (#19) ------------------------------------------------------


@pytest.mark.parametrize(
    "ident", ["app\n<11>forged: ", "app\r: ", "a\x00b: ", "\x1b[31mred: ", "a\x85: ", "a\u2028b: "]
)
def test_ident_with_control_characters_is_refused(ident: str) -> None:
    """An ident with a line feed once produced a second, forged message at the receiver."""
    with pytest.raises(ValueError, match=r"^SysLogHandler ident .* holds the control character"):
        SysLogHandler(("127.0.0.1", 514)).ident = ident

    class Preset(SysLogHandler):
        pass

    Preset.ident = ident  # type: ignore[assignment]
    with pytest.raises(ValueError, match=r"^Preset ident .* holds the control character"):
        Preset(("127.0.0.1", 514))
    with pytest.raises(TypeError, match=r"^SysLogHandler ident must be a str"):
        SysLogHandler(("127.0.0.1", 514)).ident = b"app: "  # type: ignore[assignment]


@pytest.mark.parametrize("facility", [24, 24 << 3, 1000, 1 << 40, -1])
def test_facility_out_of_range_is_refused(facility: int) -> None:
    """Facilities 24 and above once produced PRI 196, 8004, 8796093022212 (valid: 0-191)."""
    message = rf"^SysLogHandler facility {facility} is out of range: syslog facilities are 0 to 23"
    with pytest.raises(ValueError, match=message):
        SysLogHandler(("127.0.0.1", 514), facility=facility)
    handler = SysLogHandler(("127.0.0.1", 514), facility=SysLogHandler.LOG_LOCAL7)
    with pytest.raises(ValueError, match=message):
        handler.facility = facility
    assert handler.facility == 23
    assert handler.encodePriority(handler.facility, "emerg") == 184


def test_every_facility_name_and_number_is_still_accepted() -> None:
    for name, number in SysLogHandler.facility_names.items():
        assert SysLogHandler(("127.0.0.1", 514), facility=name).facility == name
        assert SysLogHandler(("127.0.0.1", 514), facility=number).facility == number
    handler = SysLogHandler(("127.0.0.1", 514))
    assert handler.facility == SysLogHandler.LOG_USER == 1
    handler.ident = "billing[42]: "
    assert handler.ident == "billing[42]: "
    assert SysLogHandler.ident == ""


def _read_lines(conn: socket.socket, count: int, timeout: float) -> list[str]:
    """Read LF-framed syslog messages from ``conn`` until ``count`` arrived (blocking)."""
    conn.settimeout(timeout)
    data = b""
    while data.count(b"\n") < count:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode().splitlines()


async def test_tcp_records_a_resetting_daemon_never_read_are_sent_again_and_counted() -> None:
    """A daemon killed with records unread resets the connection: those records were lost
    without a trace (errors=0). Now they are sent again on the next connection (at least
    once), counted in ``resent``, as SocketHandler does (#19)."""
    import select
    import struct

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    sink = SysLogHandler(("127.0.0.1", port), socktype=socket.SOCK_STREAM)
    sink.setFormatter(logging.Formatter("%(message)s"))
    sink.retry_start = sink.retry_max = 0.01
    record = logging.makeLogRecord
    with listener:
        await sink.emit_batch([record({"msg": f"unread {i}"}) for i in range(5)])
        conn, _ = await anyio.to_thread.run_sync(listener.accept)
        # the records sit unread in the daemon's buffer; it dies: a close with unread data
        # is a reset
        await anyio.to_thread.run_sync(select.select, [conn], [], [], 5.0)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        assert sink.socket is not None
        poll = select.poll()
        poll.register(sink.socket.fileno(), select.POLLERR | select.POLLHUP)
        # the reset has reached the sink's kernel (a wait on the socket, not a sleep)
        assert await anyio.to_thread.run_sync(poll.poll, 5000)
        await sink.emit_batch([record({"msg": "after the restart"})])
        conn2, _ = await anyio.to_thread.run_sync(listener.accept)
        with conn2:
            lines = await anyio.to_thread.run_sync(_read_lines, conn2, 6, 5.0)
    await sink.close()
    assert [line.split(">", 1)[1] for line in lines] == [
        *(f"unread {i}" for i in range(5)),
        "after the restart",
    ]
    assert sink.resent == 5
    assert sink.error_count == 0
