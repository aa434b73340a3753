"""Request bodies for :class:`~loopsink.HTTPHandler`: plain JSON, NDJSON and collector presets.

A body is built in two steps so that a batch of a thousand records never stalls the event
loop: :meth:`HTTPBody.encode_record` turns *one* record into JSON text (the handler calls it
in short time slices, yielding to the loop in between), then :meth:`HTTPBody.join` glues the
texts into the document the collector expects (cheap: string joins and grouping).

The collector schemas were written from each project's published documentation:

- Grafana Loki, push API ``POST /loki/api/v1/push`` (JSON form):
  ``{"streams": [{"stream": {label: value}, "values": [["<ns epoch>", "<line>"], ...]}]}``.
- Elasticsearch / OpenSearch ``_bulk``: NDJSON, an action line then a source line per
  document, the last line ending with a newline; ``create`` for data streams.
- OpenTelemetry OTLP/HTTP, JSON encoding of ``ExportLogsServiceRequest`` (``POST /v1/logs``):
  lowerCamelCase field names, 64-bit integers as decimal strings, enums as integers.
- Vector ``http_server`` source with ``decoding.codec = "json"`` and
  ``framing.method = "newline_delimited"``: one JSON object per line.
- Fluent Bit ``http`` input: a JSON array of maps, the tag taken from the URL path.
"""

from __future__ import annotations

import json
import json.encoder
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .._json import JSONFormatter
from ._recordjson import RecordJSON
from ._recordjson import dumps as _dumps

if TYPE_CHECKING:
    from ._http import HTTPHandler

__all__ = [
    "ElasticsearchBulkBody",
    "FluentBitBody",
    "HTTPBody",
    "JSONArrayBody",
    "LokiBody",
    "NDJSONBody",
    "OTLPLogsBody",
    "VectorBody",
]


