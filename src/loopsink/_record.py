"""Log records as queued: the record as it was at the call, and the context it was made in.

Every record the bridge queues is a :class:`QueuedRecord`: a ``logging.LogRecord`` subclass
with two slots that live *outside* the record's ``__dict__`` (so ``vars(record)``, pickles of
the attribute dict, ``mapLogRecord`` and JSON formatters never see them):

* ``_loopsink_context``: the ``contextvars.Context`` current at the log call, which the
  sinks enter to run their filters and formatters (see :mod:`loopsink._context`);
* ``_loopsink_message``: the message as merged at the call, for records copied at the call
  (:func:`snapshot`); ``None`` for a record queued as it is, whose ``msg % args`` gives the
  same text at any time.
"""

from __future__ import annotations

import logging
from contextvars import Context
from itertools import islice
from typing import Any

__all__ = ["QueuedRecord", "copied", "snapshot", "wrap"]

_LogRecord = logging.LogRecord
_new = object.__new__
_exception_formatter = logging.Formatter()
_default_formatter = logging.Formatter()

#: Argument and extra value types whose value cannot change after the log call.
IMMUTABLE = frozenset({int, float, str, bool, bytes, type(None), complex})
_is_immutable_type = IMMUTABLE.__contains__
#: Built-in containers copied (shallowly) at the call, so that later changes do not show.
_COPIED: dict[type, Any] = {dict: dict.copy, list: list.copy, set: set.copy, bytearray: bytes}

#: How many attributes a plain ``LogRecord`` has (3.12 added ``taskName``). ``__init__`` sets
#: them first, in a fixed order, so whatever follows them in ``__dict__`` was added later:
#: ``extra=`` fields, a record factory's attributes, ``message`` set by a formatter.
PLAIN_SIZE = len(_LogRecord("", 0, "", 0, "", None, None).__dict__)


class QueuedRecord(logging.LogRecord):
    """A record on its way to the sinks. Behaves as a ``logging.LogRecord`` in every way."""

    __slots__ = ("_loopsink_context", "_loopsink_exception", "_loopsink_message")

    _loopsink_context: Context | None
    _loopsink_message: tuple[object, object, str] | None
    #: the exception's type name and text, set when the traceback was rendered at the call
    _loopsink_exception: tuple[str, str]

    def getMessage(self) -> str:
        # The message merged at the call, as long as nobody replaced msg or args since
        # (a filter that rewrites ``record.msg`` gets the stdlib's merge of its new text).
        merged = self._loopsink_message
        if merged is not None and merged[0] is self.msg and merged[1] is self.args:
            return merged[2]
        return _LogRecord.getMessage(self)

    def __copy__(self) -> QueuedRecord:
        # uvicorn's formatters copy the record before they read its args: keep what makes
        # the copy read the same as the original (the merged message, the context).
        copy = _new(QueuedRecord)
        copy.__dict__ = self.__dict__.copy()
        copy._loopsink_context = self._loopsink_context
        copy._loopsink_message = self._loopsink_message
        summary = getattr(self, "_loopsink_exception", None)
        if summary is not None:
            copy._loopsink_exception = summary
        return copy

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (a multiprocessing queue, a custom socket format) as a plain LogRecord
        # carrying the merged message, as the stdlib's QueueHandler.prepare leaves it: the
        # other side needs neither loopsink nor the argument types, and a Context cannot
        # be pickled anyway.
        state = self.__dict__.copy()
        state["msg"] = self.getMessage()
        state["args"] = None
        return (logging.makeLogRecord, (state,))


class OwnRecord(QueuedRecord):
    """A record loopsink logs itself (the drop summary).

    A sink's formatter may be made for other records only (uvicorn's ``AccessFormatter``
    unpacks five arguments): if it cannot format this one, the sink writes its message in
    the stdlib's default format rather than report a logging error about its own warning.
    """

    __slots__ = ()


def own_record(name: str, level: int, msg: str, args: tuple[object, ...]) -> OwnRecord:
    """A record of loopsink's own, its message merged and its arguments kept."""
    record = _new(OwnRecord)
    record.__dict__ = _LogRecord(name, level, __file__, 0, msg, args, None).__dict__
    record._loopsink_context = None
    record._loopsink_message = None
    return record


def plain_text(record: logging.LogRecord) -> str:
    """``record`` in the stdlib's default format: how a sink writes an :class:`OwnRecord`."""
    return _default_formatter.format(record)


def _exception_name(kind: type) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def record_context(record: logging.LogRecord) -> Context | None:
    """The ``contextvars.Context`` of ``record``'s log call, if a bridge captured one."""
    return getattr(record, "_loopsink_context", None)


def wrap(record: logging.LogRecord, context: Context | None) -> QueuedRecord:
    """``record`` itself, seen through a :class:`QueuedRecord` that carries ``context``.

    The two share one attribute dict, so this costs no copy: for the bridge's fast path,
    where the record cannot change after the call anyway.
    """
    queued = _new(QueuedRecord)
    queued.__dict__ = record.__dict__
    queued._loopsink_context = context
    queued._loopsink_message = None
    return queued


