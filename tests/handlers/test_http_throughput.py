"""HTTPHandler keeps up with a busy service: 10,000 records/s, every one delivered once.

The application is what a service under load looks like to the event loop: handler tasks
that run for a while between two awaits, and log lines paced by the loop's clock at
10,000 records/s. The collector is a real HTTP server on loopback (aiohttp, tests/servers/
http.py) in a process of its own, as a collector that can take the load is: it appends
every body to a file, and the test reads every line back.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

import loopsink
from helpers import log_beside_a_busy_task, spin

pytestmark = pytest.mark.anyio

RATE = 10_000  # records per second
SECONDS = 2.0
#: Handler tasks that each keep the loop this long between two awaits, as a service under
#: load does: the loop is never idle, and each pass of it takes this long at least.
BUSY_TASKS = 1
BUSY_STEP = 0.00025


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The test HTTP server in a subprocess: its address, and the file its bodies go to."""
    bodies = tmp_path / "bodies.ndjson"
    tests = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "servers.http", "--bodies", str(bodies)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(tests)),
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        port = process.stdout.readline().strip()
        assert port.isdigit(), f"the collector did not start: {port!r}"
        yield f"127.0.0.1:{port}", bodies
    finally:
        process.stdin.close()  # it serves until its stdin closes
        process.wait(10)
        process.stdout.close()


async def _busy(stop: anyio.Event) -> None:
    while not stop.is_set():
        spin(BUSY_STEP)
        await anyio.lowlevel.checkpoint()


async def _log_at_rate(logger: logging.Logger) -> int:
    """Log RATE records a second for SECONDS, paced by the loop; return how many."""
    sent = 0
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= SECONDS:
            return sent
        due = int(elapsed * RATE)
        while sent < due:
            logger.info("request %d done", sent)
            sent += 1
        await anyio.sleep(0.001)


async def test_ndjson_sink_delivers_10k_records_a_second_from_a_busy_app_exactly_once(
    collector: tuple[str, Path],
) -> None:
    host, bodies = collector
    logger = logging.getLogger("test.http.throughput")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    sink = loopsink.HTTPHandler(host, "/bulk", "POST", body="ndjson")
    async with loopsink.install(sink, logger=logger) as log_queue:  # default capacity
        # A service that has been running: its sink is connected before the load.
        logger.info("ready")
        with anyio.fail_after(10):
            await log_queue.flush()
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            for _ in range(BUSY_TASKS):
                tg.start_soon(_busy, stop)
            sent = await _log_at_rate(logger)
            stop.set()
        with anyio.fail_after(30):
            await log_queue.flush()
    stats = log_queue.stats
    # every request was answered (flush waits for that) after its body was written
    lines = bodies.read_bytes().splitlines()
    assert sent >= RATE * SECONDS * 0.9
    assert stats.dropped_total == 0, stats
    assert sink.error_count == 0
    assert stats.sinks[0].emitted == sent + 1
    assert json.loads(lines[0])["message"] == "ready"
    numbers = [json.loads(line)["args"][0] for line in lines[1:]]
    assert len(numbers) == sent  # nothing twice
    assert sorted(numbers) == list(range(sent))  # nothing lost
    assert numbers == list(range(sent))  # and in order
    # Batches grew while the sink was behind: far fewer requests than passes of the loop.
    assert sink.request_count < sent / 20


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _WithRequestId(loopsink.HTTPHandler):
    def mapLogRecord(self, record: logging.LogRecord) -> dict[str, object]:
        return {"msg": record.getMessage(), "request": REQUEST_ID.get()}


class _RequestIdBody(loopsink.HTTPBody):
    content_type = "application/x-ndjson"
    framing = ("", "\n", "\n")

    def encode_record(self, handler: loopsink.HTTPHandler, record: logging.LogRecord) -> str:
        return json.dumps({"msg": record.getMessage(), "request": REQUEST_ID.get()})


class _RequestIdFilter(logging.Filter):
    """Lets through only records logged inside a request (it reads the variable)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return REQUEST_ID.get() != "-"


class _RequestIdFormatter(loopsink.JSONFormatter):
    """A JSONFormatter subclass (its output is the line) that reads the variable."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"msg": record.getMessage(), "request": REQUEST_ID.get()})


def _sinks(host: str) -> dict[str, loopsink.HTTPHandler]:
    """Sinks whose per-record code reads REQUEST_ID; none changes the shared records."""
    formatted = loopsink.HTTPHandler(host, "/f", "POST", body="ndjson")
    formatted.setFormatter(_RequestIdFormatter())
    filtered = loopsink.HTTPHandler(host, "/g", "POST", body="ndjson")
    filtered.addFilter(_RequestIdFilter())
    return {
        "subclass": _WithRequestId(host, "/s", "POST", body="ndjson"),
        "body": loopsink.HTTPHandler(host, "/b", "POST", body=_RequestIdBody()),
        "formatter": formatted,
        "filter": filtered,
    }


