"""HTTPHandler figures: records/s and event-loop lag against a server answering in 20 ms.

Four ways to ship the same records from an asyncio service, measured in one run against
the same local server (tests/servers/http.py in a subprocess, so its work does not share
this interpreter's GIL):

- the stdlib ``HTTPHandler`` called on the loop (each record blocks the loop for a request);
- the stdlib ``QueueHandler`` + ``QueueListener`` + ``HTTPHandler`` (the request runs in
  the listener's thread);
- loopsink ``HTTPHandler`` in compat mode: the stdlib's per-record POST, through the queue;
- loopsink ``HTTPHandler(body="ndjson")``: batched requests;
- the same two through ``client=httpx.Client()``, to show what a full client costs (no
  target: a user picks it for proxies, HTTP/2 or auth, and pays its CPU per request).

Records/s counts from the first log call until the last record is answered by the server;
the loop lag is measured by a probe task during that same time.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue as queue_module
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.lowlevel
import httpx
from _common import LagProbe, Row, Section

import loopsink

CALL = "request %d handled in %.3f ms"
DELAY = 0.02
TESTS = Path(__file__).resolve().parent.parent / "tests"


class _Server:
    """The recording test server in a subprocess, answering every request after ``delay``."""

    def __init__(self, delay: float) -> None:
        env = dict(os.environ, PYTHONPATH=str(TESTS))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "servers.http", "--delay", str(delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"the benchmark HTTP server did not start: {line!r}")
        self.host = f"127.0.0.1:{int(line)}"

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _logger(name: str, handler: logging.Handler | None = None) -> logging.Logger:
    logger = logging.getLogger(f"bench.http.{name}")
    logger.handlers[:] = [handler] if handler is not None else []
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


async def _produce(logger: logging.Logger, count: int, every: int) -> None:
    """Log ``count`` records, yielding to the loop every ``every`` records, as a service does."""
    info = logger.info
    for i in range(count):
        info(CALL, i, 1.25)
        if i % every == every - 1:
            await anyio.lowlevel.checkpoint()


async def _measured(body: object) -> tuple[float, float, float]:
    """Run ``body()`` with a lag probe; return (seconds, lag max ms, lag p99 ms)."""
    probe = LagProbe(0.001)
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        await anyio.sleep(0.01)  # the probe is running before the first record
        start = time.perf_counter()
        await body()  # type: ignore[operator]
        elapsed = time.perf_counter() - start
        probe.stop()
    report = probe.report()
    return elapsed, report.max_ms, report.p99_ms


async def _stdlib_direct(host: str, count: int) -> tuple[float, float, float]:
    handler = logging.handlers.HTTPHandler(host, "/log", method="POST")
    logger = _logger("stdlib", handler)

    async def body() -> None:
        await _produce(logger, count, 1)

    elapsed, lag_max, lag_p99 = await _measured(body)
    handler.close()
    return count / elapsed, lag_max, lag_p99


async def _stdlib_listener(host: str, count: int) -> tuple[float, float, float]:
    handler = logging.handlers.HTTPHandler(host, "/log", method="POST")
    records: queue_module.SimpleQueue[logging.LogRecord] = queue_module.SimpleQueue()
    logger = _logger("listener", logging.handlers.QueueHandler(records))
    listener = logging.handlers.QueueListener(records, handler)

    async def body() -> None:
        listener.start()
        await _produce(logger, count, 10)
        await anyio.to_thread.run_sync(listener.stop)  # returns once the queue is drained

    elapsed, lag_max, lag_p99 = await _measured(body)
    handler.close()
    return count / elapsed, lag_max, lag_p99


async def _steady(logger: logging.Logger, seconds: float, per_tick: int) -> int:
    """Log ``per_tick`` records every millisecond for ``seconds``; return how many."""
    sent = 0
    info = logger.info
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(per_tick):
            info(CALL, sent, 1.25)
            sent += 1
        await anyio.sleep(0.001)
    return sent


async def _loopsink(
    sink: loopsink.HTTPHandler, count: int, steady: float = 0.0
) -> tuple[float, float, float]:
    """Records/s (and lag) for a burst of ``count``; with ``steady`` seconds, the lag is
    measured instead while the app logs 10 records per millisecond for that long."""
    logger = _logger(f"loopsink-{sink.body}-{steady}")
    expected = count

    async def body() -> None:
        nonlocal expected
        async with loopsink.install(sink, logger=logger, capacity=max(count, 50_000)) as log_queue:
            if steady:
                expected = await _steady(logger, steady, 10)
            else:
                await _produce(logger, count, 10)
            await log_queue.flush()
        stats = log_queue.stats
        if stats.dropped_total or sink.error_count or stats.sinks[0].emitted != expected:
            raise AssertionError(f"not every record was delivered: {stats}")

    elapsed, lag_max, lag_p99 = await _measured(body)
    return expected / elapsed, lag_max, lag_p99


async def _through_client(
    make: Callable[[httpx.Client], loopsink.HTTPHandler], count: int, steady: float = 0.0
) -> tuple[float, float, float]:
    """As :func:`_loopsink`, with the sink's requests going through a fresh httpx.Client."""
    with httpx.Client() as client:
        return await _loopsink(make(client), count, steady)


async def _noise_floor(seconds: float) -> tuple[float, float, float]:
    """The probe alone, no logging: what the machine itself adds to the lag figures."""

    async def body() -> None:
        await anyio.sleep(seconds)

    _, lag_max, lag_p99 = await _measured(body)
    return 0.0, lag_max, lag_p99


