"""A batch formatter that gives the stdlib Formatter's output with less work per record.

Sinks format records on the event loop, so formatting is most of a sink's cost. For the
stdlib's own ``logging.Formatter`` with %-style fields, which is what almost everyone uses,
the output can be produced with fewer steps: the format string's use of the time is checked
once per batch instead of once per record, and the time text is computed once per second
of ``record.created`` instead of once per record (``time.strftime`` has no sub-second field,
so records created in the same second share it), and the fields that are the same for
every record of one logger, level and call site (``%(levelname)s``, ``%(name)s``,
``%(lineno)d``…) are applied once per distinct set of values, leaving a shorter template
for the fields that change (``%(message)s``, ``%(asctime)s``). A Formatter subclass that
overrides a step, or a custom converter, goes through ``formatter.format`` unchanged.

The common path reads the record's attributes one by one and never its ``__dict__``: since
Python 3.11 an object keeps its attributes inline until ``__dict__`` is asked for, and
asking builds a real dict for every record (and makes one more object for the garbage
collector to track), which cost a third of the time of formatting a record.
"""

from __future__ import annotations

import logging
import operator
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ._record import QueuedRecord

__all__ = ["BatchFormat", "batch_format", "batch_formatter", "one_by_one"]

_Formatter = logging.Formatter
_LogRecord = logging.LogRecord
_Queued = QueuedRecord
#: The steps whose stdlib implementation the fast path reproduces; a formatter that
#: overrides any of them is used as it is. formatException and formatStack are called.
_STEPS = ("format", "formatMessage", "formatTime", "usesTime")
_CONVERTERS = (time.localtime, time.gmtime)


#: A %-style field, as ``logging.PercentStyle`` validates it.
_FIELD = re.compile(r"%\((\w+)\)[#0+ -]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxefgcrsa%]", re.IGNORECASE)
#: Record attributes that repeat across the records of one logger, level and call site:
#: worth applying once per distinct set of values.
_STABLE = frozenset(
    {
        "name",
        "levelname",
        "levelno",
        "pathname",
        "filename",
        "module",
        "funcName",
        "lineno",
        "process",
        "processName",
        "thread",
        "threadName",
    }
)
#: Distinct sets of stable values remembered before the cache starts over.
_TEMPLATE_CACHE_SIZE = 4096
_MESSAGE = "%(message)s"
_ASCTIME = "%(asctime)s"
#: The stable fields of ``BASIC_FORMAT`` and of most services' formats: looked up as plain
#: attributes, two dicts deep.
_LEVEL_AND_NAME = ["levelname", "name"]


class _Templates:
    """A format string with its stable fields applied, once per distinct set of values.

    Applying them leaves a template that holds only the changing fields (with any ``%`` of
    the applied values escaped), so ``template % record.__dict__`` equals
    ``pattern % record.__dict__``. The commonest shapes are kept as the text around their
    fields, so that a record costs a few concatenations and no ``__dict__``: a template
    whose only field is ``%(message)s`` as ``(before, after)``, and one whose fields are
    ``%(asctime)s`` then ``%(message)s`` as ``(before, between, after)``.

    Templates are found by the record's own values, so a record whose ``levelname`` a filter
    changed gets its own template. For ``levelname`` and ``name``, the stable fields of
    ``BASIC_FORMAT`` and of most formats, the cache is two dicts deep, one value each: no
    tuple to build and hash per record. Otherwise the key is the tuple of the values.
    """

    __slots__ = ("cache", "count", "level_and_name", "pattern", "stable", "values_of")

    def __init__(self, pattern: str, stable: list[str]) -> None:
        self.pattern = pattern
        self.stable = stable
        self.level_and_name = stable == _LEVEL_AND_NAME
        #: the record's stable values as one key (a tuple, or the one value)
        self.values_of = operator.attrgetter(*stable)
        #: by key, or for levelname and name by the one, then by the other
        self.cache: dict[Any, Any] = {}
        self.count = 0

    def build(self, values: dict[str, Any]) -> tuple[str, ...] | str:
        """The template for the stable values of this record's ``__dict__`` (remembered)."""
        known = {field: values[field] for field in self.stable}

        def apply(match: re.Match[str]) -> str:
            if match.group(1) not in known:
                return match.group(0)
            return (match.group(0) % known).replace("%", "%%")

        rest = _FIELD.sub(apply, self.pattern)
        result = _split(rest) or rest
        if self.count >= _TEMPLATE_CACHE_SIZE:
            self.cache.clear()
            self.count = 0
        if self.level_and_name:
            self.cache.setdefault(known["levelname"], {})[known["name"]] = result
        else:
            self.cache[tuple(known.values()) if len(known) > 1 else known[self.stable[0]]] = result
        self.count += 1
        return result


