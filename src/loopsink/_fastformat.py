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
"""

from __future__ import annotations

import logging
import operator
import re
import time
from collections.abc import Callable
from typing import Any

__all__ = ["batch_formatter"]

_Formatter = logging.Formatter
_LogRecord = logging.LogRecord
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


class _Templates:
    """A format string with its stable fields applied, once per distinct set of values.

    Applying them leaves a template that holds only the changing fields (with any ``%`` of
    the applied values escaped), so ``template % record.__dict__`` equals
    ``pattern % record.__dict__``. For the commonest shape, a template whose only field is
    ``%(message)s``, the template is kept as its text before and after the message, and a
    record costs one concatenation.

    Templates are found by the record's own values, so a record whose ``levelname`` a filter
    changed gets its own template. With two stable fields (``levelname`` and ``name``, as
    in ``BASIC_FORMAT``) the cache is two dicts deep, one value each: no tuple to build and
    hash per record. Otherwise the key is the tuple of the values.
    """

    __slots__ = ("cache", "count", "pattern", "stable", "values_of")

    def __init__(self, pattern: str, stable: list[str]) -> None:
        self.pattern = pattern
        self.stable = stable
        #: the record's stable values as one key (a tuple, or the one value)
        self.values_of = operator.itemgetter(*stable)
        #: by key, or with two fields by the first value, then by the second
        self.cache: dict[Any, Any] = {}
        self.count = 0

    def build(self, values: dict[str, Any]) -> tuple[str, str] | str:
        """The template for the stable values of this record's ``__dict__`` (remembered)."""
        known = {field: values[field] for field in self.stable}

        def apply(match: re.Match[str]) -> str:
            if match.group(1) not in known:
                return match.group(0)
            return (match.group(0) % known).replace("%", "%%")

        rest = _FIELD.sub(apply, self.pattern)
        result: tuple[str, str] | str = rest
        if _FIELD.findall(rest) == ["message"] and rest.count(_MESSAGE) == 1:
            before, after = rest.split(_MESSAGE)
            if "%" not in before.replace("%%", "") + after.replace("%%", ""):
                result = (before.replace("%%", "%"), after.replace("%%", "%"))
        if self.count >= _TEMPLATE_CACHE_SIZE:
            self.cache.clear()
            self.count = 0
        if len(self.stable) == 2:
            first, second = self.stable
            self.cache.setdefault(known[first], {})[known[second]] = result
        else:
            self.cache[self.values_of(values)] = result
        self.count += 1
        return result


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


def batch_formatter(formatter: logging.Formatter) -> Callable[[logging.LogRecord], str]:
    """Return a function that formats one record exactly as ``formatter.format`` would.

    It follows ``logging.Formatter.format`` step by step and sets the same record
    attributes, but reuses the ``strftime`` text for records of the same second (and the
    whole ``asctime`` for records of the same millisecond), and for a %-style format
    without ``defaults`` applies the format string directly. Build it once per batch.
    """
    if not _is_plain(formatter):
        return formatter.format
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

    def set_asctime(record: logging.LogRecord) -> None:
        created = record.created
        second = int(created)
        if second != cache[0] or created < 0:  # int() is not floor() below zero
            cache[0], cache[1], cache[2] = second, strftime(time_format, convert(created)), None
        if not msec_format:
            record.asctime = cache[1]
        elif record.msecs == cache[2]:
            record.asctime = cache[3]
        else:
            cache[2], cache[3] = record.msecs, msec_format % (cache[1], record.msecs)
            record.asctime = cache[3]

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

    if templates is not None:
        values_of, cached, build = templates.values_of, templates.cache, templates.build
        first, second = templates.stable if len(templates.stable) == 2 else (None, "")

        # The common case, in as few steps as it takes: every name below is a local.
        def format_with_templates(record: logging.LogRecord) -> str:
            values = record.__dict__
            if type(record) is _LogRecord:  # LogRecord.getMessage, without the method call
                msg = values["msg"]
                if type(msg) is not str:
                    msg = str(msg)
                args = values["args"]
                message = msg % args if args else msg
                extra = values["exc_info"] or values["exc_text"] or values["stack_info"]
            else:
                message = record.getMessage()
                extra = record.exc_info or record.exc_text or record.stack_info
            values["message"] = message
            if uses_time:
                set_asctime(record)
            try:
                if first is not None:
                    inner = cached.get(values[first])
                    found = inner.get(values[second]) if inner is not None else None
                else:
                    found = cached.get(values_of(values))
                if found is None:
                    found = build(values)
                if type(found) is tuple:
                    text: str = found[0] + message + found[1]
                else:
                    text = found % values  # type: ignore[operator]  # str: not a tuple
            except Exception:  # let the stdlib raise its own error for a bad field
                text = style_format(record)
            if extra:
                return add_exception_and_stack(record, text)
            return text

        return format_with_templates

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

    return format_record
