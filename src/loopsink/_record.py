"""Snapshots of log records, taken at the moment of the log call."""

from __future__ import annotations

import logging

__all__ = ["snapshot"]

_LogRecord = logging.LogRecord
_new = object.__new__
_exception_formatter = logging.Formatter()


def snapshot(record: logging.LogRecord) -> logging.LogRecord:
    """Return a copy of ``record`` that later changes cannot alter.

    The message is merged with its arguments now, so that an argument mutated after the
    log call cannot change what is written; the exception is rendered into ``exc_text`` and
    the traceback dropped (it would keep every frame alive while the record waits). This
    works on a *copy*, like the stdlib's ``QueueHandler.prepare`` since bpo-35726, because
    other handlers of the same logger must see the record exactly as the caller made it.
    """
    copy = _new(_LogRecord)
    state = record.__dict__.copy()
    copy.__dict__ = state
    if record.args:
        state["msg"] = record.getMessage()
        state["args"] = None
    elif type(record.msg) is not str:
        state["msg"] = str(record.msg)
    if record.exc_info:
        if not record.exc_text:
            state["exc_text"] = _exception_formatter.formatException(record.exc_info)
        state["exc_info"] = None
    return copy
