"""SocketHandler and DatagramHandler against real sockets on loopback, on asyncio and trio.

Compatibility is checked against receivers written the stdlib way (tests/servers/
socket_receivers.py): the frames are compared byte for byte with what the stdlib's own
handlers send for the same log call, and the decoded records attribute by attribute.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import pickle
import select
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
import pytest
import trustme

import loopsink
from helpers import log_beside_a_busy_task, quiet_logger, spin, until
from loopsink import DatagramHandler, SocketHandler
from loopsink.receiver import LogReceiver, RejectReason
from loopsink.testing import CapturingSink
from servers.socket_receivers import StdlibReceiver

DEFAULT_MSG = "user %s logged in from %s"


def make_record(msg: str = DEFAULT_MSG, *args: object) -> logging.LogRecord:
    if msg == DEFAULT_MSG and not args:
        args = ("ann", "::1")
    record = logging.LogRecord("app.auth", logging.WARNING, __file__, 42, msg, args, None)
    record.request_id = "r-17"  # an ``extra`` attribute travels too
    return record


def record_with_exception() -> logging.LogRecord:
    try:
        raise KeyError("missing")
    except KeyError:
        exc_info = sys.exc_info()
    return logging.LogRecord(
        "app.db",
        logging.ERROR,
        __file__,
        7,
        "query %d failed",
        (3,),
        exc_info,
        "run",
        "Stack (most recent call last):\n  here",
    )


@pytest.fixture
def short_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # unix socket paths must stay under ~100 bytes; pytest's tmp paths can be longer
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ls-") as name:
        yield Path(name)


@pytest.fixture
def stdlib_tcp() -> Iterator[StdlibReceiver]:
    receiver = StdlibReceiver("tcp")
    yield receiver
    receiver.close()


@pytest.fixture
def stdlib_udp() -> Iterator[StdlibReceiver]:
    receiver = StdlibReceiver("udp")
    yield receiver
    receiver.close()


def attributes(record: logging.LogRecord) -> dict[str, object]:
    return dict(record.__dict__)


# -- construction ------------------------------------------------------------------------------


def test_stdlib_attributes_and_defaults() -> None:
    handler = SocketHandler("localhost", 9020)
    reference = logging.handlers.SocketHandler("localhost", 9020)
    for name in (
        "host",
        "port",
        "address",
        "sock",
        "closeOnError",
        "retryTime",
        "retryStart",
        "retryMax",
        "retryFactor",
    ):
        assert getattr(handler, name) == getattr(reference, name), name
    unix = SocketHandler("/run/log.sock", None)
    assert unix.address == "/run/log.sock"
    dgram = DatagramHandler("localhost", 9021)
    assert dgram.closeOnError is False
    assert dgram.address == ("localhost", 9021)
    for method in (
        "makePickle",
        "makeSocket",
        "createSocket",
        "send",
        "emit",
        "handleError",
        "close",
    ):
        assert callable(getattr(handler, method))


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(
        ValueError,
        match=r"^SocketHandler port must be an int from 1 to 65535, or None for a unix socket, "
        r"got 70000$",
    ):
        SocketHandler("localhost", 70000)
    with pytest.raises(
        ValueError, match=r"^SocketHandler serializer must be 'pickle' or 'json', got 'xml'$"
    ):
        SocketHandler("localhost", 1, serializer="xml")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^SocketHandler hmac_key must be non-empty bytes, got str$"
    ):
        SocketHandler("localhost", 1, hmac_key="secret")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"^SocketHandler ssl_context needs a TCP peer; port=None means a unix socket$",
    ):
        SocketHandler("/tmp/x", None, ssl_context=ssl.create_default_context())
    with pytest.raises(TypeError, match=r"^DatagramHandler host must be a non-empty str"):
        DatagramHandler("", 9)


# -- bytes on the wire -------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [make_record, record_with_exception])
def test_makepickle_bytes_equal_the_stdlib(factory: object) -> None:
    for ours_cls, stdlib_cls in (
        (SocketHandler, logging.handlers.SocketHandler),
        (DatagramHandler, logging.handlers.DatagramHandler),
    ):
        ours = factory()  # type: ignore[operator]
        theirs = logging.makeLogRecord(dict(ours.__dict__))
        assert ours_cls("h", 1).makePickle(ours) == stdlib_cls("h", 1).makePickle(theirs)


async def test_frames_over_tcp_equal_the_stdlib_for_the_same_log_call(
    stdlib_tcp: StdlibReceiver,
) -> None:
    reference = StdlibReceiver("tcp")
    stdlib_handler = logging.handlers.SocketHandler(reference.host, reference.port)
    logger = logging.getLogger("compat.tcp")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(stdlib_handler)
    try:
        sink = SocketHandler(stdlib_tcp.host, stdlib_tcp.port)

        def log_calls() -> None:  # in a thread: the stdlib handler blocks on its socket
            logger.info("plain %s", "args", extra={"tenant": "acme", "n": 3})
            logger.debug("no args, %d literal percent")
            try:
                1 / 0  # noqa: B018
            except ZeroDivisionError:
                logger.exception("division failed for %r", [1, 2])
            logger.warning("with stack", stack_info=True)

        async with loopsink.install(sink, logger=logger):
            await anyio.to_thread.run_sync(log_calls)
        with anyio.fail_after(10):
            for _ in range(4):
                ours, theirs = await stdlib_tcp.get_frame(), await reference.get_frame()
                assert ours == theirs
                mine, stdlib = await stdlib_tcp.get(), await reference.get()
                assert attributes(mine) == attributes(stdlib)
    finally:
        logger.removeHandler(stdlib_handler)
        await anyio.to_thread.run_sync(stdlib_handler.close)
        await reference.aclose()


@pytest.mark.parametrize("kind", ["unix", "udp", "unix_dgram"])
async def test_unix_and_datagram_frames_equal_the_stdlib(kind: str, short_path: Path) -> None:
    ours = StdlibReceiver(kind, str(short_path / "ours.sock"))
    theirs = StdlibReceiver(kind, str(short_path / "theirs.sock"))
    stream = kind == "unix"
    port = ours.port if kind == "udp" else None
    their_port = theirs.port if kind == "udp" else None
    our_host = ours.host if kind == "udp" else ours.address
    their_host = theirs.host if kind == "udp" else theirs.address
    cls = SocketHandler if stream else DatagramHandler
    stdlib_cls = logging.handlers.SocketHandler if stream else logging.handlers.DatagramHandler
    stdlib_handler = stdlib_cls(their_host, their_port)
    try:
        async with cls(our_host, port) as handler:
            for record_factory in (make_record, record_with_exception):
                record = record_factory()
                copy = logging.makeLogRecord(dict(record.__dict__))
                await handler.handle(record)
                await anyio.to_thread.run_sync(stdlib_handler.handle, copy)
                with anyio.fail_after(10):
                    assert await ours.get_frame() == await theirs.get_frame()
                    assert attributes(await ours.get()) == attributes(await theirs.get())
    finally:
        await anyio.to_thread.run_sync(stdlib_handler.close)
        await ours.aclose()
        await theirs.aclose()


async def test_a_batch_goes_out_in_one_write_of_at_most_max_write_size(
    stdlib_tcp: StdlibReceiver,
) -> None:
    writes: list[int] = []

    class Counting(SocketHandler):
        async def send(self, s: bytes) -> None:
            writes.append(len(s))
            await super().send(s)

    handler = Counting(stdlib_tcp.host, stdlib_tcp.port)
    small = [make_record("n=%d", i) for i in range(50)]
    big = [make_record("n=%d", i) for i in range(50, 1050)]
    frame_sizes = [len(handler.makePickle(r)) for r in big]
    async with handler:
        async with handler.io_lock():
            await handler.emit_batch(small)
            assert writes == [sum(len(handler.makePickle(r)) for r in small)]
            await handler.emit_batch(big)
    # split between frames, each write as full as the next frame allows
    limit, expected, current = SocketHandler.max_write_size, [], 0
    for size in frame_sizes:
        if current and current + size > limit:
            expected.append(current)
            current = 0
        current += size
    expected.append(current)
    assert writes[1:] == expected
    assert len(expected) > 1
    with anyio.fail_after(10):
        got = [(await stdlib_tcp.get()).getMessage() for _ in range(1050)]
    assert got == [f"n={i}" for i in range(1050)]


async def _refusing_port() -> int:
    """A loopback port nobody listens on any more: connections to it are refused."""
    with anyio.fail_after(10):
        placeholder = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port: int = placeholder.extra(anyio.abc.SocketAttribute.local_port)
        await placeholder.aclose()
    return port


class _SendCounting(SocketHandler):
    """Counts sends, and what each delivered batch left held (read as the batch returns)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.sends = 0
        self.after_batch: list[tuple[int, int, int]] = []  # (records, unwritten, sends)
        #: sends of a frame containing these bytes fail
        self.refuse: bytes | None = None

    async def send(self, s: bytes) -> None:
        self.sends += 1
        if self.refuse is not None and self.refuse in s:
            raise OSError("refused on purpose")
        await super().send(s)

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        await super().emit_batch(records)
        self.after_batch.append((len(records), self.unwritten, self.sends))