async def _load_floor(seconds: float) -> tuple[float, float, float]:
    """The steady load (10 records/ms) into a stdlib NullHandler: the floor of the steady
    rows, what the application's own logging and the machine add without any sink."""
    logger = _logger(f"null-{seconds}", logging.NullHandler())

    async def body() -> None:
        await _steady(logger, seconds, 10)

    _, lag_max, lag_p99 = await _measured(body)
    return 0.0, lag_max, lag_p99


def _least_disturbed(runs: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """Best rate, lowest lag max and p99 over repeated runs (see ``best_of`` in _common)."""
    return max(r[0] for r in runs), min(r[1] for r in runs), min(r[2] for r in runs)


def run(quick: bool) -> list[Section]:
    per_record = 25 if quick else 50
    batched = 5_000 if quick else 20_000
    steady = 0.5 if quick else 1.0
    repeats = 2 if quick else 5
    server = _Server(DELAY)
    results: dict[str, tuple[float, float, float]] = {}

    async def main() -> None:
        host = server.host
        results["stdlib HTTPHandler on the loop"] = await _stdlib_direct(host, per_record)
        runs: dict[str, list[tuple[float, float, float]]] = {}
        Measure = Callable[[], Awaitable[tuple[float, float, float]]]
        for _ in range(repeats):
            variants: tuple[tuple[str, Measure], ...] = (
                ("probe alone (the machine's noise floor)", lambda: _noise_floor(steady)),
                (
                    "steady 10 records/ms into a stdlib NullHandler (the load's floor)",
                    lambda: _load_floor(steady),
                ),
                (
                    "stdlib QueueHandler + QueueListener + HTTPHandler",
                    lambda: _stdlib_listener(host, per_record),
                ),
                (
                    "loopsink HTTPHandler, per-record POST (compat)",
                    lambda: _loopsink(loopsink.HTTPHandler(host, "/log", "POST"), per_record),
                ),
                (
                    "loopsink HTTPHandler, batched NDJSON",
                    lambda: _loopsink(
                        loopsink.HTTPHandler(host, "/bulk", "POST", body="ndjson"), batched
                    ),
                ),
                (
                    "loopsink HTTPHandler, batched NDJSON, steady 10 records/ms",
                    lambda: _loopsink(
                        loopsink.HTTPHandler(host, "/bulk", "POST", body="ndjson"), 0, steady
                    ),
                ),
                (
                    "loopsink HTTPHandler(client=httpx.Client()), per-record POST",
                    lambda: _through_client(
                        lambda c: loopsink.HTTPHandler(host, "/log", "POST", client=c),
                        per_record,
                    ),
                ),
                (
                    "loopsink HTTPHandler(client=httpx.Client()), batched NDJSON",
                    lambda: _through_client(
                        lambda c: loopsink.HTTPHandler(
                            host, "/bulk", "POST", body="ndjson", client=c
                        ),
                        batched,
                    ),
                ),
                (
                    "loopsink HTTPHandler(client=httpx.Client()), batched NDJSON, steady",
                    lambda: _through_client(
                        lambda c: loopsink.HTTPHandler(
                            host, "/bulk", "POST", body="ndjson", client=c
                        ),
                        0,
                        steady,
                    ),
                ),
            )
            for name, measure in variants:
                runs.setdefault(name, []).append(await measure())
        results.update({name: _least_disturbed(r) for name, r in runs.items()})

    try:
        anyio.run(main)
    finally:
        server.close()

    baseline = results["stdlib HTTPHandler on the loop"][0]
    rate = Section(
        "HTTP: records/s to a server answering in 20 ms",
        notes=(
            f"From the first log call until the server has answered for every record "
            f"({per_record} records per-record, {batched:,} batched in a burst, or what the "
            f"app logs at 10 records/ms for {steady} s); the app yields every 10 records. "
            f"Best of {repeats}. Ratio: against the stdlib HTTPHandler called on the loop."
        ),
    )
    lag = Section(
        "HTTP: event-loop lag while shipping to a 20 ms server",
        notes=(
            "A probe task sleeps 1 ms in a loop during the same runs and records how late it "
            f"wakes; lowest of {repeats} runs. The stdlib handler on the loop blocks it for "
            "every request. The noise floor is the probe alone on this machine, same run; "
            "the load's floor is the steady rows' logging into a stdlib NullHandler. The "
            "client= rows have no target: they show what a full httpx.Client costs."
        ),
    )
    for name, (records_per_s, lag_max, lag_p99) in results.items():
        if records_per_s:
            rate.rows.append(Row(name, records_per_s, "records/s", records_per_s / baseline))
        # client= rows show a full client's price; the targets are the default transport's
        ours = name.startswith("loopsink") and "client=" not in name
        lag.rows.append(
            Row(
                f"{name}: lag max",
                lag_max,
                "ms",
                None,
                "<= 1 ms" if ours else "",
                lag_max <= 1.0 if ours else None,
            )
        )
        lag.rows.append(
            Row(
                f"{name}: lag p99",
                lag_p99,
                "ms",
                None,
                "<= 0.5 ms" if ours else "",
                lag_p99 <= 0.5 if ours else None,
            )
        )
    return [rate, lag]


if __name__ == "__main__":
    for section in run(quick=bool(os.environ.get("QUICK"))):
        print(section.title)
        for r in section.rows:
            ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
            print(f"  {r.name:60} {r.value:12.3f} {r.unit:10} {ratio:>7} {r.target} {r.met}")
