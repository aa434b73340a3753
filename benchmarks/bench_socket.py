"""SocketHandler: throughput to a receiver on loopback, and event-loop lag while it is down.

Throughput: the producer calls ``logger.info`` on the loop thread, yielding every 1,000
records, and the clock stops when the receiver (in its own thread) has decoded the last
record. loopsink runs bridge → queue → ``loopsink.SocketHandler`` → ``loopsink.receiver``
(restricted unpickler); the baseline is the stdlib ``SocketHandler`` → a receiver written the
stdlib way (``struct`` + ``pickle.loads`` + ``makeLogRecord``), in the same run.

Lag: a probe task sleeps 1 ms in a loop and records how late it wakes, while the app logs 10
records every millisecond and the receiver is (a) refusing connections, (b) hung (its accept
queue is full, so connection attempts get no answer), then (c) back, with the backlog of
waiting records being sent.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import pickle
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from _common import CALL, LagProbe, LagReport, Row, Section, bench_logger, print_rows, produce

import loopsink
from loopsink.receiver import LogReceiver

YIELD_EVERY = 1000
LAG_MAX_MS, LAG_P99_MS = 1.0, 0.5


# -- receivers -----------------------------------------------------------------------------------


class _Tally:
    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.done = threading.Event()

    def add(self, n: int) -> None:
        self.count += n
        if self.count >= self.target:
            self.done.set()


class _StdlibFrames(socketserver.StreamRequestHandler):
    server: _StdlibServer

    def handle(self) -> None:
        recv = self.connection.recv
        tally = self.server.tally
        while True:
            header = recv(4, socket.MSG_WAITALL)
            if len(header) < 4:
                return
            (size,) = struct.unpack(">L", header)
            payload = recv(size, socket.MSG_WAITALL)
            if len(payload) < size:
                return
            logging.makeLogRecord(pickle.loads(payload))
            tally.add(1)


class _StdlibServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tally: _Tally) -> None:
        self.tally = tally
        super().__init__(("127.0.0.1", 0), _StdlibFrames)


class _StuckSink(loopsink.AsyncHandler):
    """A sink whose first batch waits until released: records pile up in its backlog."""

    def __init__(self) -> None:
        super().__init__()
        self.released = anyio.Event()

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        await self.released.wait()


class _CountingSink(loopsink.AsyncHandler):
    def __init__(self, tally: _Tally) -> None:
        super().__init__()
        self.tally = tally

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        self.tally.add(len(records))


# -- throughput ----------------------------------------------------------------------------------


async def _stdlib_rate(count: int) -> float:
    tally = _Tally(count)
    server = _StdlibServer(tally)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    handler = logging.handlers.SocketHandler(str(host), int(port))
    logger = bench_logger("socket.stdlib")
    logger.addHandler(handler)
    try:
        start = time.perf_counter()
        await produce(logger, count, yield_every=YIELD_EVERY)
        if not await anyio.to_thread.run_sync(tally.done.wait, 60.0):
            raise AssertionError(f"stdlib receiver got {tally.count} of {count} records")
        elapsed = time.perf_counter() - start
    finally:
        logger.removeHandler(handler)
        handler.close()
        server.shutdown()
        server.server_close()
    return count / elapsed


async def _loopsink_rate(count: int) -> float:
    tally = _Tally(count)
    with anyio.from_thread.start_blocking_portal() as portal:
        receiver = LogReceiver(_CountingSink(tally))
        with portal.wrap_async_context_manager(receiver):
            host, port = portal.call(receiver.listen_tcp)
            logger = bench_logger("socket.loopsink")
            start = time.perf_counter()
            async with loopsink.install(
                loopsink.SocketHandler(host, port), logger=logger, capacity=count
            ) as log_queue:
                await produce(logger, count, yield_every=YIELD_EVERY)
                if not await anyio.to_thread.run_sync(tally.done.wait, 60.0):
                    raise AssertionError(f"loopsink receiver got {tally.count} of {count}")
                elapsed = time.perf_counter() - start
            if log_queue.stats.dropped_total or receiver.stats.rejected_total:
                raise AssertionError(f"lost records: {log_queue.stats} {receiver.stats}")
    return count / elapsed


# -- lag -----------------------------------------------------------------------------------------


async def _lag_while(logger: logging.Logger, seconds: float, per_ms: int = 10) -> LagReport:
    """Log ``per_ms`` records every millisecond for ``seconds`` while the probe runs."""
    probe = LagProbe(0.001)
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        info = logger.info
        end = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < end:
            for _ in range(per_ms):
                info(CALL, i, 0.5)
                i += 1
            await anyio.sleep(0.001)
        probe.stop()
    return probe.report()


def _refusing_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


class _HungPeer:
    """A listener that never accepts, its queue full: new connection attempts get no answer."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = int(self.listener.getsockname()[1])
        self.fillers: list[socket.socket] = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(filler)

    def close(self) -> None:
        for sock in [*self.fillers, self.listener]:
            sock.close()


