"""JSONFormatter and bound fields (#16 items 3 and 4), on every kind of sink."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.streams.buffered
import anyio.to_thread
import pytest

import loopsink
from loopsink import JSONFormatter
from loopsink._json import _plain
from loopsink.testing import CapturingSink
from servers.http import HTTPServer

#: 2026-05-04T10:20:30.123 UTC
CREATED = 1777890030.123456


def make_record(msg: str = "hello %s", args: Any = ("wörld",), **attrs: Any) -> logging.LogRecord:
    record = logging.LogRecord("app.db", logging.WARNING, "/srv/app.py", 12, msg, args, None)
    record.created = CREATED
    record.msecs = 123.0
    record.__dict__.update(attrs)
    return record


def app_logger(name: str = "json.app") -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


# -- the object ---------------------------------------------------------------------------------


def test_fixed_key_order_time_in_rfc3339_utc_and_extras_in_order() -> None:
    text = JSONFormatter().format(make_record(user="ann", attempt=2))
    assert text == (
        '{"time":"2026-05-04T10:20:30.123Z","level":"WARNING","logger":"app.db",'
        '"message":"hello wörld","user":"ann","attempt":2}'
    )


def test_rename_drop_and_static_fields() -> None:
    formatter = JSONFormatter(
        rename={"time": "@timestamp", "level": "severity"},
        drop=("logger", "secret"),
        static={"service": "api", "env": "prod"},
    )
    text = formatter.format(make_record(secret="x", user="ann"))
    assert text == (
        '{"@timestamp":"2026-05-04T10:20:30.123Z","severity":"WARNING",'
        '"message":"hello wörld","service":"api","env":"prod","user":"ann"}'
    )


def test_values_json_cannot_carry_become_their_repr_and_it_never_raises() -> None:
    class Odd:
        def __repr__(self) -> str:
            return "<Odd>"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    cycle: list[Any] = []
    cycle.append(cycle)
    record = make_record(
        obj=Odd(),
        tags={"a"},
        ratio=float("nan"),
        keyed={1: "one"},
        cycle=cycle,
        broken=Broken(),
    )
    data = json.loads(JSONFormatter().format(record))
    assert data["obj"] == "<Odd>"
    assert data["tags"] == "{'a'}"
    assert data["ratio"] == "nan"
    assert data["keyed"] == {"1": "one"}
    assert data["cycle"] == ["[[...]]"]
    assert data["broken"] == "<unrepresentable Broken>"


def test_exception_and_stack() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        record = make_record(exc_info=sys.exc_info(), stack_info="Stack (most recent call last):")
    data = json.loads(JSONFormatter().format(record))
    assert list(data)[-2:] == ["exception", "stack"]
    assert data["exception"]["type"] == "ValueError"
    assert data["exception"]["message"] == "bad value"
    assert data["exception"]["traceback"].startswith("Traceback (most recent call last):")
    assert data["exception"]["traceback"].endswith("ValueError: bad value")
    assert data["stack"] == "Stack (most recent call last):"


def test_dictconfig_builds_it_with_its_options() -> None:
    out = io.StringIO()
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "json": {"()": "loopsink.JSONFormatter", "static": {"service": "api"}},
                "plain": {"class": "loopsink.JSONFormatter"},
            },
            "handlers": {
                "a": {"class": "logging.StreamHandler", "stream": out, "formatter": "json"},
                "b": {"class": "logging.StreamHandler", "stream": out, "formatter": "plain"},
            },
            "loggers": {"json.cfg": {"handlers": ["a", "b"], "level": "INFO"}},
        }
    )
    logging.getLogger("json.cfg").info("configured")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["service"] == "api"
    assert first["message"] == "configured"
    assert "service" not in second
    assert second["message"] == "configured"


def test_bad_options_say_what_to_pass() -> None:
    with pytest.raises(ValueError, match=r"^JSONFormatter cannot rename 'user': rename takes"):
        JSONFormatter(rename={"user": "who"})
    with pytest.raises(TypeError, match=r"^drop must be a collection of key names"):
        JSONFormatter(drop="logger")


# -- bound fields -------------------------------------------------------------------------------


async def test_bound_fields_are_record_attributes_for_every_sink() -> None:
    text_sink, json_sink = CapturingSink(), CapturingSink()
    text_sink.setFormatter(logging.Formatter("%(request_id)s %(message)s"))
    text_sink.addFilter(lambda record: record.msg != "after")  # it has no request_id
    json_sink.setFormatter(JSONFormatter())
    logger = app_logger()
    async with loopsink.install(text_sink, json_sink, logger=logger):

        async def request(rid: str) -> None:
            with loopsink.bind(request_id=rid):
                await anyio.sleep(0)
                logger.info("in %s", rid)
                binding = loopsink.bind(user="u-" + rid)
                logger.info("user known", extra={"request_id": "explicit wins"})
                binding.reset()
                assert dict(loopsink.bound_fields()) == {"request_id": rid}
            logger.info("after")

        async with anyio.create_task_group() as tg:
            for rid in ("r1", "r2"):
                tg.start_soon(request, rid)
    assert sorted(text_sink.lines) == [
        "explicit wins user known",
        "explicit wins user known",
        "r1 in r1",
        "r2 in r2",
    ]
    objects = [json.loads(line) for line in json_sink.lines]
    shapes = sorted((o["message"], o.get("request_id"), o.get("user")) for o in objects)
    assert shapes == [
        ("after", None, None),
        ("after", None, None),
        ("in r1", "r1", None),
        ("in r2", "r2", None),
        ("user known", "explicit wins", "u-r1"),
        ("user known", "explicit wins", "u-r2"),
    ]


def test_bind_refuses_record_attribute_names() -> None:
    with pytest.raises(ValueError, match=r"^cannot bind 'levelname', 'msg': a LogRecord attr"):
        loopsink.bind(msg="x", levelname="y")


def test_json_formatter_on_a_stdlib_handler_sees_bound_fields() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JSONFormatter(drop=("time",)))
    logger = app_logger("json.stdlib")
    logger.addHandler(handler)
    with loopsink.bind(request_id="abc"):
        logger.info("x")
    assert out.getvalue() == (
        '{"level":"INFO","logger":"json.stdlib","message":"x","request_id":"abc"}\n'
    )


# -- on every sink ------------------------------------------------------------------------------


def json_lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


async def test_json_lines_on_file_stream_syslog_socket_and_http_sinks(tmp_path: Path) -> None:
    formatter = JSONFormatter(drop=("time",), static={"service": "api"})
    stream_out = io.StringIO()
    file_sink = loopsink.FileHandler(tmp_path / "app.jsonl", encoding="utf-8")
    stream_sink = loopsink.StreamHandler(stream_out)
    udp = await anyio.create_udp_socket(local_host="127.0.0.1")
    syslog_sink = loopsink.SysLogHandler(
        ("127.0.0.1", udp.extra(anyio.abc.SocketAttribute.local_port))
    )
    frames: list[bytes] = []
    got_frame = anyio.Event()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            buffered = anyio.streams.buffered.BufferedByteReceiveStream(stream)
            size = int.from_bytes(await buffered.receive_exactly(4), "big")
            frames.append(await buffered.receive_exactly(size))
            got_frame.set()

    socket_sink = loopsink.SocketHandler("127.0.0.1", port, serializer="json")
    with HTTPServer() as server:
        http_sink = loopsink.HTTPHandler(server.host, "/bulk", "POST", body="ndjson")
        sinks = (file_sink, stream_sink, syslog_sink, socket_sink, http_sink)
        for sink in sinks:
            sink.setFormatter(formatter)
        logger = app_logger("json.sinks")
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, serve)
                async with loopsink.install(*sinks, logger=logger):
                    with loopsink.bind(request_id="r-1"):
                        logger.info("grüße %d", 1, extra={"order": {"id": 7}})
                datagram, _ = await udp.receive()
                await got_frame.wait()
                tg.cancel_scope.cancel()
        await udp.aclose()
        await listener.aclose()
        http_body = b"".join(r.body for r in server.delivered())
    expected = {
        "level": "INFO",
        "logger": "json.sinks",
        "message": "grüße 1",
        "service": "api",
        "order": {"id": 7},
        "request_id": "r-1",
    }
    assert json_lines((tmp_path / "app.jsonl").read_bytes()) == [expected]
    assert json_lines(stream_out.getvalue().encode()) == [expected]
    assert json_lines(http_body) == [expected]
    prefix = b"<14>"
    assert datagram.startswith(prefix)
    assert json.loads(datagram[len(prefix) :].rstrip(b"\x00")) == expected
    (frame,) = frames
    sent = json.loads(frame)  # the socket sink's JSON: the record's attributes
    assert (sent["msg"], sent["request_id"], sent["order"]) == ("grüße 1", "r-1", {"id": 7})


def test_format_writes_exactly_the_object_to_dict_describes() -> None:
    formatter = JSONFormatter(rename={"message": "msg"}, static={"service": "api", "n": 1.5})
    try:
        raise KeyError("k")
    except KeyError:
        failing = make_record(exc_info=sys.exc_info(), user="ann")
    records = [
        make_record(),
        make_record(user="ann", tags=["x", {"y": None}], ratio=float("inf"), _private=1),
        make_record(service="shadowed by the static field", msg_extra="é\n\t\u2028"),
        failing,
    ]
    with loopsink.bind(request_id="r", user="bound loses to extra"):
        for record in records:
            text = formatter.format(record)
            # to_dict made plain (NaN and the like as their repr) and encoded whole
            assert text == formatter._encode(_plain(formatter.to_dict(record)))
            assert "\n" not in text


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, None, True, "é\u2028\x00"]},
        ["x" * 3, {"nested": {"deep": [1e16, -0.0, 10**30]}}],
        {"obj": object.__new__(type("Thing", (), {"__repr__": lambda self: "<Thing>"}))},
    ],
)
def test_the_accelerated_encoder_writes_what_the_stdlib_encoder_writes(value: Any) -> None:
    from loopsink._json import make_encoder

    assert make_encoder()(value) == make_encoder(accelerated=False)(value)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"rename": {"message": "msg", "time": "@timestamp"}, "static": {"service": "api"}},
        {"drop": ("logger", "time")},
        {"drop": ("time", "level", "logger", "message")},
        {"extras": False},
        {"fmt": "%(levelname)s %(message)s"},
    ],
)
def test_a_batch_is_formatted_as_each_record_alone(options: dict[str, Any]) -> None:
    """Sinks format by the batch (format_batch): the same text as format(), record by record,
    for every option, whatever the records carry and across second and millisecond changes."""
    formatter = JSONFormatter(**options)
    try:
        raise KeyError("k")
    except KeyError:
        failing = make_record(exc_info=sys.exc_info(), user="ann")
    later = make_record(user="bob")
    later.created, later.msecs = CREATED + 1.0005, 0.5
    same_second = make_record()
    same_second.msecs = 124.9
    records = [
        make_record(),
        make_record(user="ann", tags=["x", {"y": None}], ratio=float("inf"), _private=1),
        make_record(service="shadowed if static", msg_extra="é\n\t\u2028", n=3),
        failing,
        make_record(stack_info="Stack (most recent call last):\n  here"),
        same_second,
        later,
        make_record(msg="%(a)s", args=({"a": "mapping"},)),
        # another level and logger, then the first pair again; an extra key met before
        make_record(levelname="INFO", levelno=logging.INFO, name="app.web", user="cy"),
        make_record(name="app.web"),
        make_record(user=None, attempt=2),
    ]
    with loopsink.bind(request_id="r", user="bound loses to extra"):
        expected = [formatter.format(record) for record in records]
        assert formatter.format_batch(records) == expected
    assert formatter.format_batch([]) == []


def test_sinks_use_the_batch_method_only_for_the_formatter_class_that_has_it() -> None:
    from loopsink._fastformat import batch_format

    class Upper(JSONFormatter):
        def format(self, record: logging.LogRecord) -> str:
            return super().format(record).upper()

    record = make_record()
    assert batch_format(JSONFormatter()).many([record]) == [JSONFormatter().format(record)]
    assert batch_format(Upper()).many([record]) == [Upper().format(record)]
