"""loopsink.receiver: the stdlib's handlers in, records out; hostile frames rejected.

The stdlib's own SocketHandler and DatagramHandler send to a LogReceiver and, for the same
log call, to a receiver written the stdlib way; the records must be equal attribute by
attribute. Hostile input (a pickle that imports os.system, a 4 GB length, truncated frames,
garbage) is rejected and counted, its connection closed, and other connections carry on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import logging.handlers
import os
import pickle
import select
import socket
import ssl
import struct
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
import trio.lowlevel
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loopsink
from helpers import Ticker, spin, until
from loopsink._compat import current_backend
from loopsink._tuning import RECEIVE_SIZE, TURN
from loopsink.receiver import (
    FrameError,
    LogReceiver,
    RejectReason,
    RestrictedUnpickler,
    StreamDecoder,
    decode_datagram,
    decode_payload,
)
from loopsink.testing import CapturingSink
from servers.socket_receivers import StdlibReceiver


@pytest.fixture
def short_path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ls-") as name:
        yield Path(name)


def frame_of(obj: object, protocol: int = 1) -> bytes:
    payload = pickle.dumps(obj, protocol)
    return struct.pack(">L", len(payload)) + payload


def good_frame(msg: str = "fine", **extra: object) -> bytes:
    record = logging.LogRecord("app", logging.INFO, __file__, 1, msg, None, None)
    record.__dict__.update(extra)
    return logging.handlers.SocketHandler("h", 1).makePickle(record)


class RunsShell:
    """What an attacker pickles: unpickling it would call os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.marker}",))


async def assert_closed_by_peer(stream: anyio.abc.ByteStream) -> None:
    with anyio.fail_after(5):
        with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await stream.receive()


def close_all(handlers: list[logging.Handler], receiver: StdlibReceiver) -> None:
    for handler in handlers:
        handler.close()
    receiver.close()


# -- compatibility: the stdlib's handlers to loopsink's receiver ------------------------------


@pytest.mark.parametrize("kind", ["tcp", "unix", "udp", "unix_dgram"])
async def test_stdlib_handlers_to_loopsink_receiver_equal_a_stdlib_receiver(
    kind: str, short_path: Path
) -> None:
    ours = CapturingSink()
    reference = StdlibReceiver(kind, str(short_path / "ref.sock"))
    logger = logging.getLogger(f"compat.{kind}")
    logger.setLevel(logging.DEBUG)
    stdlib_cls = (
        logging.handlers.SocketHandler
        if kind in ("tcp", "unix")
        else logging.handlers.DatagramHandler
    )
    handlers: list[logging.Handler] = []
    try:
        async with LogReceiver(ours) as receiver:
            if kind == "tcp":
                host, port = await receiver.listen_tcp()
                target: tuple[str, int | None] = (host, port)
            elif kind == "udp":
                host, port = await receiver.listen_udp()
                target = (host, port)
            elif kind == "unix":
                target = (await receiver.listen_unix(short_path / "ours.sock"), None)
            else:
                target = (await receiver.listen_unix_datagram(short_path / "ours.sock"), None)
            ref_target = (
                (reference.host, reference.port)
                if kind in ("tcp", "udp")
                else (reference.address, None)
            )
            handlers = [stdlib_cls(*target), stdlib_cls(*ref_target)]
            for handler in handlers:
                logger.addHandler(handler)

            def log_the_stdlib_way() -> None:  # blocking socket I/O: off the event loop
                logger.info("hello %s", "there", extra={"tenant": "acme", "ids": [1, 2]})
                try:
                    int("k")
                except ValueError:
                    logger.exception("lookup failed")
                logger.warning("stack", stack_info=True)

            await anyio.to_thread.run_sync(log_the_stdlib_way)
            with anyio.fail_after(10):
                await receiver.wait_received(3)
                expected = [await reference.get() for _ in range(3)]
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
        await anyio.to_thread.run_sync(close_all, handlers, reference)
    assert [r.__dict__ for r in ours.records] == [r.__dict__ for r in expected]
    assert ours.records[0].__dict__["tenant"] == "acme"


