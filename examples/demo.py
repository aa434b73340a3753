"""`make demo`: a small app logs through every loopsink sink into local receivers.

The demo starts its own receivers on loopback, in a child process so that their work does
not count against the app's event loop, and at a lower priority (``NICE``), as servers on
other machines would be: on a machine of two cores they otherwise preempt the loop's
thread many times a second. A TCP and a UDP receiver for the socket sinks
(``loopsink.receiver.LogReceiver``), a syslog receiver on UDP and TCP, an SMTP server
(aiosmtpd) and an HTTP collector (aiohttp). After a warm-up of 100 records (every sink
connects and imports what it needs), the app logs 10,000 INFO records and 10 ERROR records
at a steady pace through one bridge into every sink, while a probe measures the event
loop's lag, and prints one row per sink: records sent, received, dropped,
errors, throughput. It exits with status 1 if any record was lost, so it doubles as an
end-to-end check.

Run it with ``make demo`` (or ``python examples/demo.py``; ``--records N`` for more).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import glob
import io
import json
import logging
import logging.handlers
import os
import queue as queue_module
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
from aiohttp import web
from aiosmtpd.controller import Controller

import loopsink
from loopsink.receiver import LogReceiver, SyslogReceiver

ERRORS = 10
#: Records logged before the measured run: every sink opens its connection and imports what
#: it needs on first use, and that start-up is not the steady lag the demo reports.
WARMUP = 100
#: How much lower the receivers' process runs than the app (``os.nice``; not on Windows).
NICE = 10


class Counter(logging.Handler):
    """A stdlib handler that only counts what it gets (thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class Mailbox:
    """An aiosmtpd handler that counts the mails it accepts."""

    def __init__(self) -> None:
        self.mails = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails += 1
        return "250 OK"


@dataclass
class Receivers:
    tcp: LogReceiver
    udp: LogReceiver
    tcp_counter: Counter
    udp_counter: Counter
    syslog_udp: SyslogReceiver
    syslog_tcp: SyslogReceiver
    http_lines: list[int]
    http_address: tuple[str, int]
    mailbox: Mailbox = field(default_factory=Mailbox)
    smtp_port: int = 0

    def addresses(self) -> dict[str, Any]:
        return {
            "tcp": self.tcp.addresses[0],
            "udp": self.udp.addresses[0],
            "syslog_udp": self.syslog_udp.udp_address,
            "syslog_tcp": self.syslog_tcp.tcp_address,
            "http": self.http_address,
            "smtp": ["127.0.0.1", self.smtp_port],
        }

    def counts(self) -> dict[str, int]:
        return {
            "tcp": self.tcp_counter.count,
            "udp": self.udp_counter.count,
            "syslog_udp": self.syslog_udp.count,
            "syslog_tcp": self.syslog_tcp.count,
            "http": self.http_lines[0],
            "smtp": self.mailbox.mails,
        }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def receivers() -> AsyncIterator[Receivers]:
    """Every receiver the sinks talk to, on loopback."""
    tcp_counter, udp_counter = Counter(), Counter()
    http_lines = [0]

    async def collect(request: web.Request) -> web.Response:
        body = await request.read()
        http_lines[0] += sum(1 for line in body.splitlines() if line.strip())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/logs", collect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    http_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    async with (
        LogReceiver(tcp_counter) as tcp,
        LogReceiver(udp_counter) as udp,
        SyslogReceiver(udp_port=0, tcp_port=None, keep=0) as syslog_udp,
        SyslogReceiver(udp_port=None, tcp_port=0, keep=0) as syslog_tcp,
    ):
        await tcp.listen_tcp("127.0.0.1", 0)
        await udp.listen_udp("127.0.0.1", 0)
        mailbox = Mailbox()
        smtp_port = free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
        await anyio.to_thread.run_sync(controller.start)
        try:
            yield Receivers(
                tcp,
                udp,
                tcp_counter,
                udp_counter,
                syslog_udp,
                syslog_tcp,
                http_lines,
                ("127.0.0.1", http_port),
                mailbox,
                smtp_port,
            )
        finally:
            await anyio.to_thread.run_sync(controller.stop)
            await runner.cleanup()


async def serve_receivers() -> None:
    """The child process: print the addresses, then answer 'wait N E' and 'quit' on stdin."""
    async with receivers() as rx:
        # The start-up's objects (imports, servers) never go away: frozen, the collector
        # stops walking them, and no full collection stalls the UDP receivers mid-run
        # (their datagrams would be dropped by the kernel meanwhile).
        gc.collect()
        gc.freeze()
        print(json.dumps(rx.addresses()), flush=True)
        while True:
            command = (await anyio.to_thread.run_sync(sys.stdin.readline)).split()
            if not command or command[0] == "quit":
                return
            if command[0] == "wait":  # wait until everything sent has arrived, at most 10 s
                total, errors = int(command[1]), int(command[2])
                with anyio.move_on_after(10):
                    while True:
                        counts = rx.counts()
                        expected = {k: errors if k == "smtp" else total for k in counts}
                        if all(counts[k] >= expected[k] for k in counts):
                            break
                        await anyio.sleep(0.01)
            print(json.dumps(rx.counts()), flush=True)


