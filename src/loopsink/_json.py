"""JSONFormatter: one JSON object per record, for log collectors.

The encoder is the stdlib's ``json`` (its C accelerator): the measurements behind that
choice are in docs/performance.md.
"""

from __future__ import annotations

import json
import json.encoder
import logging
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from itertools import islice
from typing import Any, Literal

from ._context import bound_fields
from ._fastformat import BATCH_FORMATTERS
from ._handler import CONTEXT_FREE_FORMATTERS
from ._record import PLAIN_SIZE, _exception_name, _text

__all__ = ["JSONFormatter"]

#: The keys every object has, in this order (each may be renamed or dropped).
STANDARD_KEYS = ("time", "level", "logger", "message")
#: The keys that follow the extra fields, when the record has what they show.
TRAILING_KEYS = ("exception", "stack")

#: Attributes every LogRecord has: not "extra" fields.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

_gmtime = time.gmtime
#: A str as a JSON string literal, non-ASCII kept (the C function when there is one).
_quote: Callable[[str], str] = json.encoder.encode_basestring
_strftime = time.strftime


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def _plain(value: object, path: tuple[int, ...] = ()) -> object:
    """``value`` with everything JSON cannot carry replaced by its ``repr``.

    ``path`` holds the containers being walked: one met again is a cycle, written as its
    ``repr`` (``[[...]]``).
    """
    if value is None or type(value) in (str, int, bool):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else repr(value)
    if id(value) in path or len(path) > 64:
        return _safe_repr(value)
    if isinstance(value, Mapping):
        inner = (*path, id(value))
        return {
            (k if type(k) is str else _safe_repr(k)): _plain(v, inner) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        inner = (*path, id(value))
        return [_plain(v, inner) for v in value]
    return _safe_repr(value)


def make_encoder(*, accelerated: bool = True) -> Callable[[Any], str]:
    """A compact, UTF-8, NaN-refusing encoder that writes unknown objects as their repr.

    It calls the C accelerator of the stdlib's ``json`` directly, built once: the
    ``JSONEncoder.encode`` path builds it again for every object, which costs as much as
    the encoding of a log record. Cycles are not tracked (``RecursionError``, then the
    plain fallback): tracking them shares state that two threads formatting at once
    would trip over. Both paths give the same text.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if accelerated and make is not None:
        try:
            iterencode = make(None, _safe_repr, _quote, None, ":", ",", False, False, False)
        except TypeError:  # a json module whose accelerator takes other arguments
            pass
        else:
            join = "".join

            def encode(data: Any) -> str:
                return join(iterencode(data, 0))

            return encode
    return json.JSONEncoder(
        ensure_ascii=False,
        allow_nan=False,
        check_circular=False,
        separators=(",", ":"),
        default=_safe_repr,
    ).encode


class JSONFormatter(logging.Formatter):
    """Formats each record as one JSON object on one line.

    The keys come in a fixed order: ``time`` (RFC 3339, UTC, milliseconds:
    ``2026-05-04T10:20:30.123Z``), ``level``, ``logger``, ``message``, then the ``static``
    fields, then the record's extra fields (those passed with ``extra=``, those bound with
    :func:`loopsink.bind`, those a record factory adds) in the order they were added, then
    ``exception`` (an object with ``type``, ``message`` and ``traceback``) and ``stack``
    when the record has them. Attribute names that start with ``_`` are left out.

    It never raises for a value: what JSON cannot carry (an object, a ``set``, ``NaN``, a
    non-string key, a cycle) is written as its ``repr``. Non-ASCII text is kept as UTF-8.

    Usable wherever a ``logging.Formatter`` is: on any loopsink sink (file, stream,
    syslog, socket, HTTP ``ndjson`` bodies), on a stdlib handler, and from ``dictConfig``
    (``"()": "loopsink.JSONFormatter"`` with the options below as keys).

    Args:
        fmt: if given, ``message`` holds this format's output (``%(levelname)s …``) instead
            of the bare message; ``datefmt``, ``style``, ``validate`` and ``defaults`` are the
            stdlib's, applied to it.
        rename: new names for keys, e.g. ``{"level": "severity", "time": "@timestamp"}``
            (``time``, ``level``, ``logger``, ``message``, ``exception``, ``stack``).
        drop: keys to leave out, standard or extra, e.g. ``("logger", "color_message")``.
        static: fields added to every object, after ``message``, e.g. ``{"service": "api"}``.
        extras: whether to write the record's extra fields (default ``True``).
    """

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        validate: bool = True,
        *,
        defaults: Mapping[str, Any] | None = None,
        rename: Mapping[str, str] | None = None,
        drop: Collection[str] = (),
        static: Mapping[str, Any] | None = None,
        extras: bool = True,
    ) -> None:
        kwargs: dict[str, Any] = {} if defaults is None else {"defaults": defaults}
        super().__init__(fmt, datefmt, style, validate, **kwargs)
        self._use_fmt = fmt is not None
        rename = dict(rename or {})
        known = STANDARD_KEYS + TRAILING_KEYS
        unknown = sorted(set(rename) - set(known))
        if unknown:
            raise ValueError(
                f"JSONFormatter cannot rename {', '.join(map(repr, unknown))}: rename takes "
                f"{', '.join(map(repr, known))}; extra fields keep their own names"
            )
        if isinstance(drop, str):
            raise TypeError(f"drop must be a collection of key names, got the string {drop!r}")
        self.rename = rename
        self.drop = frozenset(drop)
        self.static = dict(static or {})
        self.extras = extras
        names = {key: rename.get(key, key) for key in known}
        self._names = names
        self._keep = {key: names[key] not in self.drop and key not in self.drop for key in known}
        self._skip = _RECORD_ATTRIBUTES | self.drop | set(self.static)
        self._encode = make_encoder()
        keys = {key: (None if not self._keep[key] else _quote(names[key]) + ":") for key in known}
        self._time_key, self._level_key = keys["time"], keys["level"]
        self._logger_key, self._message_key = keys["logger"], keys["message"]
        self._exception_key, self._stack_key = keys["exception"], keys["stack"]
        self._static_text = ",".join(
            f"{_quote(str(key))}:{self._value_text(value)}" for key, value in self.static.items()
        )
        #: names an extra field may not take: record attributes, dropped, static, standard
        self._taken = self._skip | {names[key] for key in known if self._keep[key]}
        self._second = -1
        self._second_text = ""

    def format_time(self, record: logging.LogRecord) -> str:
        """``record.created`` in RFC 3339, UTC, with milliseconds."""
        created = record.created
        second = int(created)
        if second != self._second:
            self._second_text = _strftime("%Y-%m-%dT%H:%M:%S", _gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(record.msecs):03d}Z"

    def to_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        """The object :meth:`format` encodes, keys in their final order and names."""
        names, keep = self._names, self._keep
        message = record.getMessage()
        record.message = message
        if self._use_fmt:
            if self.usesTime():
                record.asctime = self.formatTime(record, self.datefmt)
            message = self.formatMessage(record)
        data: dict[str, Any] = {}
        if keep["time"]:
            data[names["time"]] = self.format_time(record)
        if keep["level"]:
            data[names["level"]] = record.levelname
        if keep["logger"]:
            data[names["logger"]] = record.name
        if keep["message"]:
            data[names["message"]] = message
        if self.static:
            data.update(self.static)
        if self.extras:
            state = record.__dict__
            # LogRecord.__init__ sets its attributes first, so what a record factory or
            # extra= added comes after them: only that part of the dict is looked at.
            if len(state) > PLAIN_SIZE:
                skip = self._skip
                for key in islice(state, PLAIN_SIZE, None):
                    if key not in skip and key[:1] != "_" and key not in data:
                        data[key] = state[key]
            fields = bound_fields()
            if fields:
                for key, value in fields.items():
                    if key not in data and key not in self._skip:
                        data[key] = value
        if keep["exception"] and (record.exc_info or record.exc_text):
            data[names["exception"]] = self._exception(record)
        if keep["stack"] and record.stack_info:
            data[names["stack"]] = self.formatStack(record.stack_info)
        return data

    def _exception(self, record: logging.LogRecord) -> dict[str, Any]:
        exc_info = record.exc_info
        if exc_info and exc_info[0] is not None:
            if not record.exc_text:
                record.exc_text = self.formatException(exc_info)
            return {
                "type": _exception_name(exc_info[0]),
                "message": _text(exc_info[1]),
                "traceback": record.exc_text,
            }
        # A copied record keeps only the rendered text (the traceback's frames are gone):
        # the kind and message are on its last line, "module.Error: message".
        traceback_text = record.exc_text or ""
        summary = getattr(record, "_loopsink_exception", None)
        if summary is None:
            last = traceback_text.rstrip().rpartition("\n")[2]
            name, _, text = last.partition(": ")
            summary = (name, text)
        return {"type": summary[0], "message": summary[1], "traceback": traceback_text}

    def format(self, record: logging.LogRecord) -> str:
        """One JSON object, on one line (no line break inside, none at the end).

        The same object as :meth:`to_dict` gives, written piece by piece: the standard
        keys and the static fields are text prepared once, and only the values are
        encoded, which is much faster than encoding the dict (docs/performance.md).
        """
        quote = _quote
        message = record.getMessage()
        record.message = message
        if self._use_fmt:
            if self.usesTime():
                record.asctime = self.formatTime(record, self.datefmt)
            message = self.formatMessage(record)
        parts: list[str] = []
        add = parts.append
        if self._time_key is not None:
            add(f'{self._time_key}"{self.format_time(record)}"')
        if self._level_key is not None:
            add(self._level_key + quote(record.levelname))
        if self._logger_key is not None:
            add(self._logger_key + quote(record.name))
        if self._message_key is not None:
            add(self._message_key + quote(message))
        if self._static_text:
            add(self._static_text)
        if self.extras:
            value_text = self._value_text
            state = record.__dict__
            seen: set[str] | None = None
            if len(state) > PLAIN_SIZE:
                skip = self._taken
                seen = set()
                for key in islice(state, PLAIN_SIZE, None):
                    if key not in skip and key[:1] != "_":
                        seen.add(key)
                        add(f"{quote(key)}:{value_text(state[key])}")
            fields = bound_fields()
            if fields:
                skip = self._taken
                for key, value in fields.items():
                    if key not in skip and (seen is None or key not in seen):
                        add(f"{quote(key)}:{value_text(value)}")
        if self._exception_key is not None and (record.exc_info or record.exc_text):
            add(self._exception_key + self._value_text(self._exception(record)))
        if self._stack_key is not None and record.stack_info:
            add(self._stack_key + quote(self.formatStack(record.stack_info)))
        return "{" + ",".join(parts) + "}"

    def format_batch(self, records: Sequence[logging.LogRecord]) -> list[str]:
        """What :meth:`format` gives for each of ``records``, in one call.

        A sink formats records by the batch: the common record (no ``fmt``, no exception,
        no stack) is written here with what ``format`` looks up per record looked up once
        per batch, and the text that repeats from record to record (the time to the
        millisecond, the level and logger keys for each pair of level and logger, each
        extra key) made once; any other record goes through ``format``. The fields bound
        with :func:`loopsink.bind` are looked up once too, as the sink calls this for
        records that share one log call context.
        """
        if self._use_fmt:
            return list(map(self.format, records))
        quote = _quote
        value_text = self._value_text
        time_key, message_key = self._time_key, self._message_key
        static_text = self._static_text and "," + self._static_text
        extras = self.extras
        taken = self._taken
        fields = bound_fields() if extras else None
        texts: list[str] = []
        add_text = texts.append
        moment: tuple[int, int] | None = None  # (second, millisecond) of time_text
        time_text = ""
        # the text from the time's end to the message's start, by (levelname, name)
        middles: dict[tuple[str, str], str] = {}
        key_texts: dict[str, str] = {}  # ',"key":' by extra key
        for record in records:
            if record.exc_info or record.exc_text or record.stack_info:
                add_text(self.format(record))
                continue
            message = record.getMessage()
            record.message = message
            if time_key is not None:
                second, milli = int(record.created), int(record.msecs)
                if (second, milli) != moment:
                    if second != self._second:
                        self._second_text = _strftime("%Y-%m-%dT%H:%M:%S", _gmtime(second))
                        self._second = second
                    time_text = f'{time_key}"{self._second_text}.{milli:03d}Z"'
                    moment = (second, milli)
            levelname, name = record.levelname, record.name
            middle = middles.get((levelname, name))
            if middle is None:
                middle = middles[levelname, name] = self._middle_text(levelname, name)
            tail = static_text
            if extras:
                state = record.__dict__
                seen: set[str] | None = None
                if len(state) > PLAIN_SIZE:
                    if fields:
                        seen = set()
                    for key in islice(state, PLAIN_SIZE, None):
                        if key not in taken and key[:1] != "_":
                            key_text = key_texts.get(key)
                            if key_text is None:
                                key_text = key_texts[key] = f",{quote(key)}:"
                            if seen is not None:
                                seen.add(key)
                            value = state[key]
                            tail += (
                                f"{key_text}"
                                f"{quote(value) if type(value) is str else value_text(value)}"
                            )
                if fields:
                    for key, value in fields.items():
                        if key not in taken and (seen is None or key not in seen):
                            tail += f",{quote(key)}:{value_text(value)}"
            if message_key is None:
                head = time_text + middle
            else:
                head = f"{time_text}{middle}{quote(message)}"
            add_text(f"{{{head}{tail}}}" if head else f"{{{tail[1:]}}}")
        return texts

    def _middle_text(self, levelname: str, name: str) -> str:
        """What follows the time in a record's object, up to its message's value."""
        pieces = []
        if self._level_key is not None:
            pieces.append(self._level_key + _quote(levelname))
        if self._logger_key is not None:
            pieces.append(self._logger_key + _quote(name))
        if self._message_key is not None:
            pieces.append(self._message_key)
        text = ",".join(pieces)
        return "," + text if text and self._time_key is not None else text

    def _value_text(self, value: object) -> str:
        if type(value) is str:
            return _quote(value)
        try:
            return self._encode(value)
        except (ValueError, TypeError, RecursionError):
            # NaN, a non-string key, a cycle: make it plain and encode again.
            return self._encode(_plain(value))


BATCH_FORMATTERS[JSONFormatter] = JSONFormatter.format_batch
CONTEXT_FREE_FORMATTERS.add(JSONFormatter)  # bound fields reach loopsink sinks as attributes