async def test_stdlib_handler_as_a_target_gets_the_records() -> None:
    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.got: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.got.append(self.format(record))

    collect = Collect()
    collect.setFormatter(logging.Formatter("%(name)s:%(levelname)s:%(message)s"))
    async with LogReceiver(collect) as receiver:
        host, port = await receiver.listen_tcp()
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(good_frame("one") + good_frame("two"))
            with anyio.fail_after(10):
                await receiver.wait_received(2)
    assert collect.got == ["app:INFO:one", "app:INFO:two"]


# -- hostile frames ------------------------------------------------------------------------------


async def test_pickle_importing_os_system_is_refused_and_others_carry_on(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    sink = CapturingSink()
    async with LogReceiver(sink) as receiver:
        host, port = await receiver.listen_tcp()
        async with await anyio.connect_tcp(host, port) as honest:
            await honest.send(good_frame("before"))
            async with await anyio.connect_tcp(host, port) as attacker:
                await attacker.send(frame_of({"msg": "hi", "payload": RunsShell(marker)}, 2))
                await assert_closed_by_peer(attacker)
            await honest.send(good_frame("after"))
            with anyio.fail_after(10):
                stats = await receiver.wait_received(2, rejected=1)
    assert not await anyio.Path(marker).exists()
    assert sink.messages == ["before", "after"]
    assert stats.rejected == {RejectReason.FORBIDDEN: 1}


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_restricted_unpickler_refuses_globals_in_every_protocol(
    protocol: int, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"msg": "x", "p": RunsShell(marker)}, protocol)
    with pytest.raises(FrameError, match=r"global posix\.system is not allowed") as info:
        decode_payload(payload)
    assert info.value.reason == RejectReason.FORBIDDEN
    assert not marker.exists()


def test_plain_values_of_old_protocols_still_load() -> None:
    data = {"msg": "m", "blob": b"\x00\xff", "tags": {"a", "b"}, "pair": (1, 2.5), "none": None}
    for protocol in range(6):
        assert decode_payload(pickle.dumps(data, protocol)) == data


async def test_four_gigabyte_length_prefix_closes_at_once() -> None:
    async with LogReceiver(CapturingSink(), max_frame_size=1 << 20) as receiver:
        host, port = await receiver.listen_tcp()
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(struct.pack(">L", 0xFFFF_FFFF) + b"\x80")
            await assert_closed_by_peer(stream)
        assert receiver.stats.rejected == {RejectReason.OVERSIZED: 1}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (struct.pack(">L", 12) + b"not a pickle", RejectReason.MALFORMED),
        (frame_of(["a", "list"]), RejectReason.INVALID),
        (frame_of({"msg": "x", "levelno": "high"}), RejectReason.INVALID),
        (frame_of({"msg": "%*d", "args": (10**9, 1)}), RejectReason.INVALID),
        (frame_of({"msg": "x", "exc_info": (1, 2, 3)}), RejectReason.INVALID),
        (frame_of({1: "non-str key"}), RejectReason.INVALID),
        (frame_of({"msg": "x", "getMessage": "shadowed"}), RejectReason.INVALID),
        (frame_of({"msg": "x", "__class__": "shadowed"}), RejectReason.INVALID),
        (frame_of({"msg": "x", "created": float("nan")}), RejectReason.INVALID),
        (frame_of({"msg": "x", "msecs": 1e300}), RejectReason.INVALID),
        (struct.pack(">L", 0), RejectReason.MALFORMED),
        (struct.pack(">L", 2) + b"{]", RejectReason.MALFORMED),
    ],
)
async def test_bad_frames_are_counted_by_reason_and_close_the_connection(
    data: bytes, reason: str
) -> None:
    seen: list[tuple[str, str]] = []
    async with LogReceiver(CapturingSink(), on_reject=lambda *args: seen.append(args)) as receiver:
        host, port = await receiver.listen_tcp()
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(data)
            await assert_closed_by_peer(stream)
        assert receiver.stats.rejected == {reason: 1}
        assert receiver.stats.records == 0
    assert [r for r, _ in seen] == [reason]
    assert seen[0][1]  # a detail that says what was wrong


