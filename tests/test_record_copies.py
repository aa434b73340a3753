"""What the bridge's copy of a record keeps (#21, items 2 and 3).

uvicorn's ``AccessFormatter`` unpacks ``record.args``: a copy that keeps only the merged
message (``args = None``, as the stdlib's ``QueueHandler.prepare`` leaves it) breaks it on
every record the bridge copies: with ``start: thread``, and for records logged before a
loop runs. Mutable ``extra=`` values must read as they were at the call.
"""

from __future__ import annotations

import io
import logging
import logging.config
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

import loopsink
from loopsink.config import configured_bridges, run_bridges
from loopsink.testing import CapturingSink

ACCESS_ARGS = ("127.0.0.1:50312", "GET", "/items?q=1", "1.1", 200)
ACCESS_LINE = '127.0.0.1:50312 - "GET /items?q=1 HTTP/1.1" 200 OK'


@pytest.fixture(autouse=True)
def _close_bridges() -> Iterator[None]:
    yield
    for item in configured_bridges():
        item.close()


def uvicorn_config(tmp_path: Path, start: str, capacity: int = 10_000) -> dict[str, Any]:
    """A --log-config as uvicorn users write it, with loopsink sinks."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {
                "()": "uvicorn.logging.DefaultFormatter",
                "fmt": "%(levelprefix)s %(message)s",
                "use_colors": False,
            },
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(client_addr)s - "%(request_line)s" %(status_code)s',
                "use_colors": False,
            },
        },
        "handlers": {
            "default": {
                "()": "loopsink.config.bridge",
                "start": start,
                "sinks": [
                    {
                        "class": "FileHandler",
                        "filename": str(tmp_path / "app.log"),
                        "formatter": "default",
                    }
                ],
            },
            "access": {
                "()": "loopsink.config.bridge",
                "start": start,
                "capacity": capacity,
                "sinks": [
                    {
                        "class": "FileHandler",
                        "filename": str(tmp_path / "access.log"),
                        "formatter": "access",
                    }
                ],
            },
        },
        "loggers": {
            "uvicorn.error": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def log_like_uvicorn(count: int = 3) -> None:
    for _ in range(count):
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', *ACCESS_ARGS)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 4242)


def close_all() -> None:
    for item in configured_bridges():
        item.close()


@pytest.mark.parametrize("start", ["loop", "thread", "auto"])
async def test_uvicorns_formatters_format_every_record_on_every_start_mode(
    tmp_path: Path, start: str, capfd: pytest.CaptureFixture[str]
) -> None:
    logging.config.dictConfig(uvicorn_config(tmp_path, start))
    log_like_uvicorn()  # before any loop runs the queues
    with anyio.fail_after(10):
        if start == "loop":
            async with run_bridges():
                log_like_uvicorn()  # on the loop's thread
                await anyio.to_thread.run_sync(log_like_uvicorn)  # from a worker thread
        else:
            log_like_uvicorn()
            await anyio.to_thread.run_sync(log_like_uvicorn)
            await anyio.to_thread.run_sync(close_all)
    assert (tmp_path / "access.log").read_text().splitlines() == [ACCESS_LINE] * 9
    assert (tmp_path / "app.log").read_text().splitlines() == [
        "INFO:     Started server process [4242]"
    ] * 3
    assert "Logging error" not in capfd.readouterr().err


async def test_the_drop_warning_reaches_a_sink_with_uvicorns_access_formatter(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    logging.config.dictConfig(uvicorn_config(tmp_path, "loop", capacity=2))
    log_like_uvicorn(4)  # two fit before the loop runs, two are dropped
    with anyio.fail_after(10):
        async with run_bridges():
            pass
    lines = (tmp_path / "access.log").read_text().splitlines()
    assert lines[:2] == [ACCESS_LINE] * 2
    assert len(lines) == 3
    assert lines[2].startswith("2 records dropped: queue full (capacity 2")
    assert "Logging error" not in capfd.readouterr().err


def app_logger() -> logging.Logger:
    logger = logging.getLogger("copies")
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


async def test_mutable_extra_values_are_read_as_they_were_at_the_call() -> None:
    sink = CapturingSink()
    sink.setFormatter(logging.Formatter("%(message)s %(query)s %(tags)s %(count)s"))
    logger = app_logger()
    async with loopsink.install(sink, logger=logger):
        query = {"table": "orders"}
        tags = ["a"]
        logger.info("q", extra={"query": query, "tags": tags, "count": 1})
        query["table"] = "MUTATED"
        tags.append("MUTATED")

        def from_a_thread() -> None:
            q = {"table": "users"}
            logger.info("t", extra={"query": q, "tags": [], "count": 2})
            q["table"] = "MUTATED"

        thread = threading.Thread(target=from_a_thread)
        thread.start()
        await anyio.to_thread.run_sync(thread.join)
    assert sink.lines == ["q {'table': 'orders'} ['a'] 1", "t {'table': 'users'} [] 2"]


@pytest.mark.parametrize(
    ("kind", "expected"), [(dict, "{'k': 'v'}"), (list, "['k']"), (set, "{'k'}")]
)
async def test_a_single_mutable_extra_value_is_read_as_it_was_at_the_call(
    kind: type, expected: str
) -> None:
    """One extra field is checked from the record's end (the common case's fast path):
    a mutable one alone is copied as surely as one among several."""
    value = {"k": "v"} if kind is dict else kind(["k"])
    sink = CapturingSink()
    sink.setFormatter(logging.Formatter("%(message)s %(query)s"))
    logger = app_logger()
    async with loopsink.install(sink, logger=logger):
        logger.info("q", extra={"query": value})
        if isinstance(value, dict):
            value["k"] = "MUTATED"
        elif isinstance(value, list):
            value.append("MUTATED")
        else:
            value.add("MUTATED")
        logger.info("r", extra={"query": "fixed"})
    assert sink.lines == [f"q {expected}", "r fixed"]


async def test_other_handlers_see_the_callers_record_untouched() -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = app_logger()
    logger.addHandler(Keep())
    async with loopsink.install(CapturingSink(), logger=logger):
        query = {"table": "orders"}
        logger.info("items %s", [1], extra={"query": query})
    (record,) = seen
    assert type(record) is logging.LogRecord
    assert record.query is query
    assert record.msg == "items %s"
    assert record.args == ([1],)
    assert not hasattr(record, "_loopsink_context")


async def test_a_record_from_another_thread_is_kept_apart_from_the_callers_later_handlers() -> None:
    """From a thread other than the loop's even a record whose message cannot change is
    queued as a copy of its attributes: the caller's later handlers go on with the
    original while the loop formats the copy, and what they set never shows in a sink."""

    class Rewrite(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            record.msg = "rewritten by a later handler"
            record.args = None
            record.user = "changed"

    sink = CapturingSink()
    sink.setFormatter(logging.Formatter("%(message)s (%(user)s)"))
    logger = app_logger()
    async with loopsink.install(sink, logger=logger) as queue:
        logger.addHandler(Rewrite())  # after the bridge: it runs on the record next

        def from_a_thread() -> None:
            logger.info("request %d by %s", 7, "ann", extra={"user": "ann"})

        await anyio.to_thread.run_sync(from_a_thread)
        await queue.flush()
    assert sink.lines == ["request 7 by ann (ann)"]


async def test_a_bad_format_string_from_another_thread_is_reported_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its text is made by the sink, which reports the error; the other records go on."""
    out = io.StringIO()
    logger = app_logger()
    async with loopsink.install(loopsink.StreamHandler(out), logger=logger):

        def from_a_thread() -> None:
            logger.info("%d items", "not a number")
            logger.info("fine %d", 1)

        await anyio.to_thread.run_sync(from_a_thread)
    assert out.getvalue() == "fine 1\n"
    err = capsys.readouterr().err
    assert err.count("--- Logging error ---") == 1
    assert "%d format: a real number is required, not str" in err


def test_a_copy_keeps_the_message_merged_at_the_call_for_the_sinks() -> None:
    """A record copied at the call (another thread's) carries the text merged there, and the
    batch formatter writes it without merging again; a filter that replaces the message
    still gets its own text."""
    from loopsink._fastformat import batch_format
    from loopsink._record import snapshot

    record = logging.LogRecord("app", logging.INFO, "p", 1, "took %d ms (%.1f%%)", (12, 3.25), None)
    copy = snapshot(record)
    assert copy._loopsink_message == ("took %d ms (%.1f%%)", (12, 3.25), "took 12 ms (3.2%)")
    fmt = batch_format(logging.Formatter("%(levelname)s %(message)s"))
    assert fmt.many([copy]) == ["INFO took 12 ms (3.2%)"]
    assert fmt.one(copy) == "INFO took 12 ms (3.2%)"
    copy.msg = "replaced %d"
    copy.args = (7,)
    assert fmt.many([copy]) == ["INFO replaced 7"]
    assert fmt.one(copy) == "INFO replaced 7"
