"""JSON text for HTTP bodies: compact values, and a record's attribute dict.

The ``"json"`` and ``"ndjson"`` bodies send each record's ``__dict__``, as the stdlib's
``mapLogRecord`` gives it. Encoding a dict of twenty-odd attributes is most of what such a
sink costs per record, and it runs on the event loop. Most of that text is the same for
every record of one call site: the keys, the logger's name, the level, the path, the
function, the thread and process. :class:`RecordJSON` encodes those once per distinct set
of values and keeps the pieces, so a record costs only what changes from one call to the
next: the message as logged and as merged, the arguments and the three times. Its text is
the one :func:`dumps` gives for ``record.__dict__``, byte for byte; a record it does not recognise
(an exception, a value of an unusual type, attributes deleted or reordered) is encoded
with :func:`dumps` as a whole.
"""

from __future__ import annotations

import json
import json.encoder
import logging
import operator
from collections.abc import Callable
from typing import Any

__all__ = ["RecordJSON", "dumps"]


def _make_dumps() -> Callable[[object], str]:
    """Compact JSON (non-ASCII kept, ``str()`` for what JSON cannot hold), as
    ``json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode``.

    It runs on the event loop for every record of a batch, so the C encoder is built once
    instead of on every call, as ``JSONEncoder.encode`` does; without circular-reference
    markers, a self-containing value ends in a ``RecursionError`` (reported for its record)
    rather than a ``ValueError``.
    """
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the _json accelerator
        return encode
    iterencode = make(None, str, json.encoder.encode_basestring, None, ":", ",", False, False, True)

    def dumps(value: object) -> str:
        if isinstance(value, str):
            return encode(value)
        return "".join(iterencode(value, 0))

    return dumps


dumps = _make_dumps()

_quote: Callable[[str], str] = json.encoder.encode_basestring
_float_text: Callable[[float], str] = float.__repr__

#: A plain record's attributes, in the order ``LogRecord.__init__`` sets them (3.12 added
#: ``taskName``). A formatter adds ``message`` (and ``asctime``) after them, ``extra=``
#: fields come between.
_PLAIN_KEYS: tuple[str, ...] = tuple(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
_PLAIN_SIZE = len(_PLAIN_KEYS)
#: What changes from one record of a call site to the next, in the order of _PLAIN_KEYS;
#: the message too, as a message formatted by the caller (an f-string) differs every time.
_CHANGING = ("msg", "args", "created", "msecs", "relativeCreated")
#: Attributes that hold a value only for records with an exception or a stack: such
#: records are encoded as a whole.
_EMPTY_AS_A_RULE = ("exc_info", "exc_text", "stack_info")
_STABLE = tuple(k for k in _PLAIN_KEYS if k not in _CHANGING and k not in _EMPTY_AS_A_RULE)
_stable_values = operator.itemgetter(*_STABLE)
_empty_values = operator.itemgetter(*_EMPTY_AS_A_RULE)
_NOTHING = (None,) * len(_EMPTY_AS_A_RULE)
#: Stable attributes whose JSON depends on the exact type: ``20``, ``20.0`` and ``True``
#: are equal keys in a dict, but not the same text.
_NUMBER_KEYS = ("levelno", "lineno", "thread", "process")
_numbers = operator.itemgetter(*_NUMBER_KEYS)
_MESSAGE_ONLY = ("message",)
_MESSAGE_AND_TIME = ("message", "asctime")
#: Sets of stable values kept at most (call sites times threads, in practice far fewer).
PIECES_BOUND = 4096

if [k for k in _PLAIN_KEYS if k in _CHANGING] != list(_CHANGING):  # pragma: no cover
    raise ImportError(f"unexpected LogRecord attributes: {_PLAIN_KEYS}")


def _pieces(attributes: dict[str, Any]) -> tuple[str, ...]:
    """The text between the changing values, for records with these stable values."""
    pieces: list[str] = []
    text = "{"
    for index, key in enumerate(_PLAIN_KEYS):
        text += ("," if index else "") + dumps(key) + ":"
        if key in _CHANGING:
            pieces.append(text)
            text = ""
        else:
            text += dumps(attributes[key])
    pieces.append(text)
    return tuple(pieces)


def _only_text_beside_numbers(stable: tuple[Any, ...]) -> bool:
    """Whether every stable value but the numbers is a string or None: only those are
    never equal to a value of another type whose text differs."""
    return all(
        value is None or isinstance(value, str)
        for key, value in zip(_STABLE, stable, strict=True)
        if key not in _NUMBER_KEYS
    )


class RecordJSON:
    """``dumps(record.__dict__)``, with the text shared by a call site's records kept.

    One per sink: it keeps up to :data:`PIECES_BOUND` sets of pieces, then starts afresh.
    """

    __slots__ = ("_pieces",)

    def __init__(self) -> None:
        self._pieces: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def __call__(self, record: logging.LogRecord) -> str:
        attributes = record.__dict__
        keys = tuple(attributes)
        if keys[:_PLAIN_SIZE] != _PLAIN_KEYS or _empty_values(attributes) != _NOTHING:
            return dumps(attributes)
        levelno, lineno, thread, process = _numbers(attributes)
        if (
            type(levelno) is not int
            or type(lineno) is not int
            or (thread is not None and type(thread) is not int)
            or (process is not None and type(process) is not int)
        ):
            return dumps(attributes)  # 20.0 or True would find the pieces of 20
        created = attributes["created"]
        msecs = attributes["msecs"]
        relative = attributes["relativeCreated"]
        if type(created) is not float or type(msecs) is not float or type(relative) is not float:
            return dumps(attributes)
        if created - created or msecs - msecs or relative - relative:
            return dumps(attributes)  # inf or nan: JSON's Infinity and NaN
        stable = _stable_values(attributes)
        try:
            pieces = self._pieces.get(stable)
        except TypeError:  # an unhashable value where a plain record has a string
            return dumps(attributes)
        msg = attributes["msg"]
        if pieces is None:
            if not _only_text_beside_numbers(stable):
                return dumps(attributes)
            if len(self._pieces) >= PIECES_BOUND:
                self._pieces.clear()
            pieces = self._pieces[stable] = _pieces(attributes)
        tail = keys[_PLAIN_SIZE:]
        if tail == _MESSAGE_ONLY and type(attributes["message"]) is str:
            end = ',"message":' + _quote(attributes["message"]) + "}"
        elif (
            tail == _MESSAGE_AND_TIME
            and type(attributes["message"]) is str
            and type(attributes["asctime"]) is str
        ):  # a formatter with %(asctime)s
            end = (
                ',"message":'
                + _quote(attributes["message"])
                + ',"asctime":'
                + _quote(attributes["asctime"])
                + "}"
            )
        elif tail:
            end = "," + dumps({key: attributes[key] for key in tail})[1:]
        else:
            end = "}"
        return "".join(  # one string built, where a chain of + builds eleven on the way
            (
                pieces[0],
                _quote(msg) if type(msg) is str else dumps(msg),
                pieces[1],
                dumps(attributes["args"]),
                pieces[2],
                _float_text(created),
                pieces[3],
                _float_text(msecs),
                pieces[4],
                _float_text(relative),
                pieces[5],
                end,
            )
        )
