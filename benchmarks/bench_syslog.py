"""SysLogHandler throughput over UDP and TCP, loopsink against the stdlib, same receiver.

The receiver is loopsink's pure-Python ``SyslogReceiver`` in a child process (so it does not
share the event loop or the GIL with the senders); it counts what arrives. The producer
calls ``logger.info`` on the loop thread and yields every 1000 records. The stdlib handler
sends inside the call; loopsink's goes through ``loopsink.install`` (bridge → queue → sink,
one ``sendto`` per record on UDP; on TCP one write per 64 KiB or 20 ms). The clock stops when the
handler is closed (loopsink: ``install`` drained and closed the sink). Over TCP every record
must then arrive; over UDP the count received is reported (the kernel may drop datagrams
when the receiver falls behind, for both handlers alike).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import socket
import subprocess
import sys
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
from _common import Row, Section, loopsink_rate, print_rows, stdlib_rate

import loopsink

FORMAT = "%(name)s: %(levelname)s %(message)s"
YIELD_EVERY = 1000

_CHILD = """
import gc, json, sys
import anyio, anyio.to_thread
from loopsink.receiver._syslog import SyslogReceiver

async def main():
    async with SyslogReceiver(keep=0) as receiver:
        gc.collect()
        gc.freeze()
        print(json.dumps({"udp": receiver.udp_address, "tcp": receiver.tcp_address}), flush=True)
        while True:
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            if not line.strip():
                break
            count, timeout = line.split()
            with anyio.move_on_after(float(timeout)):
                await receiver.wait_count(int(count))
            print(receiver.count, flush=True)

anyio.run(main)
"""


class Receiver:
    """The child process running SyslogReceiver, asked for its count over a pipe."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        addresses = json.loads(self.process.stdout.readline())
        self.udp: tuple[str, int] = (addresses["udp"][0], addresses["udp"][1])
        self.tcp: tuple[str, int] = (addresses["tcp"][0], addresses["tcp"][1])
        self.seen = 0

    def wait_count(self, count: int, timeout: float) -> int:
        """Block until ``count`` messages arrived in all (or ``timeout``); the total so far."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{count} {timeout}\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(10)


async def _stdlib(address: tuple[str, int], socktype: socket.SocketKind, count: int) -> float:
    handler = logging.handlers.SysLogHandler(address, socktype=socktype)
    handler.ident = "bench: "
    handler.setFormatter(logging.Formatter(FORMAT))
    return await stdlib_rate("syslog.stdlib", handler, count, yield_every=YIELD_EVERY)


async def _loopsink(address: tuple[str, int], socktype: socket.SocketKind, count: int) -> float:
    sink = loopsink.SysLogHandler(address, socktype=socktype)
    sink.ident = "bench: "
    sink.setFormatter(logging.Formatter(FORMAT))
    rate, stats = await loopsink_rate("syslog.loopsink", sink, count, yield_every=YIELD_EVERY)
    if stats.dropped_total or sink.error_count:
        raise AssertionError(f"records dropped or failed: {stats}")
    return rate


def run(quick: bool) -> list[Section]:
    count, rounds = (20_000, 1) if quick else (100_000, 3)
    rates: dict[tuple[str, str], list[float]] = {}
    received: dict[tuple[str, str], list[int]] = {}
    receiver = Receiver()

    async def main() -> None:
        for _ in range(rounds):
            for transport, socktype in (("UDP", socket.SOCK_DGRAM), ("TCP", socket.SOCK_STREAM)):
                address = receiver.udp if transport == "UDP" else receiver.tcp
                for name, bench in (("stdlib", _stdlib), ("loopsink", _loopsink)):
                    key = (transport, name)
                    rates.setdefault(key, []).append(await bench(address, socktype, count))
                    target = receiver.seen + count
                    wait = 30.0 if transport == "TCP" else 1.0
                    total: Any = await anyio.to_thread.run_sync(receiver.wait_count, target, wait)
                    received.setdefault(key, []).append(total - receiver.seen)
                    receiver.seen = total
                    if transport == "TCP" and total != target:
                        raise AssertionError(f"{key}: {total - target + count} of {count} arrived")

    try:
        anyio.run(main)
    finally:
        receiver.close()
    sections = []
    for transport in ("UDP", "TCP"):
        std, ours = max(rates[(transport, "stdlib")]), max(rates[(transport, "loopsink")])
        got = {name: min(received[(transport, name)]) for name in ("stdlib", "loopsink")}
        arrival = (
            f" Fewest received of {count:,} in a round: stdlib {got['stdlib']:,}, "
            f"loopsink {got['loopsink']:,} (UDP: the kernel drops what the receiver "
            "cannot keep up with)."
            if transport == "UDP"
            else " Every record arrived, for both."
        )
        sections.append(
            Section(
                f"SysLogHandler over {transport}",
                notes=(
                    f"{count:,} records (`{FORMAT}`, ident `bench: `) logged on the loop "
                    "thread, yielding every 1,000 records, to loopsink's SyslogReceiver in "
                    "another process; timed until the handler is closed (loopsink: `install` "
                    f"drained and closed the sink). Best of {rounds}.{arrival} Ratio: "
                    "records/s against the stdlib SysLogHandler. The target is parity: a send "
                    "to a loopback receiver that keeps up never waits, so the stdlib loses "
                    "nothing by sending inline; what the queue buys is that a slow, stalled "
                    "or restarting daemon never blocks the event loop."
                ),
                rows=[
                    Row(f"stdlib SysLogHandler ({transport})", std, "records/s", 1.0),
                    Row(
                        f"loopsink SysLogHandler ({transport}, install + bridge)",
                        ours,
                        "records/s",
                        ours / std,
                        ">= 0.9x (parity)",
                        ours / std >= 0.9,
                    ),
                ],
            )
        )
    return sections


if __name__ == "__main__":
    print_rows(
        run(quick=bool(os.environ.get("QUICK"))),
        "  {name:50} {value:12,.0f} {unit} {ratio} {target} {met}",
        notes=True,
    )