class _DatagramSendCounting(_SendCounting, DatagramHandler):
    """The same counts for the datagram sink (one send per datagram)."""


async def test_under_a_queue_frames_are_held_for_a_linger_and_flush_sends_them(
    stdlib_tcp: StdlibReceiver,
) -> None:
    """A trickle of records must not cost a send (a wake-up of the receiver) per batch."""
    handler = _SendCounting(stdlib_tcp.host, stdlib_tcp.port)
    logger = quiet_logger("socket.linger")
    async with loopsink.install(handler, logger=logger) as queue:
        logger.info("first")
        await until(lambda: len(handler.after_batch) == 1)
        assert handler.after_batch == [(1, 1, 0)]  # held, counted as emitted, not sent
        assert handler.linger_deadline() is not None
        logger.info("second")
        await until(lambda: queue.stats.sinks[0].emitted == 2)
        await queue.flush()
        assert handler.unwritten == 0
        with anyio.fail_after(10):
            got = [(await stdlib_tcp.get()).getMessage() for _ in range(2)]
        assert got == ["first", "second"]
        # both batches went out together, unless a stall of the machine outlasted a linger
        assert handler.sends < len(handler.after_batch) or handler.after_batch[1][2] == 1
        sends = handler.sends
        logger.info("third")  # no flush: the queue sends it when its linger is over
        with anyio.fail_after(10):
            assert (await stdlib_tcp.get()).getMessage() == "third"
        assert handler.sends == sends + 1
        assert handler.unwritten == 0
    assert queue.stats.sinks[0].emitted == 3
    assert queue.stats.sinks[0].errors == 0