def _split(template: str) -> tuple[str, ...] | None:
    """``template`` as the literal text around its fields, if they are ``%(message)s``
    alone or ``%(asctime)s`` then ``%(message)s``, each written plainly and once."""
    fields = _FIELD.findall(template)
    if fields == ["message"] and template.count(_MESSAGE) == 1:
        pieces = template.split(_MESSAGE)
    elif (
        fields == ["asctime", "message"]
        and template.count(_ASCTIME) == 1
        and template.count(_MESSAGE) == 1
        and template.index(_ASCTIME) < template.index(_MESSAGE)
    ):
        before, rest = template.split(_ASCTIME)
        pieces = [before, *rest.split(_MESSAGE)]
    else:
        return None
    if any("%" in piece.replace("%%", "") for piece in pieces):
        return None
    return tuple(piece.replace("%%", "%") for piece in pieces)


#: Templates by format string, shared by every formatter with that string, so that what
#: one batch learned serves the next.
_TEMPLATES: dict[str, _Templates | None] = {}
_TEMPLATES_SIZE = 64


def _templates_for(pattern: str) -> _Templates | None:
    """The shared :class:`_Templates` of ``pattern``; ``None`` if it has no stable field."""
    try:
        return _TEMPLATES[pattern]
    except KeyError:
        pass
    if len(_TEMPLATES) >= _TEMPLATES_SIZE:
        _TEMPLATES.clear()
    stable = sorted({f for f in _FIELD.findall(pattern) if f in _STABLE})
    templates = _TEMPLATES[pattern] = _Templates(pattern, stable) if stable else None
    return templates


def _is_plain(formatter: logging.Formatter) -> bool:
    cls = type(formatter)
    if any(getattr(cls, step) is not getattr(_Formatter, step) for step in _STEPS):
        return False
    if any(step in formatter.__dict__ for step in _STEPS):
        return False
    return formatter.converter in _CONVERTERS


class BatchFormat(NamedTuple):
    """How a sink formats: one record at a time, or a whole list at once (the same text)."""

    #: ``one(record)``: the text of one record, as ``formatter.format(record)``
    one: Callable[[logging.LogRecord], str]
    #: ``many(records)``: the list of their texts; raises what ``one`` would raise for the
    #: first record that fails (call ``one`` record by record to find it)
    many: Callable[[Sequence[logging.LogRecord]], list[str]]


#: Formatter classes with a batch method of their own: ``method(formatter, records)`` gives
#: what ``formatter.format`` gives for each record (the exact class, not its subclasses,
#: which may override ``format``).
BATCH_FORMATTERS: dict[type, Callable[[Any, Sequence[logging.LogRecord]], list[str]]] = {}


def batch_formatter(formatter: logging.Formatter) -> Callable[[logging.LogRecord], str]:
    """Return a function that formats one record exactly as ``formatter.format`` would."""
    return batch_format(formatter).one


def one_by_one(one: Callable[[logging.LogRecord], str]) -> BatchFormat:
    """A :class:`BatchFormat` that calls ``one`` for each record."""
    return BatchFormat(one, lambda records: list(map(one, records)))