class _CliReceiver:
    """``python -m loopsink listen`` in a subprocess: a log server in another process, as in
    production, so its work does not share the app's GIL. It prints into a file, counted
    only once the measurement is over: a thread of this process reading its output as it
    came took the GIL from the loop whenever the loop let go of it in a system call, and
    the loop then waited up to the interpreter's switch interval to get it back.
    """

    def __init__(self, port: int) -> None:
        self._folder = tempfile.TemporaryDirectory()
        self._path = Path(self._folder.name) / "printed.log"
        with self._path.open("ab") as output:  # appends: this side only ever reads it
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "loopsink", "listen", "--tcp", f"127.0.0.1:{port}"],
                stdout=output,
                stderr=subprocess.PIPE,
                text=True,
            )

    def wait_ready(self) -> None:
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        if "listening on" not in line:
            raise AssertionError(f"the listener did not start: {line!r}")

    def lines(self) -> int:
        with self._path.open("rb") as printed:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: printed.read(1 << 20), b""))

    def wait_lines(self, count: int, timeout: float = 30.0) -> int:
        """Poll the printed lines (after the measurement) until ``count`` or the deadline."""
        deadline = time.monotonic() + timeout
        printed = self.lines()
        while printed < count and time.monotonic() < deadline:
            time.sleep(0.05)
            printed = self.lines()
        return printed

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self._folder.cleanup()


async def _lag_sections(seconds: float) -> tuple[dict[str, LagReport], dict[str, str]]:
    reports: dict[str, LagReport] = {}
    notes: dict[str, str] = {}

    # the floor: the same load with a sink that does nothing
    logger = bench_logger("socket.lag.floor")
    async with loopsink.install(loopsink.NullHandler(), logger=logger):
        reports["floor"] = await _lag_while(logger, seconds)
    # ... and with a sink that never returns, so that 10,000 records pile up as they do while
    # a receiver is down: the interpreter's garbage collector then has more to walk
    logger = bench_logger("socket.lag.stuck")
    stuck = _StuckSink()
    async with loopsink.install(stuck, logger=logger, capacity=10_000):
        reports["stuck"] = await _lag_while(logger, seconds)
        stuck.released.set()

    # stdlib, peer hung: every connection attempt blocks the loop for its 1 s timeout
    hung = _HungPeer()
    try:
        handler = logging.handlers.SocketHandler("127.0.0.1", hung.port)
        logger = bench_logger("socket.lag.stdlib")
        logger.addHandler(handler)
        reports["stdlib hung"] = await _lag_while(logger, max(seconds, 1.2), per_ms=1)
        logger.removeHandler(handler)
        handler.close()
    finally:
        hung.close()

    # loopsink: refused, then hung, then back; retries every 50-250 ms to stress reconnecting
    port = _refusing_port()
    sink = loopsink.SocketHandler("127.0.0.1", port)
    sink.retryStart, sink.retryMax = 0.05, 0.25
    logger = bench_logger("socket.lag.loopsink")
    async with loopsink.install(sink, logger=logger, capacity=10_000) as log_queue:
        reports["refused"] = await _lag_while(logger, seconds)
        notes["refused"] = f"{sink.connect_failures} connection attempts refused"
        hung = _HungPeer()
        try:
            sink.port, sink.address = hung.port, ("127.0.0.1", hung.port)
            reports["hung"] = await _lag_while(logger, seconds)
        finally:
            hung.close()
        pending = log_queue.stats.sinks[0].pending
        cli = _CliReceiver(port)
        await anyio.to_thread.run_sync(cli.wait_ready)
        sink.port, sink.address = port, ("127.0.0.1", port)
        reports["back"] = await _lag_while(logger, seconds)
        with anyio.fail_after(30):
            await log_queue.flush()
    sent = log_queue.stats.sinks[0].emitted
    printed = await anyio.to_thread.run_sync(cli.wait_lines, sent)
    await anyio.to_thread.run_sync(cli.stop)
    if printed != sent:
        raise AssertionError(f"the listener printed {printed} records of the {sent} sent")
    notes["back"] = (
        f"{pending:,} records waiting when it came back; all {sent:,} records sent were "
        "printed by the listener"
    )
    notes["dropped"] = f"{log_queue.stats.dropped_total:,}"
    return reports, notes


