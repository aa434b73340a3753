"""A batch formatter that gives the stdlib Formatter's output with less work per record.

Sinks format records on the event loop, so formatting is most of a sink's cost. For the
stdlib's own ``logging.Formatter`` with %-style fields, which is what almost everyone uses,
the output can be produced with fewer steps: the format string's use of the time is checked
once per batch instead of once per record, and the time text is computed once per second
of ``record.created`` instead of once per record (``time.strftime`` has no sub-second field,
so records created in the same second share it). A Formatter subclass that overrides a
step, or a custom converter, goes through ``formatter.format`` unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

__all__ = ["batch_formatter"]

_Formatter = logging.Formatter
#: The steps whose stdlib implementation the fast path reproduces; a formatter that
#: overrides any of them is used as it is. formatException and formatStack are called.
_STEPS = ("format", "formatMessage", "formatTime", "usesTime")
_CONVERTERS = (time.localtime, time.gmtime)


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
    if type(style) is logging.PercentStyle and not getattr(style, "_defaults", None):
        pattern = style._fmt  # PercentStyle.format is then `_fmt % record.__dict__`
    strftime = time.strftime
    # (whole second, its strftime text, msecs, the full asctime)
    cache: list[Any] = [None, "", None, ""]

    def format_record(record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if uses_time:
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
        text: str
        if pattern is not None:
            try:
                text = pattern % record.__dict__
            except Exception:  # let the stdlib raise its own error for a bad field
                text = style_format(record)
        else:
            text = style_format(record)
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

    return format_record