class ReceiverProcess:
    """The parent's handle on the receivers' child process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--receivers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the receivers' process did not start; see its error above")
        self.addresses: dict[str, Any] = json.loads(line)

    def ask(self, command: str) -> dict[str, int]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class Row:
    sink: str
    sent: int
    received: Callable[[dict[str, int]], int]  # from the receivers' final counts
    note: str = ""
    index: int = -1  # position among the queue's sinks
    done_at: float | None = None


def line_count(pattern: str) -> int:
    total = 0
    for path in glob.glob(pattern):
        with open(path, encoding="utf-8") as file:
            total += sum(1 for _ in file)
    return total


def progress(label: str, done: int, total: int) -> None:
    """A progress bar on a terminal; a line per quarter otherwise (CI logs)."""
    width = 30
    filled = width * done // max(total, 1)
    bar = "#" * filled + "-" * (width - filled)
    text = f"  {label:<8} [{bar}] {done:>7,}/{total:,}"
    if sys.stderr.isatty():
        sys.stderr.write("\r" + text + ("\n" if done >= total else ""))
    elif done * 4 // max(total, 1) != (done - 500) * 4 // max(total, 1) or done >= total:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()


async def run_app(rx: ReceiverProcess, records: int) -> int:
    workdir = tempfile.mkdtemp(prefix="loopsink-demo-")

    def path(name: str) -> str:
        return os.path.join(workdir, name)

    stream = io.StringIO()
    memory_target = loopsink.FileHandler(path("memory.log"))
    listener_counter = Counter()
    stdlib_queue: queue_module.Queue[logging.LogRecord] = queue_module.Queue()
    listener = loopsink.QueueListener(stdlib_queue, listener_counter)
    at = rx.addresses
    smtp = loopsink.SMTPHandler(
        tuple(at["smtp"]), "demo@localhost", ["ops@localhost"], "loopsink demo error"
    )
    smtp.setLevel(logging.ERROR)
    sinks: dict[str, loopsink.AsyncHandler] = {
        "StreamHandler": loopsink.StreamHandler(stream),
        "FileHandler": loopsink.FileHandler(path("file.log")),
        "WatchedFileHandler": loopsink.WatchedFileHandler(path("watched.log")),
        "RotatingFileHandler": loopsink.RotatingFileHandler(
            path("rotating.log"), maxBytes=100_000, backupCount=1000
        ),
        "TimedRotatingFileHandler": loopsink.TimedRotatingFileHandler(
            path("timed.log"), when="S", backupCount=1000
        ),
        "SocketHandler": loopsink.SocketHandler(*at["tcp"]),
        "DatagramHandler": loopsink.DatagramHandler(*at["udp"]),
        "SysLogHandler (UDP)": loopsink.SysLogHandler(tuple(at["syslog_udp"])),
        "SysLogHandler (TCP)": loopsink.SysLogHandler(
            tuple(at["syslog_tcp"]), socktype=socket.SOCK_STREAM
        ),
        "HTTPHandler (NDJSON)": loopsink.HTTPHandler(
            "{}:{}".format(*at["http"]),
            "/logs",
            "POST",
            body="ndjson",
            batch_size=500,
        ),
        "SMTPHandler": smtp,
        "MemoryHandler": loopsink.MemoryHandler(200, target=memory_target),
        "QueueHandler": loopsink.QueueHandler(stdlib_queue),
        "NullHandler": loopsink.NullHandler(),
    }
    total = WARMUP + records + ERRORS
    rows = [
        Row("StreamHandler", total, lambda c: len(stream.getvalue().splitlines())),
        Row("FileHandler", total, lambda c: line_count(path("file.log"))),
        Row("WatchedFileHandler", total, lambda c: line_count(path("watched.log"))),
        Row(
            "RotatingFileHandler",
            total,
            lambda c: line_count(path("rotating.log*")),
            "rotated every 100 kB",
        ),
        Row(
            "TimedRotatingFileHandler",
            total,
            lambda c: line_count(path("timed.log*")),
            "rotated every second",
        ),
        Row("SocketHandler", total, lambda c: c["tcp"], "TCP, pickled frames"),
        Row("DatagramHandler", total, lambda c: c["udp"], "UDP, one pickle each"),
        Row("SysLogHandler (UDP)", total, lambda c: c["syslog_udp"]),
        Row("SysLogHandler (TCP)", total, lambda c: c["syslog_tcp"], "LF framing"),
        Row("HTTPHandler (NDJSON)", total, lambda c: c["http"], "batches of 500"),
        Row("SMTPHandler", ERRORS, lambda c: c["smtp"], "ERROR only: one mail each"),
        Row("MemoryHandler", total, lambda c: line_count(path("memory.log")), "-> FileHandler"),
        Row("QueueHandler", total, lambda c: listener_counter.count, "-> QueueListener"),
        Row("NullHandler", total, lambda c: -1, "discards by design"),
    ]
    for i, row in enumerate(rows):
        row.index = i
    try:
        loopsink.NTEventLogHandler("loopsink demo")
        nt_note = "available"
    except loopsink.LoopsinkError as exc:
        nt_note = "skipped: " + str(exc).split(",")[0]

    logger = logging.getLogger("demo")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    lags: list[float] = []
    stop_probe = anyio.Event()

    async def probe() -> None:
        while not stop_probe.is_set():
            start = time.perf_counter()
            await anyio.sleep(0.001)
            lags.append(time.perf_counter() - start - 0.001)

    error_every = max(records // ERRORS, 1)
    await listener.start()
    async with loopsink.install(*sinks.values(), logger=logger) as log_queue:
        for i in range(WARMUP):
            logger.info("warm-up %d", i)
        await log_queue.flush()
        gc.collect()  # the start-up's garbage, not the steady state's
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(probe)
            sent = 0
            while sent < records:  # 10 records per millisecond: a busy service
                for _ in range(10):
                    logger.info("request %d handled in %.3f ms", sent, 1.25)
                    sent += 1
                    if sent % error_every == 0:
                        logger.error("request %d failed: upstream timeout", sent)
                if sent % 500 == 0:
                    progress("logging", sent, records)
                await anyio.sleep(0.001)
            drained = False
            while not drained:  # watch each sink finish, for its throughput
                now = time.perf_counter()
                stats = log_queue.stats.sinks
                for row in rows:
                    done = stats[row.index].emitted + stats[row.index].errors
                    if row.done_at is None and done >= row.sent:
                        row.done_at = now
                drained = all(row.done_at is not None for row in rows)
                if not drained:
                    await anyio.sleep(0.02)
                    if now - started > 60:
                        break
            stop_probe.set()
    await listener.stop()
    await memory_target.close()
    final = log_queue.stats

    counts = await anyio.to_thread.run_sync(rx.ask, f"wait {total} {ERRORS}")

    lost = False
    header = (
        f"{'sink':<26}{'sent':>8}{'received':>10}{'dropped':>9}{'errors':>8}{'records/s':>12}  note"
    )
    print()
    print(header)
    print("-" * (len(header) + 20))
    for row in rows:
        s = final.sinks[row.index]
        received = row.received(counts)
        dropped = sum(s.dropped.values())
        elapsed = (row.done_at or time.perf_counter()) - started
        rate = row.sent / elapsed if elapsed > 0 else 0.0
        shown = "n/a" if received < 0 else f"{received:,}"
        ok = (received < 0 or received == row.sent) and dropped == 0 and s.errors == 0
        lost |= not ok
        mark = "" if ok else "  <-- LOST RECORDS"
        print(
            f"{row.sink:<26}{row.sent:>8,}{shown:>10}{dropped:>9,}{s.errors:>8,}{rate:>12,.0f}"
            f"  {row.note}{mark}"
        )
    print(f"{'NTEventLogHandler':<26}{'-':>8}{'-':>10}{'-':>9}{'-':>8}{'-':>12}  {nt_note}")
    lags.sort()
    worst = lags[-1] * 1e3 if lags else 0.0
    p99 = lags[int(len(lags) * 0.99)] * 1e3 if lags else 0.0
    print(
        f"\nevent loop lag while logging: worst {worst:.2f} ms, p99 {p99:.2f} ms "
        f"({len(lags):,} samples)"
    )
    print(
        "records/s: the rate at which each sink had everything, from the first record of the "
        "run;\nthe app paces itself (10 records, then a 1 ms sleep), so this is the pace it "
        "kept, not a sink's ceiling (see `make bench`)."
    )
    print(f"files written under {workdir}")
    if lost:
        print("FAILED: some records did not arrive", file=sys.stderr)
        return 1
    print("every record arrived at every sink")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000, help="INFO records to log")
    parser.add_argument("--receivers", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receivers:
        if hasattr(os, "nice"):
            os.nice(NICE)
        anyio.run(serve_receivers)
        return 0
    if args.records < ERRORS:
        parser.error(f"--records must be at least {ERRORS}")
    print(f"loopsink {loopsink.__version__} demo: starting receivers on 127.0.0.1")
    rx = ReceiverProcess()
    try:
        print("  " + ", ".join(f"{k} {v[0]}:{v[1]}" for k, v in rx.addresses.items()))
        return anyio.run(run_app, rx, args.records)
    finally:
        rx.close()


if __name__ == "__main__":
    sys.exit(main())