def copied(record: logging.LogRecord, context: Context | None) -> QueuedRecord:
    """A :class:`QueuedRecord` over a copy of ``record``'s attribute dict, carrying ``context``.

    For a record from a thread other than the loop's whose message, arguments and extra
    values cannot change after the call: the loop formats it while the caller's other
    handlers may still be at work on the record (a stdlib formatter sets ``message`` and
    ``asctime`` on it), so the two must not share one dict. Nothing can change the text,
    so unlike :func:`snapshot` nothing is merged or rendered at the call.
    """
    queued = _new(QueuedRecord)
    queued.__dict__ = record.__dict__.copy()
    queued._loopsink_context = context
    queued._loopsink_message = None
    return queued


def wrap_pairs(
    items: list[Any], context: Context | None
) -> tuple[list[logging.LogRecord], Context | None]:
    """Intake items as records; returns them and the fast path's context after them.

    A ``(record, context)`` pair becomes ``wrap(record, context)``; a QueuedRecord stays as
    it is; a plain record alone comes from the bridge's fast path and shares the context of
    the fast path's previous pair, ``context`` (carried from one call to the next).
    """
    records: list[logging.LogRecord] = []
    add = records.append
    for item in items:
        if type(item) is tuple:
            record, own = item
            if own is not None:
                context = own
        elif isinstance(item, QueuedRecord):
            add(item)
            continue
        else:
            record, own = item, context
        queued = _new(QueuedRecord)
        queued.__dict__ = record.__dict__
        queued._loopsink_context = own
        queued._loopsink_message = None
        add(queued)
    return records, context


def unpair(
    items: list[Any], context: Context | None
) -> tuple[list[logging.LogRecord], Context | None]:
    """Intake items as records, without their contexts (no sink needs them); returns them
    and the fast path's context after them, as :func:`wrap_pairs` does."""
    records = [item[0] if type(item) is tuple else item for item in items]
    return records, last_context(items, context)


def last_context(items: list[Any], context: Context | None) -> Context | None:
    """The fast path's context after ``items``: that of their last pair, else ``context``."""
    for item in reversed(items):
        if type(item) is tuple and item[1] is not None:
            own: Context = item[1]
            return own
    return context


def keep_context(record: logging.LogRecord, original: logging.LogRecord) -> logging.LogRecord:
    """``record`` (a filter's replacement for ``original``) carrying ``original``'s context."""
    context = getattr(original, "_loopsink_context", None)
    if context is None or getattr(record, "_loopsink_context", None) is not None:
        return record
    return wrap(record, context)


def safe_value(value: object) -> object:
    """``value``, or a shallow copy of it if it is a built-in container."""
    if type(value) in IMMUTABLE:
        return value
    copier = _COPIED.get(type(value))
    return value if copier is None else copier(value)


def extras_fixed(state: dict[str, Any]) -> bool:
    """Whether every attribute added after the standard ones is of an immutable type.

    Called for every log call with ``extra=``: one extra field, the common case, is read
    from the dict's end without walking past the standard attributes.
    """
    added = len(state) - PLAIN_SIZE
    if added <= 0:
        return True
    if added == 1:
        return type(next(reversed(state.values()))) in IMMUTABLE
    return all(map(_is_immutable_type, map(type, islice(state.values(), PLAIN_SIZE, None))))


def snapshot(record: logging.LogRecord, context: Context | None = None) -> QueuedRecord:
    """Return a copy of ``record`` that later changes cannot alter.

    The message is merged with its arguments now (an argument mutated after the call
    cannot change what is written), yet ``args`` stays readable, as a copy: formatters
    such as uvicorn's ``AccessFormatter`` unpack it. Mutable ``extra=`` values (dicts,
    lists, sets) are copied shallowly. The exception is rendered into ``exc_text`` and the
    traceback dropped (it would keep every frame alive while the record waits). All on a
    *copy*, like the stdlib's ``QueueHandler.prepare`` since bpo-35726, because other
    handlers of the same logger must see the record exactly as the caller made it.
    """
    copy = copied(record, context)
    state = copy.__dict__
    msg, args = record.msg, record.args
    if args:
        message = record.getMessage()
        if type(msg) is not str:  # an object with a __str__: keep the text it gave at the call
            msg = state["msg"] = message
        if isinstance(args, tuple):
            if not all(type(arg) in IMMUTABLE for arg in args):
                state["args"] = args = tuple(map(safe_value, args))
        else:  # a mapping, as in logger.info("%(user)s", {"user": ...})
            state["args"] = args = {key: safe_value(v) for key, v in args.items()}
        # the text merged at the call, which the sinks then need not merge again
        copy._loopsink_message = (msg, args, message)
    elif type(msg) is not str:
        state["msg"] = str(msg)
    exc_info = record.exc_info
    if exc_info:
        if not record.exc_text:
            state["exc_text"] = _exception_formatter.formatException(exc_info)
        state["exc_info"] = None
        if exc_info[0] is not None:
            copy._loopsink_exception = (_exception_name(exc_info[0]), _text(exc_info[1]))
    if len(state) > PLAIN_SIZE:
        for key, value in islice(record.__dict__.items(), PLAIN_SIZE, None):
            if type(value) not in IMMUTABLE:
                state[key] = safe_value(value)
    return copy