async def test_a_send_that_fails_after_the_linger_counts_its_records_as_errors(
    stdlib_tcp: StdlibReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    class Failing(SocketHandler):
        async def send(self, s: bytes) -> None:
            raise RuntimeError("the wire is cut")

    handler = Failing(stdlib_tcp.host, stdlib_tcp.port)
    logger = quiet_logger("socket.linger.fail")
    async with loopsink.install(handler, logger=logger) as queue:
        for i in range(3):
            logger.info("lost %d", i)
        await queue.flush()
        stats = queue.stats.sinks[0]
        assert (stats.emitted, stats.errors) == (0, 3)
        assert handler.late_failures == 3
        assert handler.unwritten == 0
    assert "the wire is cut" in capsys.readouterr().err


async def test_frames_held_when_a_close_runs_out_of_time_are_named_not_lost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Held frames count as emitted: a close that gives up on them must still name them."""
    port = await _refusing_port()
    handler = _SendCounting("127.0.0.1", port)
    handler.retryStart, handler.retryMax = 0.01, 0.02
    async with loopsink.LogQueue(handler) as queue:
        for i in range(3):
            queue.put(make_record("n=%d", i))
        await until(lambda: bool(handler.after_batch) and handler.connect_failures > 0)
        with anyio.fail_after(10):
            await queue.aclose(timeout=0.2)
    assert queue.stats.sinks[0].emitted == 3  # handed over; the report names them
    assert handler.unwritten == 3
    err = capsys.readouterr().err
    assert "ran out of time" in err
    assert "and 3 handed to it but not written yet" in err


async def test_called_directly_a_batch_is_sent_at_once_after_any_frames_held(
    stdlib_tcp: StdlibReceiver,
) -> None:
    """Without a queue nobody comes back for held frames; and the records keep their order."""
    handler = _SendCounting(stdlib_tcp.host, stdlib_tcp.port)
    async with handler:
        async with handler.io_lock():
            await handler.emit_batch([make_record("now")])
            assert handler.after_batch == [(1, 0, 1)]
            assert handler.linger_deadline() is None
            handler.linger_watched = True  # as a queue sets it while it drives the sink
            await handler.emit_batch([make_record("held")])
            assert handler.after_batch[-1] == (1, 1, 1)
            handler.linger_watched = False
            await handler.emit_batch([make_record("direct")])
            assert handler.after_batch[-1] == (1, 0, 3)
        with anyio.fail_after(10):
            got = [(await stdlib_tcp.get()).getMessage() for _ in range(3)]
    assert got == ["now", "held", "direct"]


async def test_under_a_queue_datagrams_are_held_for_a_linger_and_flush_sends_them(
    stdlib_udp: StdlibReceiver,
) -> None:
    """A trickle must not cost a datagram send (a wake-up of the receiver) per batch, and
    each record is still a datagram of its own."""
    handler = _DatagramSendCounting(stdlib_udp.host, stdlib_udp.port)
    logger = quiet_logger("datagram.linger")
    async with loopsink.install(handler, logger=logger) as queue:
        logger.info("first")
        logger.info("second")
        await until(lambda: queue.stats.sinks[0].emitted == 2)
        size = handler.after_batch[0][0]
        assert handler.after_batch[0] == (size, size, 0)  # held, counted as emitted
        await queue.flush()
        assert (handler.sends, handler.unwritten) == (2, 0)
        with anyio.fail_after(10):
            got = [(await stdlib_udp.get()).getMessage() for _ in range(2)]
        assert got == ["first", "second"]
        logger.info("third")  # no flush: the queue sends it when its linger is over
        with anyio.fail_after(10):
            assert (await stdlib_udp.get()).getMessage() == "third"
        assert (handler.sends, handler.unwritten) == (3, 0)
    assert queue.stats.sinks[0].emitted == 3
    assert queue.stats.sinks[0].errors == 0


async def test_called_directly_datagrams_go_at_once_after_any_held(
    stdlib_udp: StdlibReceiver,
) -> None:
    handler = _DatagramSendCounting(stdlib_udp.host, stdlib_udp.port)
    async with handler:
        async with handler.io_lock():
            handler.linger_watched = True  # as a queue sets it while it drives the sink
            await handler.emit_batch([make_record("held")])
            assert handler.after_batch[-1] == (1, 1, 0)
            handler.linger_watched = False
            await handler.emit_batch([make_record("direct")])
            assert handler.after_batch[-1] == (1, 0, 2)
            handler.linger_watched = True
            await handler.emit_batch([make_record("held again")])
            assert await handler.emit(make_record("emitted")) is None
            assert handler.sends == 4
        with anyio.fail_after(10):
            got = [(await stdlib_udp.get()).getMessage() for _ in range(4)]
    assert got == ["held", "direct", "held again", "emitted"]


async def test_a_held_datagram_that_fails_is_a_late_error_of_its_own(
    capsys: pytest.CaptureFixture[str],
    stdlib_udp: StdlibReceiver,
) -> None:
    handler = _DatagramSendCounting(stdlib_udp.host, stdlib_udp.port)
    handler.refuse = b"doomed"
    logger = quiet_logger("datagram.late")
    async with loopsink.install(handler, logger=logger) as queue:
        for text in ("before", "doomed", "after"):
            logger.info(text)
        await queue.flush()
        stats = queue.stats.sinks[0]
        assert (stats.emitted, stats.errors) == (2, 1)
        assert handler.late_failures == 1
        assert handler.unwritten == 0
        with anyio.fail_after(10):
            got = [(await stdlib_udp.get()).getMessage() for _ in range(2)]
    assert got == ["before", "after"]
    assert "refused on purpose" in capsys.readouterr().err


# -- the peer goes away ------------------------------------------------------------------------


async def test_receiver_restart_mid_stream_loses_and_duplicates_nothing() -> None:
    received = CapturingSink()
    handler = SocketHandler("127.0.0.1", 1)
    handler.retryStart, handler.retryMax = 0.01, 0.05
    logger = logging.getLogger("restart")
    logger.setLevel(logging.INFO)
    counter = iter(range(10_000))

    def log(n: int) -> None:
        for _ in range(n):
            logger.info("record %d", next(counter))

    async with LogReceiver(received) as first:
        host, port = await first.listen_tcp()
        handler.port, handler.address = port, (host, port)
        async with loopsink.install(handler, logger=logger) as queue:
            log(300)
            with anyio.fail_after(10):
                await first.wait_received(300)
            await first.aclose()  # the server goes away with the connection open
            log(300)  # logged while nobody listens: they must wait, not vanish
            with anyio.fail_after(10):
                while handler.connect_failures == 0:
                    await anyio.sleep(0.005)
            assert queue.stats.sinks[0].pending > 0
            async with LogReceiver(received) as second:
                await second.listen_tcp(host, port)
                log(400)
                with anyio.fail_after(10):
                    await second.wait_received(700)
                    await queue.flush()
    numbers = [int(r.getMessage().split()[1]) for r in received.records]
    assert numbers == list(range(1000))
    assert handler.connections == 2
    assert queue.stats.sinks[0].errors == 0


async def test_records_wait_bounded_and_overflow_is_counted_while_the_peer_is_down() -> None:
    port = await _refusing_port()
    handler = SocketHandler("127.0.0.1", port)
    handler.retryStart, handler.retryMax = 0.01, 0.02
    received = CapturingSink()
    queue = loopsink.LogQueue(handler, capacity=50)
    # the receiver outlives the queue, so that the queue's closing drop summary reaches it
    async with LogReceiver(received) as receiver:
        async with queue:
            for i in range(200):
                queue.put(make_record("n=%d", i))
            with anyio.fail_after(10):
                while handler.connect_failures < 3:
                    await anyio.sleep(0.01)
            stats = queue.stats
            assert stats.dropped_total >= 100
            assert stats.sinks[0].errors == 0
            await receiver.listen_tcp("127.0.0.1", port)
            with anyio.fail_after(10):
                await queue.flush()
        delivered = queue.stats.sinks[0].emitted
        with anyio.fail_after(10):
            await receiver.wait_received(delivered)
    numbers = [int(m.split("=")[1]) for m in received.messages if m.startswith("n=")]
    assert numbers == sorted(set(numbers))
    assert numbers
    assert len(numbers) + queue.stats.dropped_total == 200
    summaries = [m for m in received.messages if "records dropped" in m]
    assert len(summaries) == 1
    assert summaries[0].startswith(f"{queue.stats.dropped_total} records dropped")
    assert len(received.records) == delivered == len(numbers) + 1


async def test_backoff_follows_the_stdlib_schedule() -> None:
    with anyio.fail_after(10):
        placeholder = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = placeholder.extra(anyio.abc.SocketAttribute.local_port)
        await placeholder.aclose()
        handler = SocketHandler("127.0.0.1", port)
        handler.retryStart, handler.retryFactor, handler.retryMax = 10.0, 2.0, 35.0
        await handler.createSocket()
        assert handler.sock is None
        assert handler.connect_failures == 1
        assert handler.retryPeriod == 10.0
        assert handler.retryTime is not None
        assert handler.retryTime - time.time() > 9
        await handler.createSocket()  # too early: no attempt at all
        assert handler.connect_failures == 1
        periods = []
        for _ in range(3):
            handler.retryTime = time.time() - 0.001
            await handler.createSocket()
            periods.append(handler.retryPeriod)
        assert periods == [20.0, 35.0, 35.0]
        assert handler.connect_failures == 4
        async with LogReceiver() as receiver:
            await receiver.listen_tcp("127.0.0.1", port)
            handler.retryTime = time.time() - 0.001
            await handler.createSocket()
            # read through object: mypy narrowed both attributes above, before the await
            connected: object = handler.sock
            retry: object = handler.retryTime
            assert connected is not None
            assert retry is None
        await handler.close()


# -- datagrams ---------------------------------------------------------------------------------


async def test_oversized_datagram_is_truncated_with_a_marker_and_counted(
    stdlib_udp: StdlibReceiver,
) -> None:
    async with DatagramHandler(stdlib_udp.host, stdlib_udp.port) as handler:
        await handler.handle(make_record("%s", "x" * 100_000))
        await handler.handle(make_record("small"))
        with anyio.fail_after(10):
            big = await stdlib_udp.get_frame()
            first, second = await stdlib_udp.get(), await stdlib_udp.get()
        assert len(big) <= 65_507
        assert second.getMessage() == "small"
        assert first.getMessage().startswith("x" * 60_000)
        assert first.getMessage().endswith("bytes cut by loopsink to fit a 65507-byte datagram]")
        assert handler.truncated == 1
        assert handler.error_count == 0


async def test_datagram_too_large_even_when_truncated_goes_to_handle_error(
    capsys: pytest.CaptureFixture[str],
    stdlib_udp: StdlibReceiver,
) -> None:
    async with DatagramHandler(stdlib_udp.host, stdlib_udp.port) as handler:
        record = make_record("short")
        record.blob = "y" * 70_000  # not a text field the sink may cut
        assert await handler.handle(record) is record
        assert handler.error_count == 1
        await handler.handle(make_record("after"))
        with anyio.fail_after(10):
            assert (await stdlib_udp.get()).getMessage() == "after"
    err = capsys.readouterr().err
    assert "ValueError: record too large for one datagram" in err


async def test_unix_datagram_waits_for_a_missing_receiver(short_path: Path) -> None:
    path = str(short_path / "late.sock")
    handler = DatagramHandler(path, None)
    handler.retryStart, handler.retryMax = 0.01, 0.02
    received = CapturingSink()
    async with loopsink.install(handler, logger="late") as queue:
        logger = logging.getLogger("late")
        for i in range(5):
            logger.warning("early %d", i)
        with anyio.fail_after(10):
            while handler.connect_failures == 0:
                await anyio.sleep(0.005)
        async with LogReceiver(received) as receiver:
            await receiver.listen_unix_datagram(path)
            with anyio.fail_after(10):
                await queue.flush()
                await receiver.wait_received(5)
    assert received.messages == [f"early {i}" for i in range(5)]


# -- options -----------------------------------------------------------------------------------


async def test_json_frames_are_documented_length_prefixed_utf8_objects() -> None:
    handler = SocketHandler("h", 1, serializer="json")
    frame = handler.makePickle(make_record("caf\u00e9 %s", "\u2603"))
    (size,) = struct.unpack(">L", frame[:4])
    assert size == len(frame) - 4
    data = json.loads(frame[4:].decode("utf-8"))
    assert data["msg"] == "caf\u00e9 \u2603"
    assert data["args"] is None
    assert data["request_id"] == "r-17"
    assert data["exc_info"] is None
    assert "message" not in data
    received = CapturingSink()
    async with LogReceiver(received) as receiver:
        host, port = await receiver.listen_tcp()
        async with SocketHandler(host, port, serializer="json") as sender:
            await sender.handle(record_with_exception())
            with anyio.fail_after(10):
                await receiver.wait_received(1)
    (record,) = received.records
    assert record.getMessage() == "query 3 failed"
    assert record.exc_text is not None
    assert "KeyError: 'missing'" in record.exc_text


async def test_hmac_signed_frames_are_accepted_and_unsigned_or_wrong_ones_rejected() -> None:
    received = CapturingSink()
    async with LogReceiver(received, hmac_key=b"k1") as receiver:
        host, port = await receiver.listen_tcp()
        async with SocketHandler(host, port, hmac_key=b"k1") as good:
            await good.handle(make_record("signed"))
            with anyio.fail_after(10):
                await receiver.wait_received(1)
        async with SocketHandler(host, port, hmac_key=b"other") as wrong:
            await wrong.handle(make_record("wrong key"))
            with anyio.fail_after(10):
                await receiver.wait_received(1, rejected=1)
        async with SocketHandler(host, port) as unsigned:
            await unsigned.handle(make_record("unsigned"))
            with anyio.fail_after(10):
                stats = await receiver.wait_received(1, rejected=2)
    assert received.messages == ["signed"]
    assert stats.rejected == {RejectReason.SIGNATURE: 2}


@dataclass
class TLS:
    server: ssl.SSLContext  # a certificate for 127.0.0.1 from a throwaway CA
    client: ssl.SSLContext  # trusts that CA
    stranger: ssl.SSLContext  # the system's CAs only: must refuse the server


@pytest.fixture(scope="module")
def tls() -> TLS:
    # built outside the event loop: loading certificates reads files
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return TLS(server, client, ssl.create_default_context())


async def test_tls_with_a_trusted_ca(tls: TLS) -> None:
    received = CapturingSink()
    async with LogReceiver(received) as receiver:
        host, port = await receiver.listen_tcp(ssl_context=tls.server)
        async with loopsink.install(
            SocketHandler(host, port, ssl_context=tls.client), logger="tls"
        ):
            for i in range(20):
                logging.getLogger("tls").warning("secret %d", i)
        with anyio.fail_after(10):
            await receiver.wait_received(20)
    assert received.messages == [f"secret {i}" for i in range(20)]


async def test_tls_verification_failure_is_reported_with_the_fix(
    tls: TLS, capsys: pytest.CaptureFixture[str]
) -> None:
    received = CapturingSink()
    async with LogReceiver(received) as receiver:
        host, port = await receiver.listen_tcp(ssl_context=tls.server)
        handler = SocketHandler(host, port, ssl_context=tls.stranger)
        async with handler:
            with anyio.fail_after(10):
                await handler.handle(make_record("never sent"))
        assert handler.error_count == 1
        with anyio.fail_after(10):
            await receiver.wait_received(0, rejected=1)
    err = capsys.readouterr().err
    assert "could not verify the TLS certificate of 127.0.0.1" in err
    assert "pass ssl_context=" in err
    assert received.records == []


async def test_close_on_error_drops_the_connection_quietly(
    stdlib_tcp: StdlibReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    class Unpicklable:
        def __reduce__(self) -> tuple[object, ...]:
            raise TypeError("cannot pickle this")

    handler = SocketHandler(stdlib_tcp.host, stdlib_tcp.port)
    handler.closeOnError = True
    async with handler:
        await handler.handle(make_record("first"))
        bad = make_record("bad")
        bad.payload = Unpicklable()
        raw = handler.sock.extra(anyio.abc.SocketAttribute.raw_socket)
        # a second descriptor of the same connection (the stream's may be a wrapper)
        twin = socket.fromfd(raw.fileno(), socket.AF_INET, socket.SOCK_STREAM)
        await handler.handle(bad)
        assert handler.error_count == 1
        assert handler.sock is None  # at the error, as the stdlib does: not at the next write
        with twin, pytest.raises(BrokenPipeError):  # and the connection is shut already
            twin.send(b"x")
        await handler.handle(make_record("second"))
        assert handler.connections == 2
    with anyio.fail_after(10):
        # two connections, served by two threads: their order is the receiver's business
        assert sorted([(await stdlib_tcp.get()).getMessage() for _ in range(2)]) == [
            "first",
            "second",
        ]
    assert "Logging error" not in capsys.readouterr().err


def test_pickle_payload_is_protocol_1() -> None:
    frame = SocketHandler("h", 1).makePickle(make_record())
    assert frame[4:5] == b"}"  # protocol 1 starts with EMPTY_DICT, no PROTO opcode
    assert pickle.loads(frame[4:])["msg"] == "user ann logged in from ::1"


async def test_an_overridden_makepickle_is_what_goes_out() -> None:
    class Stamped(SocketHandler):
        def makePickle(self, record: logging.LogRecord) -> bytes:
            record.origin = "edge-7"
            return super().makePickle(record)

    class StampedDatagrams(DatagramHandler):
        def makePickle(self, record: logging.LogRecord) -> bytes:
            record.origin = "edge-8"
            return super().makePickle(record)

    received = CapturingSink()
    async with LogReceiver(received) as receiver:
        host, port = await receiver.listen_tcp()
        udp_host, udp_port = await receiver.listen_udp()
        async with loopsink.install(
            Stamped(host, port), StampedDatagrams(udp_host, udp_port), logger="stamped"
        ):
            logging.getLogger("stamped").warning("hello")
        with anyio.fail_after(10):
            await receiver.wait_received(2)
    assert sorted(r.__dict__["origin"] for r in received.records) == ["edge-7", "edge-8"]


async def test_tls_to_a_peer_that_does_not_speak_tls_fails_the_batch_with_the_fix(
    tls: TLS, capsys: pytest.CaptureFixture[str]
) -> None:
    async def not_tls(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, not_tls)
        handler = SocketHandler("127.0.0.1", port, ssl_context=tls.client)
        async with handler:
            with anyio.fail_after(10):
                await handler.handle(make_record("never sent"))
        tg.cancel_scope.cancel()
    assert handler.error_count == 1
    err = capsys.readouterr().err
    assert "the TLS handshake with 127.0.0.1:" in err
    assert "check that the peer speaks TLS on that port" in err


# -- #19, item 10: a receiver that resets the connection with records unread -------------------


def _read_frames(conn: socket.socket, count: int, deadline: float) -> list[str]:
    """Read ``count`` stdlib frames from ``conn`` (blocking, with a deadline); their messages."""
    conn.settimeout(deadline)
    data = b""
    messages: list[str] = []
    while len(messages) < count:
        try:
            chunk = conn.recv(65_536)
        except TimeoutError:  # fewer frames came: the caller's assertion says which
            break
        if not chunk:
            break
        data += chunk
        while len(data) >= 4 and len(data) >= 4 + struct.unpack(">L", data[:4])[0]:
            size = struct.unpack(">L", data[:4])[0]
            messages.append(pickle.loads(data[4 : 4 + size])["msg"])
            data = data[4 + size :]
    return messages


async def test_records_a_resetting_receiver_never_read_are_sent_again_and_counted() -> None:
    """A receiver killed with records unread resets the connection: once those were lost
    without a trace (errors=0). Now they are sent again on the next connection (at least
    once) and counted in ``resent``."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    sink = SocketHandler("127.0.0.1", port)
    sink.retryStart = sink.retryMax = 0.01
    with listener:
        await sink.emit_batch([make_record(f"unread {i}") for i in range(5)])
        conn, _ = await anyio.to_thread.run_sync(listener.accept)
        # the records sit unread in the receiver's buffer; it dies: a close with unread
        # data is a reset
        await anyio.to_thread.run_sync(select.select, [conn], [], [], 5.0)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        raw = sink.sock.extra(anyio.abc.SocketAttribute.raw_socket)
        poll = select.poll()
        poll.register(raw.fileno(), select.POLLERR | select.POLLHUP)
        # the reset has reached the sink's kernel (a wait on the socket, not a sleep)
        assert await anyio.to_thread.run_sync(poll.poll, 5000)
        await sink.emit_batch([make_record("after the restart")])
        conn2, _ = await anyio.to_thread.run_sync(listener.accept)
        with conn2:
            messages = await anyio.to_thread.run_sync(_read_frames, conn2, 6, 5.0)
    await sink.close()
    assert messages == [*(f"unread {i}" for i in range(5)), "after the restart"]
    assert sink.resent == 5
    assert sink.error_count == 0


# -- a loop that never idles ---------------------------------------------------------------

#: Each busy step of the application outlasts the sink's longest slice on a quiet loop.
BUSY_STEP = 0.003
#: CPU time makePickle spends per record below, so that the share of the loop the sink
#: needs is known whatever the machine: at BUSY_RATE about a sixth, more than fixed 0.1 ms
#: slices get against BUSY_STEP (about a tenth), less than even turns give (about a third).
PICKLE_COST = 0.00004
BUSY_RATE = 4_000
BUSY_SECONDS = 2.0


class _CostlySocketHandler(SocketHandler):
    def makePickle(self, record: logging.LogRecord) -> bytes:
        spin(PICKLE_COST)
        return super().makePickle(record)


async def test_a_socket_sink_keeps_up_with_a_loop_that_never_idles() -> None:
    """The sink serialised in fixed 0.1 ms slices: against a service whose passes of the
    loop last milliseconds it got a tenth of the loop, fell behind, and the queue dropped
    its records. Its slices now last as long as the other tasks ran (up to a cap)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received = bytearray()

    def read() -> None:
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(1 << 20):
                received.extend(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    logger = logging.getLogger("test.socket.busy")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    sink = _CostlySocketHandler("127.0.0.1", port)
    try:
        # a smaller queue than the default, so that falling behind shows within the run
        async with loopsink.install(sink, logger=logger, capacity=2500) as log_queue:
            sent = await log_beside_a_busy_task(logger, BUSY_RATE, BUSY_SECONDS, BUSY_STEP)
            with anyio.fail_after(30):
                await log_queue.flush()
        reader.join(10)  # the queue closed the sink: the reader sees the end
    finally:
        listener.close()
    assert not reader.is_alive()
    assert log_queue.stats.dropped_total == 0, log_queue.stats
    numbers = []
    at = 0
    while at < len(received):
        (size,) = struct.unpack(">L", received[at : at + 4])
        message = pickle.loads(received[at + 4 : at + 4 + size])[
            "msg"
        ]  # merged, as the stdlib does
        numbers.append(int(message.split()[1]))
        at += 4 + size
    assert numbers == list(range(sent))
