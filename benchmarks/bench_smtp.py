"""SMTP: event-loop lag while error mails go out, loopsink's SMTPHandler vs the stdlib's.

An application logs one ERROR every 10 ms; each record becomes one mail to a local aiosmtpd
server (in a process of its own, as a real relay) that takes 20 ms to
accept a mail's data, as a relay that checks content does. The stdlib
``SMTPHandler`` attached to a logger called on the loop holds the loop for the whole SMTP
conversation of every mail; loopsink's sink talks SMTP from its queue worker (aiosmtplib on
asyncio, smtplib in a worker thread on trio). A probe task sleeping 1 ms measures how late
the loop wakes it. Every mail is counted at the server before a figure is accepted.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import subprocess
import sys
import time

import anyio
from _common import LagProbe, LagReport, Row, Section, print_rows

import loopsink

FROM, TO = "bench@example.com", ["ops@example.com"]
PERIOD = 0.010  # one error every 10 ms
ACCEPT_DELAY = 0.020  # the relay's time to accept one mail's data


#: The relay: aiosmtpd in a process of its own (in a thread of this process it would hold the
#: GIL while parsing and so add its own work to the loop lag being measured). It prints its
#: port when ready, and the number of mails accepted so far for each line read on stdin.
_SERVER = """
import asyncio, socket, sys
from aiosmtpd.controller import Controller

class Counter:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(DELAY)
        Counter.count += 1
        return "250 OK"

for _ in range(5):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(Counter(), hostname="127.0.0.1", port=port, server_hostname="localhost")
    try:
        controller.start()
        break
    except Exception:
        continue
print(port, flush=True)
for _ in sys.stdin:
    print(Counter.count, flush=True)
controller.stop()
"""


class _Relay:
    """The SMTP server process: start, ask how many mails it accepted, stop."""

    def __init__(self) -> None:
        code = _SERVER.replace("DELAY", repr(ACCEPT_DELAY))
        self._proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        self.port = int(self._proc.stdout.readline())

    def count(self) -> int:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write("count\n")
        self._proc.stdin.flush()
        return int(self._proc.stdout.readline())

    def stop(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"bench.smtp.{name}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.ERROR)
    return logger


async def _errors_with_probe(logger: logging.Logger, count: int) -> LagProbe:
    """Log ``count`` errors, one per PERIOD, while a probe measures loop lag."""
    probe = LagProbe(0.001)
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        await anyio.sleep(0.01)
        for i in range(count):
            logger.error("payment %d failed: upstream timeout", i)
            await anyio.sleep(PERIOD)
        probe.stop()
    return probe


async def _stdlib(mailhost: tuple[str, int], count: int) -> LagReport:
    handler = logging.handlers.SMTPHandler(mailhost, FROM, TO, "bench")
    probe = await _errors_with_probe(_logger("stdlib", handler), count)
    handler.close()
    return probe.report()


async def _loopsink(mailhost: tuple[str, int], count: int) -> tuple[LagReport, float]:
    sink = loopsink.SMTPHandler(mailhost, FROM, TO, "bench")
    logger = logging.getLogger("bench.smtp.loopsink")
    logger.propagate = False
    logger.setLevel(logging.ERROR)
    async with loopsink.install(sink, logger=logger) as queue:
        probe = await _errors_with_probe(logger, count)
        start = time.perf_counter()
        await queue.flush()
        drain = time.perf_counter() - start
        stats = queue.stats.sinks[0]
    if (stats.emitted, stats.errors) != (count, 0):
        raise AssertionError(f"loopsink SMTPHandler: {stats}")
    return probe.report(), drain


async def _idle(count: int) -> LagReport:
    """The probe with no logging at all: the machine's own noise floor."""
    probe = LagProbe(0.001)
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        await anyio.sleep(count * PERIOD)
        probe.stop()
    return probe.report()


def _check(relay: _Relay, expected: int, what: str) -> None:
    got = relay.count()
    if got != expected:
        raise AssertionError(f"{what}: the server got {got} mails, expected {expected}")


def run(quick: bool) -> list[Section]:
    count = 60 if quick else 200
    relay = _Relay()
    mailhost = ("127.0.0.1", relay.port)
    try:
        idle = anyio.run(_idle, count)
        stdlib = anyio.run(_stdlib, mailhost, count)
        _check(relay, count, "stdlib")
        ours, drain = anyio.run(_loopsink, mailhost, count)
        _check(relay, 2 * count, "loopsink on asyncio")
        trio_lag, trio_drain = anyio.run(_loopsink, mailhost, count, backend="trio")
        _check(relay, 3 * count, "loopsink on trio")
    finally:
        relay.stop()
    section = Section(
        "SMTP: event-loop lag while mails are sent",
        notes=(
            f"{count} ERROR records, one every {PERIOD * 1e3:.0f} ms, each one mail to a local "
            f"aiosmtpd server that takes {ACCEPT_DELAY * 1e3:.0f} ms to accept a mail; a probe "
            "sleeping 1 ms records how late the loop wakes it. Every mail is counted at the "
            "server. Ratio: against the stdlib SMTPHandler called on the loop in the same run. "
            "The idle rows are the probe alone (the machine's noise floor; the lag figures "
            f"include it). Drain after the last record: {drain * 1e3:.1f} ms (asyncio), "
            f"{trio_drain * 1e3:.1f} ms (trio)."
        ),
    )
    section.rows += [
        Row("idle loop (no logging): lag max", idle.max_ms, "ms"),
        Row("idle loop (no logging): lag p99", idle.p99_ms, "ms"),
        Row("stdlib SMTPHandler on the loop: lag max", stdlib.max_ms, "ms", 1.0),
        Row("stdlib SMTPHandler on the loop: lag p99", stdlib.p99_ms, "ms", 1.0),
    ]
    for label, report in (("asyncio, aiosmtplib", ours), ("trio, smtplib in a thread", trio_lag)):
        section.rows += [
            Row(
                f"loopsink SMTPHandler ({label}): lag max",
                report.max_ms,
                "ms",
                report.max_ms / stdlib.max_ms if stdlib.max_ms else None,
                "<= 5 ms",
                report.max_ms <= 5.0,
            ),
            Row(
                f"loopsink SMTPHandler ({label}): lag p99",
                report.p99_ms,
                "ms",
                report.p99_ms / stdlib.p99_ms if stdlib.p99_ms else None,
                "<= 2 ms",
                report.p99_ms <= 2.0,
            ),
        ]
    return [section]


if __name__ == "__main__":
    print_rows(
        run(quick=bool(os.environ.get("QUICK"))),
        "  {name:55} {value:9.3f} {unit:4} {ratio:>7} {target} {met}",
        notes=True,
    )