def _iso(created: float) -> str:
    """RFC 3339 / ISO 8601 UTC time with microseconds, as every collector here accepts."""
    return (
        datetime.fromtimestamp(created, tz=timezone.utc)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


def _unix_nanos(created: float) -> str:
    # Whole seconds and the fraction apart: created * 1e9 would lose the last digits to
    # float rounding (1700000000.25 would become ...249999872).
    seconds = int(created)
    return str(seconds * 1_000_000_000 + round((created - seconds) * 1e9))


class HTTPBody:
    """How a batch of records becomes one request body (subclass it for another collector).

    Subclasses set :attr:`content_type` and override :meth:`encode_record` and
    :meth:`join`; :meth:`rejected` lets a body read a 2xx answer that still refuses some
    records (as Elasticsearch's ``_bulk`` does).
    """

    #: The ``Content-Type`` header of the request.
    content_type = "application/json"

    #: For a body that is the record texts one ``separator`` apart between a ``prefix``
    #: and a ``suffix``: ``(prefix, separator, suffix)``. Set it instead of overriding
    #: :meth:`join`, and the handler builds the body in pieces as it encodes, never as one
    #: large buffer (a half-megabyte string costs a quarter of a millisecond in page faults
    #: alone, with the GIL held).
    framing: tuple[str, str, str] | None = None

    def encode_record(self, handler: HTTPHandler, record: logging.LogRecord) -> str:
        """One record as JSON text. Runs on the event loop (where the stdlib formats), one
        record at a time; the sink's thread only ever sees the bytes."""
        raise NotImplementedError

    def encode_batch(self, handler: HTTPHandler, records: Sequence[logging.LogRecord]) -> list[str]:
        """The texts of ``records``, each as :meth:`encode_record` gives it.

        The handler encodes a body a few records at a time through this method, inside
        the records' contexts when its filters or formatter may read one. Override it when
        a batch costs less than its records one by one (a formatter's
        :meth:`~loopsink.AsyncHandler.format_many`, say). It raises what
        :meth:`encode_record` raises for the first record that fails: the handler then
        encodes those records one at a time, to report the one that fails.
        """
        return [self.encode_record(handler, record) for record in records]

    def join(self, records: Sequence[logging.LogRecord], parts: Sequence[str]) -> str:
        """The whole body from the per-record texts (``parts[i]`` belongs to ``records[i]``).

        The default glues them with :attr:`framing`; override it for any other shape.
        """
        if self.framing is None:
            raise NotImplementedError(f"{type(self).__name__} must set framing or override join()")
        prefix, separator, suffix = self.framing
        return prefix + separator.join(parts) + suffix

    def rejected(
        self, status: int, content: bytes, records: Sequence[logging.LogRecord]
    ) -> list[tuple[logging.LogRecord, str]]:
        """Records a successful (2xx) answer nevertheless refused, with the reason."""
        return []


class _MappedJSON(HTTPBody):
    """Each record is ``handler.mapLogRecord(record)`` after the handler's formatter ran, or
    the formatter's own output when it is a :class:`~loopsink.JSONFormatter`."""

    #: The record dicts' encoder, made on first use (it keeps the text of each call site)
    _record_json: RecordJSON | None = None

    def _encode_mapped(self, handler: HTTPHandler, record: logging.LogRecord) -> str:
        mapped = handler.mapLogRecord(record)
        if mapped is not record.__dict__:  # a mapping of the user's
            return _dumps(mapped)
        encode = self._record_json
        if encode is None:
            encode = self._record_json = RecordJSON()
        return encode(record)

    def encode_record(self, handler: HTTPHandler, record: logging.LogRecord) -> str:
        # Formatting fills record.message (and exc_text, asctime when used), as it does
        # for every stdlib handler, so the mapped dict carries the merged message.
        text = handler.format(record)
        if isinstance(handler.formatter, JSONFormatter):  # already one JSON object
            return text
        return self._encode_mapped(handler, record)

    def encode_batch(self, handler: HTTPHandler, records: Sequence[logging.LogRecord]) -> list[str]:
        if type(self).encode_record is not _MappedJSON.encode_record:  # a subclass's own
            return super().encode_batch(handler, records)
        if isinstance(handler.formatter, JSONFormatter):
            return handler.format_many(records)
        if not _leaves_only_the_message(handler.formatter):
            handler.format_many(records)  # for what formatting leaves on the records
        else:
            # The stdlib's own Formatter leaves the merged message on a record (and the
            # exception's text, and the time's when its format shows it): that, not the
            # formatted line, is what the dict carries, so only that is worked out.
            for record in records:
                if record.exc_info:
                    handler.format(record)
                else:
                    record.message = record.getMessage()
        encode = self._encode_mapped
        return [encode(handler, record) for record in records]


def _leaves_only_the_message(formatter: logging.Formatter | None) -> bool:
    """Whether formatting a record without an exception only sets its ``message``: the
    stdlib's own ``Formatter`` (or none, the default) whose format shows no time."""
    if formatter is None:
        return True
    return type(formatter) is logging.Formatter and not formatter.usesTime()


class JSONArrayBody(_MappedJSON):
    """``body="json"``: a JSON array of ``mapLogRecord`` dicts."""

    framing = ("[", ",", "]")


class NDJSONBody(_MappedJSON):
    """``body="ndjson"``: one ``mapLogRecord`` dict per line, each line ending in LF."""

    content_type = "application/x-ndjson"

    framing = ("", "\n", "\n")


def _flat_event(handler: HTTPHandler, record: logging.LogRecord) -> dict[str, Any]:
    """The flat event shape used for Vector and Fluent Bit."""
    return {
        "timestamp": _iso(record.created),
        "message": handler.format(record),
        "level": record.levelname,
        "logger": record.name,
        "pid": record.process,
        "thread": record.threadName,
        "file": record.pathname,
        "line": record.lineno,
        "function": record.funcName,
    }


class VectorBody(HTTPBody):
    """NDJSON events for Vector's ``http_server`` source (``framing.method = "newline_delimited"``,
    ``decoding.codec = "json"``): ``message`` and ``timestamp`` are Vector's default keys."""

    content_type = "application/x-ndjson"

    def encode_record(self, handler: HTTPHandler, record: logging.LogRecord) -> str:
        return _dumps(_flat_event(handler, record))

    framing = ("", "\n", "\n")


class FluentBitBody(HTTPBody):
    """A JSON array of maps for Fluent Bit's ``http`` input (the tag is the URL path)."""

    def encode_record(self, handler: HTTPHandler, record: logging.LogRecord) -> str:
        return _dumps(_flat_event(handler, record))

    framing = ("[", ",", "]")


_LOKI_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class LokiBody(HTTPBody):
    """Grafana Loki push API (JSON): one stream per label set, values in record order.

    Args:
        labels: static labels of every stream (keep them few: Loki indexes each one).
        level_label: name of a label carrying the record's level in lower case
            (``"info"``, ``"error"``), or ``None`` for no level label.
    """

    def __init__(self, labels: Mapping[str, str] | None = None, level_label: str | None = "level"):
        labels = dict(labels if labels is not None else {"job": "loopsink"})
        names = [*labels, *([level_label] if level_label is not None else [])]
        for name in names:
            if not isinstance(name, str) or not _LOKI_LABEL.match(name):
                raise ValueError(
                    f"Loki label names must match [a-zA-Z_][a-zA-Z0-9_]*, got {name!r}; "
                    f"rename the label"
                )
        if level_label is not None and level_label in labels:
            raise ValueError(
                f"level_label={level_label!r} is also a static label; drop one of them"
            )
        for name, value in labels.items():
            if not isinstance(value, str):
                raise TypeError(f"Loki label values must be str, got {name}={value!r}")
        if not names:
            raise ValueError("Loki needs at least one label per stream; pass labels={'job': ...}")
        self.labels = labels
        self.level_label = level_label

    def encode_record(self, handler: HTTPHandler, record: logging.LogRecord) -> str:
        return _dumps([_unix_nanos(record.created), handler.format(record)])

    def join(self, records: Sequence[logging.LogRecord], parts: Sequence[str]) -> str:
        level_label = self.level_label
        streams: dict[str, list[str]] = {}
        for record, part in zip(records, parts, strict=True):
            key = record.levelname.lower() if level_label is not None else ""
            streams.setdefault(key, []).append(part)
        chunks = []
        for level, values in streams.items():
            labels = dict(self.labels)
            if level_label is not None:
                labels[level_label] = level
            chunks.append('{"stream":' + _dumps(labels) + ',"values":[' + ",".join(values) + "]}")
        return '{"streams":[' + ",".join(chunks) + "]}"


_BULK_ACTIONS = ("create", "index")


class ElasticsearchBulkBody(HTTPBody):
    """Elasticsearch / OpenSearch ``_bulk``: an action line and an ECS-style document per record.

    Args:
        index: the index or data stream named in each action line; ``None`` leaves it out
            (then the URL must name it: ``/<index>/_bulk``).
        op_type: ``"create"`` (required by data streams, the default) or ``"index"``.
    """

    content_type = "application/x-ndjson"

    def __init__(self, index: str | None = None, op_type: str = "create") -> None:
        if op_type not in _BULK_ACTIONS:
            raise ValueError(f"op_type must be 'create' or 'index', got {op_type!r}")
        self.index = index
        self.op_type = op_type
        meta = {"_index": index} if index is not None else {}
        self._action = _dumps({op_type: meta})

    def encode_record(self, handler: HTTPHandler, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "@timestamp": _iso(record.created),
            "message": handler.format(record),
            "log": {
                "level": record.levelname,
                "logger": record.name,
                "origin": {
                    "file": {"name": record.filename, "line": record.lineno},
                    "function": record.funcName,
                },
            },
            "process": {
                "pid": record.process,
                "thread": {"id": record.thread, "name": record.threadName},
            },
        }
        if record.exc_text:
            document["error"] = {"stack_trace": record.exc_text}
        return self._action + "\n" + _dumps(document)

    framing = ("", "\n", "\n")

    def rejected(
        self, status: int, content: bytes, records: Sequence[logging.LogRecord]
    ) -> list[tuple[logging.LogRecord, str]]:
        # _bulk answers 200 even when some documents failed: "errors": true and one item
        # per document, in order, each with its own status.
        try:
            answer = json.loads(content)
        except ValueError:
            return []
        if not isinstance(answer, dict) or not answer.get("errors"):
            return []
        failed = []
        for record, item in zip(records, answer.get("items") or (), strict=False):
            result: Any = next(iter(item.values()), {}) if isinstance(item, dict) else {}
            item_status = result.get("status", 0) if isinstance(result, dict) else 0
            if isinstance(item_status, int) and item_status >= 300:
                error = result.get("error")
                failed.append((record, f"_bulk refused the document ({item_status}): {error}"))
        return failed


def otel_severity(levelno: int) -> int:
    """The OpenTelemetry ``SeverityNumber`` of a stdlib level (DEBUG 5, INFO 9, WARNING 13,
    ERROR 17, CRITICAL 21; levels in between take the next finer step of their range)."""
    if levelno <= 0:
        return 0
    if levelno < 10:
        return 1 + min(3, (levelno - 1) * 4 // 9)  # TRACE..TRACE4
    base = min(levelno, 50) // 10  # 1 DEBUG .. 5 FATAL
    step = min(3, levelno - base * 10) if levelno < 60 else 3
    return 1 + base * 4 + step


def _any_value(value: object) -> dict[str, object]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attributes(pairs: Mapping[str, object]) -> list[dict[str, object]]:
    return [
        {"key": key, "value": _any_value(value)}
        for key, value in pairs.items()
        if value is not None
    ]


class OTLPLogsBody(HTTPBody):
    """OpenTelemetry OTLP/HTTP logs, JSON encoding (``POST /v1/logs``).

    One ``ResourceLogs`` carrying ``service.name`` (and ``resource_attributes``); one
    ``ScopeLogs`` per logger name; the formatted record is the body.

    Args:
        service_name: the ``service.name`` resource attribute.
        resource_attributes: more resource attributes (str, int, float or bool values).
    """

    def __init__(
        self,
        service_name: str = "unknown_service",
        resource_attributes: Mapping[str, object] | None = None,
    ) -> None:
        attributes: dict[str, object] = {"service.name": service_name}
        attributes.update(resource_attributes or {})
        self.service_name = service_name
        self._resource = _dumps({"attributes": _attributes(attributes)})

    def encode_record(self, handler: HTTPHandler, record: logging.LogRecord) -> str:
        body = handler.format(record)
        entry = {
            "timeUnixNano": _unix_nanos(record.created),
            "observedTimeUnixNano": str(time.time_ns()),
            "severityNumber": otel_severity(record.levelno),
            "severityText": record.levelname,
            "body": {"stringValue": body},
            "attributes": _attributes(
                {
                    "code.file.path": record.pathname,
                    "code.line.number": record.lineno,
                    "code.function.name": record.funcName,
                    "thread.id": record.thread,
                    "thread.name": record.threadName,
                    "process.pid": record.process,
                }
            ),
        }
        return _dumps(entry)

    def join(self, records: Sequence[logging.LogRecord], parts: Sequence[str]) -> str:
        scopes: dict[str, list[str]] = {}
        for record, part in zip(records, parts, strict=True):
            scopes.setdefault(record.name, []).append(part)
        scope_logs = ",".join(
            '{"scope":' + _dumps({"name": name}) + ',"logRecords":[' + ",".join(items) + "]}"
            for name, items in scopes.items()
        )
        return (
            '{"resourceLogs":[{"resource":'
            + self._resource
            + ',"scopeLogs":['
            + scope_logs
            + "]}]}"
        )


def default_service_name() -> str:
    """``OTEL_SERVICE_NAME`` if set, as OpenTelemetry SDKs read it, else ``unknown_service``."""
    return os.environ.get("OTEL_SERVICE_NAME") or "unknown_service"