async def test_truncated_frame_at_end_of_stream_is_counted() -> None:
    sink = CapturingSink()
    async with LogReceiver(sink) as receiver:
        host, port = await receiver.listen_tcp()
        async with await anyio.connect_tcp(host, port) as stream:
            frame = good_frame("cut")
            await stream.send(good_frame("whole") + frame[: len(frame) // 2])
        with anyio.fail_after(10):
            stats = await receiver.wait_received(1, rejected=1)
    assert sink.messages == ["whole"]
    assert stats.rejected == {RejectReason.TRUNCATED: 1}


def test_shared_reference_bomb_is_refused() -> None:
    # 40 levels, each holding the previous twice: tiny as a pickle, 2**40 values when walked
    value: list[object] = ["x"]
    for _ in range(40):
        value = [value, value]
    with pytest.raises(FrameError) as info:
        decode_payload(pickle.dumps({"msg": "m", "bomb": value}, 2))
    assert info.value.reason == RejectReason.INVALID


async def test_datagrams_bad_ones_counted_good_ones_delivered(short_path: Path) -> None:
    sink = CapturingSink()
    async with LogReceiver(sink, max_frame_size=1024) as receiver:
        host, port = await receiver.listen_udp()
        path = await receiver.listen_unix_datagram(short_path / "d.sock")
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with udp, unix:
            udp.setblocking(False)
            unix.setblocking(False)
            udp.sendto(b"garbage", (host, port))
            udp.sendto(good_frame("udp ok"), (host, port))
            unix.sendto(frame_of({"msg": "x" * 5000}), path)  # above max_frame_size
            unix.sendto(good_frame("unix ok"), path)
            with anyio.fail_after(10):
                stats = await receiver.wait_received(2, rejected=2)
    assert sorted(sink.messages) == ["udp ok", "unix ok"]
    assert stats.rejected == {RejectReason.MALFORMED: 1, RejectReason.OVERSIZED: 1}


@pytest.fixture(scope="module")
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for 127.0.0.1, and a client context trusting it."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


async def test_tls_listener_counts_a_failed_handshake_and_serves_the_next_client(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_ctx, client_ctx = tls_contexts
    sink = CapturingSink()
    async with LogReceiver(sink) as receiver:
        host, port = await receiver.listen_tcp(ssl_context=server_ctx)
        async with await anyio.connect_tcp(host, port) as plain:
            await plain.send(good_frame("not tls"))
            await assert_closed_by_peer(plain)
        async with await anyio.connect_tcp(
            host, port, ssl_context=client_ctx, tls_standard_compatible=False
        ) as secure:
            await secure.send(good_frame("over tls"))
            with anyio.fail_after(10):
                await receiver.wait_received(1)
    assert sink.messages == ["over tls"]
    assert receiver.stats.rejected == {RejectReason.TLS: 1}


def test_receiver_refuses_bad_arguments() -> None:
    with pytest.raises(
        TypeError,
        match=r"^LogReceiver handlers must be loopsink sinks or logging\.Handler objects, got 42$",
    ):
        LogReceiver(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^max_frame_size must be at least 64 bytes, got 10$"):
        LogReceiver(max_frame_size=10)


async def test_listen_needs_the_running_receiver() -> None:
    with pytest.raises(
        RuntimeError, match=r"^LogReceiver\.listen_tcp\(\) needs the running receiver"
    ):
        await LogReceiver().listen_tcp()


def call_soon(func: Callable[[], object]) -> None:
    """Run ``func`` at the start of the loop's next pass, before any I/O callback of it."""
    if current_backend() == "trio":
        trio.lowlevel.current_trio_token().run_sync_soon(func)
    else:
        asyncio.get_running_loop().call_soon(func)


def wait_until_connected(client: socket.socket) -> None:
    """Spin (no blocking call) until a non-blocking connect on loopback has completed."""
    deadline = time.monotonic() + 5
    while not select.select([], [client], [], 0)[1]:
        assert time.monotonic() < deadline, "the loopback connect did not complete"


async def test_stopping_as_a_connection_arrives_prints_nothing(
    caplog: pytest.LogCaptureFixture, short_path: Path
) -> None:
    """A client that connects in the very pass of the loop that stops the receiver.

    On asyncio, ``loop.sock_accept`` (what anyio's listener uses) queued its accept callback
    before the stop cancelled its future, then ran it anyway: the loop logged an
    InvalidStateError traceback, and ``loopsink listen | head -1`` printed it.
    """
    caplog.set_level(logging.ERROR, logger="asyncio")
    for round_ in range(3):
        clients = [socket.socket(), socket.socket(socket.AF_UNIX)]
        try:
            with anyio.CancelScope() as stop:
                async with LogReceiver(CapturingSink()) as receiver:
                    tcp = await receiver.listen_tcp()
                    unix = await receiver.listen_unix(short_path / f"r{round_}.sock")
                    await anyio.wait_all_tasks_blocked()  # the accept tasks wait for clients
                    for client, address in zip(clients, [tcp, unix], strict=True):
                        client.setblocking(False)
                        client.connect_ex(address)
                        wait_until_connected(client)
                    call_soon(stop.cancel)  # the next pass cancels, then sees the clients
                    await anyio.sleep_forever()
        finally:
            for client in clients:
                client.close()
    assert [r.getMessage() for r in caplog.records] == []


# -- fuzzing ---------------------------------------------------------------------------------------

VALID = [
    *(good_frame(f"fuzz {i}") for i in range(3)),
    good_frame("m", extra=[1, {"a": b"b"}]),
    loopsink.SocketHandler("h", 1, serializer="json").makePickle(
        logging.LogRecord("app", logging.INFO, __file__, 1, "json %s", ("frame",), None)
    ),
]


FORMATTER = logging.Formatter(
    "%(asctime)s.%(msecs)03d %(levelname)s %(name)s %(pathname)s:%(lineno)d %(message)s"
)


def feed_all(chunks: list[bytes], max_frame_size: int = 4096) -> StreamDecoder:
    """Feed the chunks; every record that comes out must format with a common Formatter."""
    decoder = StreamDecoder(max_frame_size=max_frame_size)
    for chunk in chunks:
        for data in decoder.feed(chunk):
            assert isinstance(FORMATTER.format(logging.makeLogRecord(data)), str)
    return decoder


@settings(
    max_examples=300, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(st.binary(max_size=512), max_size=8))
def test_fuzz_random_bytes_never_escape_as_other_errors(chunks: list[bytes]) -> None:
    decoder = feed_all(chunks)
    if decoder.error is not None:
        assert decoder.error.reason in vars(RejectReason).values()
    for chunk in chunks:
        with contextlib.suppress(FrameError):
            decode_datagram(chunk, max_frame_size=4096)


@settings(
    max_examples=400, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(min_value=0, max_value=600), st.integers(0, 255)), max_size=6),
    st.integers(min_value=0, max_value=700),
    st.integers(min_value=1, max_value=64),
)
def test_fuzz_mutated_valid_frames(
    frame: bytes, flips: list[tuple[int, int]], cut: int, step: int
) -> None:
    data = bytearray(frame)
    for position, value in flips:
        if position < len(data):
            data[position] = value
    mutated = bytes(data[: cut or None])
    # split into chunks of ``step`` bytes, as a connection may deliver them
    decoder = feed_all([mutated[i : i + step] for i in range(0, len(mutated), step)] + [frame])
    if not flips and not cut:
        assert decoder.error is None
    with contextlib.suppress(FrameError):
        decode_datagram(mutated, max_frame_size=4096)


def test_unpickler_is_the_restricted_one() -> None:
    import io

    with pytest.raises(pickle.UnpicklingError, match=r"^global builtins\.eval is not allowed"):
        RestrictedUnpickler(io.BytesIO(pickle.dumps(eval))).load()


def test_make_record_equals_make_log_record() -> None:
    from loopsink.receiver._frames import make_record

    record = logging.LogRecord("app", logging.INFO, __file__, 1, "m %s", ("x",), None)
    data = decode_payload(logging.handlers.SocketHandler("h", 1).makePickle(record)[4:])
    fast = make_record(dict(data))
    assert type(fast) is logging.LogRecord
    assert fast.__dict__ == logging.makeLogRecord(dict(data)).__dict__

    class Custom(logging.LogRecord):
        pass

    old = logging.getLogRecordFactory()
    logging.setLogRecordFactory(Custom)
    try:
        assert type(make_record(dict(data))) is Custom  # a custom factory is honoured
    finally:
        logging.setLogRecordFactory(old)
    partial = make_record({"msg": "only a message", "levelno": 20, "levelname": "INFO"})
    assert partial.getMessage() == "only a message"
    assert partial.lineno == 0  # what makeLogRecord fills in


class StuckAfterWriting(loopsink.AsyncHandler):
    """Its output is out (``written`` is set), then its batch never ends."""

    def __init__(self) -> None:
        super().__init__()
        self.written = anyio.Event()

    async def emit_batch(self, records: object) -> None:
        self.written.set()
        await anyio.sleep_forever()


async def test_records_handed_to_a_sink_that_is_cut_off_at_shutdown_are_counted() -> None:
    """The count went up only once every handler returned: ``loopsink listen`` stopped
    by Ctrl-C while a sink's batch was ending reported one record fewer than it printed."""
    sink = StuckAfterWriting()
    async with LogReceiver(sink) as receiver:
        host, port = await receiver.listen_tcp()
        async with await anyio.connect_tcp(host, port) as client:
            await client.send(good_frame("printed"))
            with anyio.fail_after(10):
                await sink.written.wait()
    assert receiver.stats.records == 1


# -- a flood: what one read holds, decoded in steps ----------------------------------------


class CostlySink(loopsink.AsyncHandler):
    """A sink whose every batch costs more than a turn of CPU; notes the ticker's count."""

    def __init__(self, ticker: Ticker) -> None:
        super().__init__()
        self.ticker = ticker
        self.batches: list[tuple[int, int]] = []  # (records, the ticker's count)

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        spin(2 * TURN)
        self.batches.append((len(records), self.ticker.count))


async def test_a_large_read_is_decoded_taking_turns() -> None:
    """What one read takes under a flood is decoded and handed on a step of RECEIVE_SIZE
    bytes at a time, and the loop's other tasks run between steps once a turn is over: a
    read is never one batch that holds the loop for all of it."""
    frame = good_frame()
    count = 4 * RECEIVE_SIZE // len(frame) + 1
    ticker = Ticker()
    sink = CostlySink(ticker)
    receiver = LogReceiver(sink)
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker.run)
        assert await receiver._decode_read(StreamDecoder(), frame * count)
        ticker.stop.set()
    assert sum(records for records, _ in sink.batches) == count
    assert len(sink.batches) >= 4
    # a step completes the frame the one before it began, and those it holds whole
    assert all((records - 1) * len(frame) <= RECEIVE_SIZE for records, _ in sink.batches)
    # Trio runs a pass's runnable tasks in random order: two steps, never three, between
    # two steps of the ticker. (asyncio keeps the order: one.)
    most = 1 if current_backend() == "asyncio" else 2
    assert max(collections.Counter(seen for _, seen in sink.batches).values()) <= most


async def test_the_receiver_hands_on_only_while_no_one_else_holds_the_sink() -> None:
    """A sink that a queue writes to as well: the receiver takes its I/O lock without a
    pass of the loop when it is free, and waits for it when it is not."""
    sink = CapturingSink()
    async with LogReceiver(sink) as receiver:
        host, port = await receiver.listen_tcp()
        lock = sink.io_lock()
        await lock.acquire()
        try:
            async with await anyio.connect_tcp(host, port) as client:
                await client.send(good_frame("waited"))
                await until(lambda: lock.statistics().tasks_waiting == 1)
            assert sink.records == []
        finally:
            lock.release()
        await receiver.wait_received(1)
    assert [record.msg for record in sink.records] == ["waited"]