def test_only_the_plain_sink_skips_the_records_contexts() -> None:
    """The built-in sink with built-in bodies reads no context variable: the queue need not
    carry the records' contexts for it (the cheaper path)."""
    plain = [
        loopsink.HTTPHandler("h", "/", "POST", body="ndjson"),
        loopsink.HTTPHandler("h", "/", "POST", body="json"),
        loopsink.HTTPHandler("h", "/", "POST"),
        loopsink.HTTPHandler.loki("h"),
        loopsink.HTTPHandler.otlp("h", service_name="s"),
        loopsink.HTTPHandler.elasticsearch("h", "i"),
        loopsink.HTTPHandler.vector("h"),
        loopsink.HTTPHandler.fluent_bit("h"),
    ]
    json_formatted = loopsink.HTTPHandler("h", "/", "POST", body="ndjson")
    json_formatted.setFormatter(loopsink.JSONFormatter())
    plain.append(json_formatted)
    assert [sink.needs_context() for sink in plain] == [False] * len(plain)
    assert all(sink.needs_context() for sink in _sinks("h").values())


async def test_what_reads_a_context_variable_still_sees_the_log_calls_context(
    collector: tuple[str, Path],
) -> None:
    host, bodies = collector
    logger = logging.getLogger("test.http.context")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    sinks = _sinks(host)
    plain = loopsink.HTTPHandler(host, "/p", "POST", body="ndjson")
    async with loopsink.install(plain, *sinks.values(), logger=logger) as log_queue:
        for n in range(3):
            token = REQUEST_ID.set(f"r{n}")
            logger.info("call %d", n)
            REQUEST_ID.reset(token)
        with anyio.fail_after(10):
            await log_queue.flush()
    assert log_queue.stats.dropped_total == 0
    objects = [json.loads(line) for line in bodies.read_bytes().splitlines()]
    # three sinks write the variable's value; the plain sink and the filtered one (which
    # lets a record through only if it saw the value) write the record's own dict
    assert len(objects) == 15
    seen = sorted((o["msg"], o["request"]) for o in objects if "request" in o)
    assert seen == sorted([(f"call {n}", f"r{n}") for n in range(3)] * 3)
    plain = sorted(o["message"] for o in objects if "request" not in o)
    assert plain == sorted([f"call {n}" for n in range(3)] * 2)


def test_a_gathered_write_sends_every_piece_in_order_across_partial_sends() -> None:
    """A request's pieces go out in sendmsg calls; a call the socket takes in part (a full
    send buffer) goes on from the byte it stopped at, and more pieces than one call takes
    go out in several."""
    import socket
    import threading

    import h11

    from loopsink.handlers._http_transport import _GATHER, _GATHER_MAX, _Connection, _send_gathered

    if not _GATHER:
        pytest.skip("no sendmsg on this platform: the pieces go out one by one")
    pieces = [bytes([65 + i % 26]) * (1 + (i * 7919) % 5000) for i in range(_GATHER_MAX * 2 + 5)]
    pieces[3] = b""  # an empty piece is skipped, not sent
    expected = b"".join(pieces)
    writer, reader = socket.socketpair()
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    received = bytearray()

    def read() -> None:
        while len(received) < len(expected):
            data = reader.recv(1000)  # slowly, in small reads: the writer's sends stop short
            if not data:
                return
            received.extend(data)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        connection = _Connection(writer, h11.Connection(h11.CLIENT))
        connection.deadline = time.monotonic() + 10
        _send_gathered(connection, pieces)
        thread.join(10)
    finally:
        writer.close()
        reader.close()
    assert bytes(received) == expected


#: A loop whose passes are long: each busy step alone outlasts the longest slice of a sink
#: that keeps up (ENCODE_SLICE_MAX), and a pause of the sink's lets it run twice.
LONG_STEP = 0.003
#: CPU time the body below spends on each record, so that the share of the loop the sink
#: needs is known whatever the machine: at LATE_RATE, with the app's own logging, about a
#: quarter: more than its slices of ENCODE_SLICE_MAX get against LONG_STEP (about a sixth),
#: less than a late sink's slices get (about a third).
ENCODE_COST = 0.00004
LATE_RATE = 5_500
LATE_SECONDS = 3.0


class _CostlyBody(loopsink.HTTPBody):
    """NDJSON lines that take ENCODE_COST of CPU each, as a richer body would."""

    content_type = "application/x-ndjson"
    framing = ("", "\n", "\n")

    def encode_record(self, handler: loopsink.HTTPHandler, record: logging.LogRecord) -> str:
        spin(ENCODE_COST)
        args = record.args
        return json.dumps({"n": args[0] if isinstance(args, tuple) and args else None})


async def test_a_late_sink_takes_longer_turns_on_a_loop_that_never_idles(
    collector: tuple[str, Path],
) -> None:
    """Against a loop whose every pass outlasts its longest slice, the sink got a fixed
    share of the loop: below what the app logged, it fell behind until the queue, full,
    dropped its records (a busy aiohttp service lost a fifth of them at its collector).
    A sink whose records are late now takes longer turns until it has caught up."""
    host, bodies = collector
    logger = logging.getLogger("test.http.late")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    sink = loopsink.HTTPHandler(host, "/bulk", "POST", body=_CostlyBody())
    # a smaller queue than the default, so that falling behind shows within the run
    async with loopsink.install(sink, logger=logger, capacity=2500) as log_queue:
        logger.info("ready %d", -1)
        with anyio.fail_after(10):
            await log_queue.flush()
        sent = await log_beside_a_busy_task(logger, LATE_RATE, LATE_SECONDS, LONG_STEP)
        with anyio.fail_after(60):
            await log_queue.flush()
    stats = log_queue.stats
    assert stats.dropped_total == 0, stats
    assert sink.error_count == 0
    numbers = [json.loads(line)["n"] for line in bodies.read_bytes().splitlines()[1:]]
    assert numbers == list(range(sent))