def run(quick: bool) -> list[Section]:
    count, rounds, seconds = (20_000, 1, 0.5) if quick else (100_000, 3, 1.5)
    rates: dict[str, list[float]] = {"stdlib": [], "loopsink": []}
    lag: dict[str, LagReport] = {}
    notes: dict[str, str] = {}

    async def main() -> None:
        for _ in range(rounds):
            rates["stdlib"].append(await _stdlib_rate(count))
            rates["loopsink"].append(await _loopsink_rate(count))
        lag_reports, lag_notes = await _lag_sections(seconds)
        lag.update(lag_reports)
        notes.update(lag_notes)

    anyio.run(main)
    std, ours = max(rates["stdlib"]), max(rates["loopsink"])
    throughput = Section(
        "SocketHandler to a receiver on loopback",
        notes=(
            f"{count:,} records logged on the loop thread (yielding every 1,000) until the "
            "receiver, in its own thread, has decoded the last one. loopsink: bridge → queue → "
            "SocketHandler (frames held up to 20 ms or 64 KiB, then one write) → "
            "`loopsink.receiver` (restricted unpickler); "
            "stdlib: SocketHandler → `struct` + `pickle.loads` + `makeLogRecord`. "
            f"Best of {rounds}."
        ),
        rows=[
            Row("stdlib SocketHandler → stdlib-style receiver", std, "records/s", 1.0),
            Row(
                "loopsink SocketHandler → loopsink receiver",
                ours,
                "records/s",
                ours / std,
                ">= 1x",
                ours / std >= 1.0,
            ),
        ],
    )
    floor = lag["floor"]
    rows = [
        Row("floor: same load, NullHandler sink: max", floor.max_ms, "ms"),
        Row("floor: same load, NullHandler sink: p99", floor.p99_ms, "ms"),
        Row("floor: same load, a sink that never returns: max", lag["stuck"].max_ms, "ms"),
        Row("floor: same load, a sink that never returns: p99", lag["stuck"].p99_ms, "ms"),
    ]
    for key, label in (
        ("refused", "receiver down (connection refused)"),
        ("hung", "receiver hung (connection attempts unanswered)"),
        ("back", "receiver back, backlog being sent"),
    ):
        report = lag[key]
        rows.append(
            Row(
                f"loopsink, {label}: max",
                report.max_ms,
                "ms",
                None,
                f"<= {LAG_MAX_MS:g} ms",
                report.max_ms <= LAG_MAX_MS,
            )
        )
        rows.append(
            Row(
                f"loopsink, {label}: p99",
                report.p99_ms,
                "ms",
                None,
                f"<= {LAG_P99_MS:g} ms",
                report.p99_ms <= LAG_P99_MS,
            )
        )
    rows.append(Row("stdlib SocketHandler, receiver hung: max", lag["stdlib hung"].max_ms, "ms"))
    lag_section = Section(
        "SocketHandler: event-loop lag while the receiver is down",
        notes=(
            f"A task sleeping 1 ms measures how late it wakes, for {seconds:g} s per phase, "
            "while the app logs 10 records per millisecond on the loop thread. The floors are "
            "the same load with a sink that does nothing (what the machine itself adds) and "
            "with a sink that never returns (what 10,000 records piling up add, whatever the "
            "sink: mostly the garbage collector walking them, about 1 ms per generation-1 "
            "collection on the reference machine). "
            "The sink retries every 50-250 ms. "
            f"Refused: {notes['refused']}. Hung: a listener whose accept queue is full. Back: "
            "`python -m loopsink listen` in a subprocess; "
            f"{notes['back']}. Records dropped over the run (queue capacity 10,000): "
            f"{notes['dropped']}. For comparison the stdlib SocketHandler against the hung "
            "receiver, 1 record/ms: each connection attempt blocks the loop for its 1 s timeout."
        ),
        rows=rows,
    )
    return [throughput, lag_section]


if __name__ == "__main__":
    print_rows(
        run(quick=bool(os.environ.get("QUICK"))),
        "  {name:62} {value:12,.3f} {unit} {ratio} {target} {met}",
    )
