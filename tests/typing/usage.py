"""User-style code that mypy --strict must accept (checked by `make lint`, not run by pytest)."""

from __future__ import annotations

import io
import logging
import queue
import socket

import anyio
import httpx

import loopsink
from loopsink.testing import CapturingSink, capture_records


async def service() -> None:
    sink = loopsink.FileHandler("app.log", encoding="utf-8", delay=True)
    sink.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    sink.setLevel(logging.INFO)
    async with loopsink.install(
        sink, loopsink.StreamHandler(io.StringIO()), capacity=1000
    ) as queue:
        logging.getLogger("app").info("started")
        await queue.flush()
        stats: loopsink.QueueStats = queue.stats
        per_sink: tuple[loopsink.SinkStats, ...] = stats.sinks
        dropped: int = stats.dropped_total
        print(per_sink[0].emitted, dropped)


async def manual_queue() -> None:
    queue = loopsink.LogQueue(loopsink.NullHandler(), overflow="drop_oldest", name="q")
    bridge = loopsink.LoggingBridge(queue, logging.DEBUG)
    logging.getLogger().addHandler(bridge)
    async with queue:
        accepted: bool = queue.put(logging.makeLogRecord({"msg": "hi"}))
        print(accepted)
    await queue.aclose(timeout=1.0)


async def testing_helpers() -> None:
    async with capture_records("app", level=logging.DEBUG) as captured:
        logging.getLogger("app").debug("x")
        await captured.flush(timeout=1.0)
        await captured.wait_for(lambda records: len(records) == 1)
    messages: list[str] = captured.messages
    sink = CapturingSink()
    await sink.handle(logging.makeLogRecord({"msg": "direct"}))
    print(messages, sink.records)


def every_sink() -> list[loopsink.AsyncHandler]:
    return [
        loopsink.RotatingFileHandler("r.log", maxBytes=1_000_000, backupCount=5),
        loopsink.TimedRotatingFileHandler("t.log", when="midnight", backupCount=7, utc=True),
        loopsink.WatchedFileHandler("w.log"),
        loopsink.SocketHandler("127.0.0.1", 9020),
        loopsink.DatagramHandler("127.0.0.1", 9021),
        loopsink.SysLogHandler(("127.0.0.1", 514), socktype=socket.SOCK_STREAM),
        loopsink.SysLogHandler(("127.0.0.1", 514), format="rfc5424"),
        loopsink.SMTPHandler(
            ("localhost", 25), "a@example.com", ["b@example.com"], "subject", digest_interval=60.0
        ),
        loopsink.HTTPHandler("logs:8080", "/ingest", "POST", body="ndjson", retries=3),
        loopsink.HTTPHandler.loki("loki:3100", labels={"job": "api"}),
        loopsink.MemoryHandler(100, target=loopsink.FileHandler("x.log"), flush_interval=5.0),
        loopsink.QueueHandler(queue.Queue()),
    ]


class PipeSeparated(loopsink.HTTPBody):
    """A collector's own body: the records' text between a prefix and a suffix."""

    content_type = "text/plain"
    framing = ("", "|", "\n")

    def encode_record(self, handler: loopsink.HTTPHandler, record: logging.LogRecord) -> str:
        return handler.format(record)


def http_counts() -> int:
    sink = loopsink.HTTPHandler("logs:8080", "/ingest", "POST", body=PipeSeparated())
    return sink.connection_count + sink.request_count + sink.retry_count


def http_through_a_client() -> list[loopsink.HTTPHandler]:
    client = httpx.Client(http2=True, proxy="http://proxy:3128")
    return [
        loopsink.HTTPHandler("logs:8080", "/ingest", "POST", body="ndjson", client=client),
        loopsink.HTTPHandler.otlp("otel:4318", service_name="api", client=client),
    ]


async def listener() -> None:
    async with loopsink.QueueListener(
        queue.Queue(), loopsink.NullHandler(), respect_handler_level=True
    ):
        pass


def legacy() -> None:
    runner = loopsink.start_in_thread(loopsink.FileHandler("legacy.log"), overflow="block")
    logging.getLogger().warning("from a plain script")
    runner.flush(timeout=2.0)
    runner.close()


if __name__ == "__main__":
    anyio.run(service)