def batch_format(formatter: logging.Formatter) -> BatchFormat:
    """Return functions that format records exactly as ``formatter.format`` would.

    They follow ``logging.Formatter.format`` step by step and set the same record
    attributes, but reuse the ``strftime`` text for records of the same second (and the
    whole ``asctime`` for records of the same millisecond), and for a %-style format
    without ``defaults`` apply the format string directly. Build them once and keep them:
    what they cache serves every later batch.
    """
    own_batch = BATCH_FORMATTERS.get(type(formatter))
    if own_batch is not None and "format" not in formatter.__dict__:
        return BatchFormat(formatter.format, own_batch.__get__(formatter))
    if not _is_plain(formatter):
        return one_by_one(formatter.format)
    convert = formatter.converter
    uses_time = formatter.usesTime()
    datefmt = formatter.datefmt
    time_format = datefmt or formatter.default_time_format
    msec_format = None if datefmt else formatter.default_msec_format
    style = formatter._style
    style_format = style.format
    pattern: str | None = None
    templates: _Templates | None = None
    if type(style) is logging.PercentStyle and not getattr(style, "_defaults", None):
        pattern = style._fmt  # PercentStyle.format is then `_fmt % record.__dict__`
        templates = _templates_for(pattern) if pattern is not None else None
    strftime = time.strftime
    # (whole second, its strftime text, msecs, the full asctime)
    cache: list[Any] = [None, "", None, ""]

    def set_asctime(record: logging.LogRecord) -> str:
        created = record.created
        second = int(created)
        if second != cache[0] or created < 0:  # int() is not floor() below zero
            cache[0], cache[1], cache[2] = second, strftime(time_format, convert(created)), None
        if not msec_format:
            asctime: str = cache[1]
        elif record.msecs == cache[2]:
            asctime = cache[3]
        else:
            cache[2], cache[3] = record.msecs, msec_format % (cache[1], record.msecs)
            asctime = cache[3]
        record.asctime = asctime
        return asctime

    def add_exception_and_stack(record: logging.LogRecord, text: str) -> str:
        if record.exc_info and not record.exc_text:
            record.exc_text = formatter.formatException(record.exc_info)
        if record.exc_text:
            if text[-1:] != "\n":
                text += "\n"
            text += record.exc_text
        if record.stack_info:
            if text[-1:] != "\n":
                text += "\n"
            text += formatter.formatStack(record.stack_info)
        return text

    def format_record(record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if uses_time:
            set_asctime(record)
        text: str
        if pattern is not None:
            try:
                text = pattern % record.__dict__
            except Exception:  # let the stdlib raise its own error for a bad field
                text = style_format(record)
        else:
            text = style_format(record)
        if record.exc_info or record.exc_text or record.stack_info:
            return add_exception_and_stack(record, text)
        return text

    if templates is None:
        return one_by_one(format_record)

    values_of, cached, build = templates.values_of, templates.cache, templates.build
    level_and_name = templates.level_and_name

    def find_template(record: logging.LogRecord) -> tuple[str, ...] | str:
        if level_and_name:
            inner = cached.get(record.levelname)
            found = inner.get(record.name) if inner is not None else None
        else:
            found = cached.get(values_of(record))
        if found is None:
            found = build(record.__dict__)
        return found

    def apply_template(record: logging.LogRecord, message: str, found: object) -> str:
        """The text of a record whose ``message`` is set, from its template ``found``."""
        if type(found) is not tuple:
            if uses_time:
                set_asctime(record)
            return found % record.__dict__  # type: ignore[no-any-return,operator]
        if len(found) == 2:
            if uses_time:
                set_asctime(record)
            return found[0] + message + found[1]  # type: ignore[no-any-return]
        return found[0] + set_asctime(record) + found[1] + message + found[2]  # type: ignore[no-any-return]

    def format_one(record: logging.LogRecord) -> str:
        kind = type(record)
        if kind is _LogRecord or kind is _Queued:  # getMessage, without the method call
            merged = record._loopsink_message if kind is _Queued else None  # type: ignore[attr-defined]
            if merged is not None and merged[0] is record.msg and merged[1] is record.args:
                message = merged[2]  # merged at the call (QueuedRecord.getMessage)
            else:
                msg = record.msg
                if type(msg) is not str:
                    msg = str(msg)
                args = record.args
                message = msg % args if args else msg
        else:
            message = record.getMessage()
        record.message = message
        try:
            text = apply_template(record, message, find_template(record))
        except Exception:  # let the stdlib raise its own error for a bad field
            if uses_time:
                set_asctime(record)
            text = style_format(record)
        if record.exc_info or record.exc_text or record.stack_info:
            return add_exception_and_stack(record, text)
        return text

    if not level_and_name:
        return one_by_one(format_one)

    # The common case in as few steps as it takes: one loop, every name a local, the
    # template lookup and the concatenation written out, no call per record.
    def format_many(records: Sequence[logging.LogRecord]) -> list[str]:
        texts: list[str] = []
        add = texts.append
        get = cached.get
        for record in records:
            kind = type(record)
            if (
                (kind is not _LogRecord and kind is not _Queued)
                or record.exc_info
                or record.exc_text
                or record.stack_info
            ):
                add(format_one(record))
                continue
            try:
                merged = record._loopsink_message if kind is _Queued else None  # type: ignore[attr-defined]
                if merged is not None and merged[0] is record.msg and merged[1] is record.args:
                    message = merged[2]  # merged at the call (QueuedRecord.getMessage)
                else:
                    msg = record.msg
                    if type(msg) is not str:
                        msg = str(msg)
                    args = record.args
                    message = msg % args if args else msg
                record.message = message
                inner = get(record.levelname)
                found = inner.get(record.name) if inner is not None else None
                if type(found) is tuple:
                    if len(found) == 2:
                        if uses_time:
                            set_asctime(record)
                        add(found[0] + message + found[1])
                    else:
                        add(found[0] + set_asctime(record) + found[1] + message + found[2])
                else:
                    if found is None:
                        found = build(record.__dict__)
                    add(apply_template(record, message, found))
            except Exception:  # a bad record: format_one raises the stdlib's own error
                add(format_one(record))
        return texts

    return BatchFormat(format_one, format_many)
