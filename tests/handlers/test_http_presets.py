"""Collector presets of HTTPHandler: each body checked against that collector's documented schema.

No collector can be installed here, so the real HTTP server stands in for each one (answering
as the collector answers) and the checks below encode what each project documents:

- Loki push API (https://grafana.com/docs/loki/latest/reference/loki-http-api/#ingest-logs):
  ``{"streams": [{"stream": {<label>: <value>}, "values": [["<ns epoch string>", "<line>"],
  optionally a third element of structured metadata]]}]}``; label names match
  ``[a-zA-Z_][a-zA-Z0-9_]*``; ``Content-Type: application/json``; gzip accepted.
- Elasticsearch / OpenSearch ``_bulk``: NDJSON, action line (one of index/create/update/
  delete with metadata) then source line, the body ending with a newline; data streams need
  ``create`` and ``@timestamp``; ``Content-Type: application/x-ndjson``.
- OTLP/HTTP JSON (opentelemetry-proto logs.proto + the OTLP spec's JSON rules): lowerCamelCase
  fields only, 64-bit integers as decimal strings, enums as integers, ``AnyValue`` holding
  exactly one value; ``POST /v1/logs`` with ``Content-Type: application/json``.
- Vector ``http_server`` source, ``framing.method = "newline_delimited"`` +
  ``decoding.codec = "json"``: one JSON object per line; ``message`` and ``timestamp`` are its
  default log schema keys.
- Fluent Bit ``http`` input: a JSON map or an array of maps, ``Content-Type:
  application/json``, the tag taken from the URL path.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

import loopsink
from loopsink import HTTPHandler
from loopsink.handlers._http_presets import otel_severity
from servers.http import Answer, HTTPServer, Received

pytestmark = pytest.mark.timeout(30)

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    with HTTPServer() as running:
        yield running


def sample_records() -> list[logging.LogRecord]:
    out = []
    for i, (name, level) in enumerate(
        [("app", logging.INFO), ("app.db", logging.ERROR), ("app", logging.INFO), ("app", 25)]
    ):
        record = logging.LogRecord(name, level, "/srv/app/x.py", 10 + i, "event %d", (i,), None)
        record.created = 1_700_000_000.25 + i
        out.append(record)
    failing = logging.LogRecord("app", logging.ERROR, "/srv/app/x.py", 99, "boom", None, None)
    failing.exc_text = 'Traceback (most recent call last):\n  File "x"\nValueError: bad'
    failing.created = 1_700_000_010.5
    out.append(failing)
    return out


async def send(sink: HTTPHandler, records: list[logging.LogRecord]) -> None:
    async with loopsink.LogQueue(sink) as queue:
        for record in records:
            queue.put(record)
    assert sink.error_count == 0


def rfc3339(value: object) -> datetime:
    assert isinstance(value, str)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def only(server: HTTPServer) -> Received:
    delivered = server.delivered()
    assert len(delivered) == 1
    return delivered[0]


# -- Loki -------------------------------------------------------------------------------------


def check_loki_push(body: Any) -> None:
    assert isinstance(body, dict)
    assert set(body) == {"streams"}
    assert isinstance(body["streams"], list)
    label_sets = []
    for stream in body["streams"]:
        assert set(stream) == {"stream", "values"}
        labels = stream["stream"]
        assert isinstance(labels, dict)
        assert labels
        for name, value in labels.items():
            assert LABEL_NAME.match(name), name
            assert isinstance(value, str)
        label_sets.append(tuple(sorted(labels.items())))
        assert stream["values"]
        for entry in stream["values"]:
            assert isinstance(entry, list)
            assert len(entry) in (2, 3)
            timestamp, line = entry[0], entry[1]
            assert isinstance(timestamp, str)
            assert timestamp.isdigit()
            assert len(timestamp) >= 19  # nanoseconds since the epoch
            assert isinstance(line, str)
            if len(entry) == 3:
                assert all(isinstance(k, str) and isinstance(v, str) for k, v in entry[2].items())
    assert len(set(label_sets)) == len(label_sets)  # one stream per label set


async def test_loki_push_body(server: HTTPServer) -> None:
    server.default = Answer(204)
    sink = HTTPHandler.loki(server.host, labels={"job": "api", "env": "test"})
    sink.setFormatter(logging.Formatter("%(name)s %(message)s"))
    await send(sink, sample_records())
    request = only(server)
    assert request.method == "POST"
    assert request.target == "/loki/api/v1/push"
    assert request.header("Content-Type") == "application/json"
    body = json.loads(request.body)
    check_loki_push(body)
    streams = {s["stream"]["level"]: s for s in body["streams"]}
    assert set(streams) == {"info", "error", "level 25"}  # label values may be any string
    assert streams["info"]["stream"] == {"job": "api", "env": "test", "level": "info"}
    assert [line for _, line in streams["info"]["values"]] == ["app event 0", "app event 2"]
    assert streams["info"]["values"][0][0] == "1700000000250000000"
    assert streams["error"]["values"][1][1].startswith("app boom\nTraceback")


async def test_loki_gzip_and_no_level_label(server: HTTPServer) -> None:
    server.default = Answer(204)
    sink = HTTPHandler.loki(server.host, level_label=None, gzip=True)
    await send(sink, sample_records())
    request = only(server)
    assert request.header("Content-Encoding") == "gzip"
    body = json.loads(gzip.decompress(request.body))
    check_loki_push(body)
    assert [s["stream"] for s in body["streams"]] == [{"job": "loopsink"}]
    assert len(body["streams"][0]["values"]) == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": {"bad-name": "x"}}, r"^Loki label names must match .*, got 'bad-name'"),
        ({"labels": {"level": "x"}}, r"^level_label='level' is also a static label"),
        ({"labels": {}, "level_label": None}, r"^Loki needs at least one label"),
    ],
)
def test_loki_labels_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HTTPHandler.loki("localhost:3100", **kwargs)


# -- Elasticsearch / OpenSearch ---------------------------------------------------------------

BULK_ACTIONS = {"index", "create", "update", "delete"}
BULK_METADATA = {"_index", "_id", "routing", "pipeline", "require_alias", "dynamic_templates"}


def check_bulk(body: bytes) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    assert body.endswith(b"\n")
    lines = body[:-1].split(b"\n")
    assert len(lines) % 2 == 0
    pairs = []
    for action_line, source_line in zip(lines[::2], lines[1::2], strict=True):
        action = json.loads(action_line)
        assert isinstance(action, dict)
        assert len(action) == 1
        ((op, meta),) = action.items()
        assert op in BULK_ACTIONS
        assert op != "delete"  # a delete has no source line
        assert set(meta) <= BULK_METADATA
        source = json.loads(source_line)
        assert isinstance(source, dict)
        pairs.append((action, source))
    return pairs


async def test_elasticsearch_bulk_body(server: HTTPServer) -> None:
    server.default = Answer(200, body=b'{"took":3,"errors":false,"items":[]}')
    sink = HTTPHandler.elasticsearch(server.host, "logs-app-default")
    await send(sink, sample_records())
    request = only(server)
    assert request.target == "/logs-app-default/_bulk"
    assert request.header("Content-Type") == "application/x-ndjson"
    pairs = check_bulk(request.body)
    assert len(pairs) == 5
    for action, source in pairs:
        assert action == {"create": {}}  # data streams accept only create
        rfc3339(source["@timestamp"])
        assert isinstance(source["message"], str)
        assert isinstance(source["log"]["level"], str)
        assert isinstance(source["log"]["logger"], str)
    assert pairs[0][1]["@timestamp"] == "2023-11-14T22:13:20.250000Z"
    assert (pairs[1][1]["log"]["level"], pairs[1][1]["log"]["logger"]) == ("ERROR", "app.db")
    assert pairs[1][1]["log"]["origin"]["file"] == {"name": "x.py", "line": 11}
    assert pairs[4][1]["error"]["stack_trace"].endswith("ValueError: bad")


async def test_opensearch_index_op_and_refused_documents(
    server: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [{"index": {"status": 201}}] * 4 + [
        {"index": {"status": 400, "error": {"type": "mapper_parsing_exception"}}}
    ]
    server.default = Answer(200, body=json.dumps({"errors": True, "items": items}).encode())
    sink = HTTPHandler.opensearch(server.host, "app", op_type="index")
    async with loopsink.LogQueue(sink) as queue:
        for record in sample_records():
            queue.put(record)
    pairs = check_bulk(only(server).body)
    assert {json.dumps(action) for action, _ in pairs} == {'{"index": {}}'}
    assert sink.error_count == 1
    assert queue.stats.sinks[0].emitted == 4
    assert "_bulk refused the document (400)" in capsys.readouterr().err


# -- OpenTelemetry OTLP/HTTP JSON ------------------------------------------------------------

ANY_VALUE_KEYS = {
    "stringValue",
    "boolValue",
    "intValue",
    "doubleValue",
    "arrayValue",
    "kvlistValue",
    "bytesValue",
}
LOG_RECORD_KEYS = {
    "timeUnixNano",
    "observedTimeUnixNano",
    "severityNumber",
    "severityText",
    "body",
    "attributes",
    "droppedAttributesCount",
    "flags",
    "traceId",
    "spanId",
    "eventName",
}


def check_any_value(value: Any) -> None:
    assert isinstance(value, dict)
    assert len(value) == 1
    ((kind, content),) = value.items()
    assert kind in ANY_VALUE_KEYS
    if kind == "intValue":
        assert isinstance(content, str)
        assert re.fullmatch(r"-?\d+", content)
    elif kind == "stringValue":
        assert isinstance(content, str)
    elif kind == "boolValue":
        assert isinstance(content, bool)
    elif kind == "doubleValue":
        assert isinstance(content, float | int)


def check_attributes(attributes: Any) -> None:
    assert isinstance(attributes, list)
    keys = []
    for pair in attributes:
        assert set(pair) == {"key", "value"}
        assert isinstance(pair["key"], str)
        check_any_value(pair["value"])
        keys.append(pair["key"])
    assert len(keys) == len(set(keys))


def check_otlp_logs(body: Any) -> None:
    assert set(body) == {"resourceLogs"}
    for resource_logs in body["resourceLogs"]:
        assert set(resource_logs) <= {"resource", "scopeLogs", "schemaUrl"}
        assert set(resource_logs["resource"]) <= {"attributes", "droppedAttributesCount"}
        check_attributes(resource_logs["resource"]["attributes"])
        for scope_logs in resource_logs["scopeLogs"]:
            assert set(scope_logs) <= {"scope", "logRecords", "schemaUrl"}
            assert set(scope_logs["scope"]) <= {
                "name",
                "version",
                "attributes",
                "droppedAttributesCount",
            }
            for log in scope_logs["logRecords"]:
                assert set(log) <= LOG_RECORD_KEYS
                for key in ("timeUnixNano", "observedTimeUnixNano"):
                    assert isinstance(log[key], str)
                    assert log[key].isdigit()
                assert isinstance(log["severityNumber"], int)
                assert 0 <= log["severityNumber"] <= 24
                assert isinstance(log["severityText"], str)
                check_any_value(log["body"])
                check_attributes(log["attributes"])


async def test_otlp_logs_body(server: HTTPServer) -> None:
    server.default = Answer(200, body=b"{}", headers={"Content-Type": "application/json"})
    sink = HTTPHandler.otlp(
        server.host, service_name="checkout", resource_attributes={"deployment.environment": "test"}
    )
    await send(sink, sample_records())
    request = only(server)
    assert request.target == "/v1/logs"
    assert request.header("Content-Type") == "application/json"
    body = json.loads(request.body)
    check_otlp_logs(body)
    (resource_logs,) = body["resourceLogs"]
    assert resource_logs["resource"]["attributes"] == [
        {"key": "service.name", "value": {"stringValue": "checkout"}},
        {"key": "deployment.environment", "value": {"stringValue": "test"}},
    ]
    scopes = {s["scope"]["name"]: s["logRecords"] for s in resource_logs["scopeLogs"]}
    assert list(scopes) == ["app", "app.db"]
    first = scopes["app"][0]
    assert first["timeUnixNano"] == "1700000000250000000"
    assert (first["severityNumber"], first["severityText"]) == (9, "INFO")
    assert first["body"] == {"stringValue": "event 0"}
    attributes = {a["key"]: a["value"] for a in first["attributes"]}
    assert attributes["code.line.number"] == {"intValue": "10"}
    assert attributes["code.file.path"] == {"stringValue": "/srv/app/x.py"}


async def test_otlp_body_parses_with_the_real_message_classes(server: HTTPServer) -> None:
    """opentelemetry-proto's own ExportLogsServiceRequest reads the body: json_format.Parse
    refuses unknown fields, wrong types and misplaced values, so each field is where OTLP
    puts it."""
    pytest.importorskip("opentelemetry.proto")
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber

    server.default = Answer(200, body=b"{}", headers={"Content-Type": "application/json"})
    sink = HTTPHandler.otlp(
        server.host,
        service_name="checkout",
        resource_attributes={"deployment.environment": "test", "replica": 3, "canary": True},
        gzip=True,
    )
    await send(sink, sample_records())
    request = only(server)
    assert request.header("Content-Encoding") == "gzip"
    message = json_format.Parse(gzip.decompress(request.body), ExportLogsServiceRequest())
    (resource_logs,) = message.resource_logs
    resource = {a.key: a.value for a in resource_logs.resource.attributes}
    assert resource["service.name"].string_value == "checkout"
    assert resource["deployment.environment"].string_value == "test"
    assert resource["replica"].int_value == 3
    assert resource["canary"].bool_value is True
    scopes = {s.scope.name: list(s.log_records) for s in resource_logs.scope_logs}
    assert {name: len(logs) for name, logs in scopes.items()} == {"app": 4, "app.db": 1}
    first, *_, failing = scopes["app"]
    assert first.time_unix_nano == 1_700_000_000_250_000_000
    assert first.observed_time_unix_nano > first.time_unix_nano
    assert first.severity_number == SeverityNumber.SEVERITY_NUMBER_INFO
    assert first.severity_text == "INFO"
    assert first.body.WhichOneof("value") == "string_value"
    assert first.body.string_value == "event 0"
    attributes = {a.key: a.value for a in first.attributes}
    assert attributes["code.file.path"].string_value == "/srv/app/x.py"
    assert attributes["code.line.number"].int_value == 10
    assert "code.function.name" not in attributes  # funcName None: left out, not "None"
    assert attributes["process.pid"].int_value > 0
    assert attributes["thread.id"].int_value > 0
    (error,) = scopes["app.db"]
    assert error.severity_number == SeverityNumber.SEVERITY_NUMBER_ERROR
    assert failing.severity_number == SeverityNumber.SEVERITY_NUMBER_ERROR
    assert failing.body.string_value.startswith("boom\nTraceback (most recent call last):")
    assert failing.time_unix_nano == 1_700_000_010_500_000_000


@pytest.mark.parametrize(
    ("levelno", "severity"),
    [(0, 0), (5, 2), (10, 5), (15, 8), (20, 9), (25, 12), (30, 13), (40, 17), (50, 21), (99, 24)],
)
def test_otel_severity_numbers(levelno: int, severity: int) -> None:
    # DEBUG=5, INFO=9, WARN=13, ERROR=17, FATAL=21 as the OpenTelemetry data model defines.
    assert otel_severity(levelno) == severity


# -- Vector and Fluent Bit ---------------------------------------------------------------------


async def test_vector_ndjson_body(server: HTTPServer) -> None:
    sink = HTTPHandler.vector(server.host, "/logs")
    await send(sink, sample_records())
    request = only(server)
    assert request.target == "/logs"
    assert request.header("Content-Type") == "application/x-ndjson"
    assert request.body.endswith(b"\n")
    events = [json.loads(line) for line in request.body.decode().splitlines()]
    assert len(events) == 5
    for event in events:
        assert isinstance(event, dict)
        assert isinstance(event["message"], str)
        rfc3339(event["timestamp"])
    assert events[1]["level"] == "ERROR"
    assert events[1]["logger"] == "app.db"


async def test_fluent_bit_json_body(server: HTTPServer) -> None:
    server.default = Answer(201)
    sink = HTTPHandler.fluent_bit(server.host, tag="app.log")
    await send(sink, sample_records())
    request = only(server)
    assert request.target == "/app.log"  # the tag
    assert request.header("Content-Type") == "application/json"
    events = json.loads(request.body)
    assert isinstance(events, list)
    assert len(events) == 5
    for event in events:
        assert isinstance(event, dict)
        assert all(isinstance(key, str) for key in event)
        rfc3339(event["timestamp"])
    assert [e["message"] for e in events[:2]] == ["event 0", "event 1"]


def test_presets_refuse_a_body_or_method() -> None:
    with pytest.raises(TypeError, match=r"^a preset chooses body and method itself"):
        HTTPHandler.vector("localhost:8080", body="json")


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1.5, None, True], "c": 'zoë \u2028 "q"', "d": (1, "x")},
        {"nan": float("nan"), "inf": float("inf"), "obj": ValueError("boom")},
        "just text",
        [{"nested": {"deep": [1, 2, {"x": b"bytes"}]}}],
        {1: "int key", None: "none key", 2.5: "float key"},
    ],
)
def test_the_loop_side_json_equals_the_json_module(value: object) -> None:
    from loopsink.handlers._http_presets import _dumps

    expected = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
    assert _dumps(value) == expected(value)


def test_a_self_containing_value_fails_for_its_record_only() -> None:
    from loopsink.handlers._http_presets import _dumps

    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(RecursionError):
        _dumps({"args": loop})
    assert _dumps({"after": 1}) == '{"after":1}'
