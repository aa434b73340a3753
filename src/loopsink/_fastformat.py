"""A batch formatter that gives the stdlib Formatter's output with less work per record.

Sinks format records on the event loop, so formatting is most of a sink's cost. For the
stdlib's own ``logging.Formatter`` with %-style fields, which is what almost everyone uses,
the output can be produced with fewer steps: the format string's use of the time is checked
once per batch instead of once per record, and the time text is computed once per second
of ``record.created`` instead of once per record (``time.strftime`` has no sub-second field,
so records created in the same second share it). Anything that could change the result —
a Formatter subclass overriding a step, a custom converter, ``defaults``, a record with an
exception or a stack, a LogRecord subclass — goes through ``formatter.format`` unchanged.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

__all__ = ["batch_formatter"]

_Formatter = logging.Formatter
_LogRecord = logging.LogRecord
_STEPS = ("format", "formatMessage", "formatTime", "usesTime", "formatException", "formatStack")
_CONVERTERS = (time.localtime, time.gmtime)


def _is_plain(formatter: logging.Formatter) -> bool:
    cls = type(formatter)
    if cls is not _Formatter:
        if any(getattr(cls, step) is not getattr(_Formatter, step) for step in _STEPS):
            return False
    if any(step in formatter.__dict__ for step in _STEPS):
        return False
    style = formatter._style
    if type(style) is not logging.PercentStyle or getattr(style, "_defaults", None):
        return False
    return formatter.converter in _CONVERTERS


def batch_formatter(formatter: logging.Formatter) -> Callable[[logging.LogRecord], str]:
    """Return a function that formats one record exactly as ``formatter.format`` would.

    Build it once per batch: it caches the time text of the last second it saw.
    """
    if not _is_plain(formatter):
        return formatter.format
    general = formatter.format
    fmt: str = formatter._style._fmt
    uses_time = formatter.usesTime()
    datefmt = formatter.datefmt
    converter = formatter.converter
    time_format = formatter.default_time_format
    msec_format = formatter.default_msec_format
    strftime = time.strftime
    floor = math.floor
    cache: list[object] = [None, ""]

    def format_record(record: logging.LogRecord) -> str:
        if (
            type(record) is not _LogRecord
            or record.exc_info
            or record.exc_text
            or record.stack_info
        ):
            return general(record)
        msg = record.msg
        if type(msg) is not str:
            msg = str(msg)
        args = record.args
        record.message = msg % args if args else msg
        if uses_time:
            created = record.created
            second = floor(created)
            if cache[0] != second:
                cache[0] = second
                cache[1] = strftime(datefmt or time_format, converter(created))
            text: str = cache[1]  # type: ignore[assignment]
            if not datefmt and msec_format:
                text = msec_format % (text, record.msecs)
            record.asctime = text
        try:
            return fmt % record.__dict__
        except KeyError as exc:
            raise ValueError(f"Formatting field not found in record: {exc}") from None

    return format_record
