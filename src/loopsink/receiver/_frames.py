"""Decoding frames into record dicts, safely.

A frame is what :class:`~loopsink.SocketHandler` (and the stdlib's) sends: a 4-byte
big-endian length, then that many bytes of payload. The payload is a pickle of the record's
attribute dict, or a UTF-8 JSON object (``serializer="json"``; it starts with ``{``, which
no pickle does), optionally preceded by a 32-byte HMAC-SHA256 digest.

Unpickling data from the network runs code of the sender's choosing, so pickles here go
through :class:`RestrictedUnpickler`, which refuses every global except a few harmless
constructors, and the result must look like a record dict: str keys, plain values (None,
bool, int, float, str, bytes and tuples, lists, dicts and sets of those), bounded in depth
and size, with the fields a handler relies on of the right type.
"""

from __future__ import annotations

import codecs
import datetime
import decimal
import hmac
import io
import json
import logging
import pickle
import struct
from collections.abc import Callable
from typing import Any

from .._exceptions import LoopsinkError
from .._tuning import PASSED_SHAPE_KEY_CHARS, PASSED_SHAPES_BOUND
from ._pickscan import PickleRejected, scan_pickle

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "FrameError",
    "RejectReason",
    "RestrictedUnpickler",
    "StreamDecoder",
    "decode_datagram",
    "decode_payload",
]

#: The largest payload accepted by default (1 MiB); a record that large is rare and suspect.
DEFAULT_MAX_FRAME_SIZE = 1 << 20

#: A record dict holds flat values; nesting deeper than this (in ``extra``) is refused.
MAX_DEPTH = 32
#: Keys a frame may hash into dicts and sets (the record dict's own included).
MAX_HASHED = 4096
#: Containers (tuples, lists, dicts, sets) a pickled frame may build.
MAX_CONTAINERS = 16_384
#: Opcodes a pickled frame may hold, and values a record dict may hold in its containers:
#: they bound the work one frame costs (a megabyte of ``None``s is a million of each).
MAX_OPCODES = 262_144
MAX_VALUES = 100_000
#: The longest excerpt of a sender's data quoted in a rejection message.
_QUOTE = 60

DIGEST_SIZE = 32
_length = struct.Struct(">L")


class RejectReason:
    """Why a frame was rejected, as counted in ``ReceiverStats.rejected``."""

    #: The length prefix (or datagram) is above ``max_frame_size``.
    OVERSIZED = "oversized"
    #: Not a pickle or JSON object that can be read: garbage, a broken length.
    MALFORMED = "malformed"
    #: A pickle that asks for a global outside the allow-list (``os.system`` and friends).
    FORBIDDEN = "forbidden"
    #: ``hmac_key`` is set and the digest is missing or wrong.
    SIGNATURE = "signature"
    #: Decodes, but is not a plausible record dict (bad types, too deep, too big).
    INVALID = "invalid"
    #: The connection ended in the middle of a frame.
    TRUNCATED = "truncated"
    #: The TLS handshake failed.
    TLS = "tls"
    #: A frame was not complete within the receiver's ``frame_timeout``.
    TIMEOUT = "timeout"


class FrameError(LoopsinkError, ValueError):
    """A frame was rejected; :attr:`reason` is one of the :class:`RejectReason` values."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _latin1_encode(obj: object, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Protocol 0-2 pickles encode bytes as _codecs.encode(text, "latin1"); nothing else.
    if encoding != "latin1" or not isinstance(obj, str):
        raise pickle.UnpicklingError(
            f"_codecs.encode is only allowed with 'latin1', got {_quote(encoding)}"
        )
    return codecs.encode(obj, "latin1", errors)


def _bounded(kind: type[set[Any]] | type[frozenset[Any]]) -> Callable[..., Any]:
    # set(iterable) hashes every item, out of sight of the opcode walk: bound it here.
    def build(items: Any = ()) -> Any:
        if not isinstance(items, (list, tuple)) or len(items) > MAX_HASHED:
            raise pickle.UnpicklingError(
                f"{kind.__name__}() takes a list or tuple of at most {MAX_HASHED} items here"
            )
        return kind(items)

    return build


_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "set"): _bounded(set),
    ("builtins", "frozenset"): _bounded(frozenset),
    ("builtins", "complex"): complex,
    ("__builtin__", "set"): _bounded(set),
    ("__builtin__", "frozenset"): _bounded(frozenset),
    ("datetime", "date"): datetime.date,
    ("datetime", "time"): datetime.time,
    ("datetime", "datetime"): datetime.datetime,
    ("datetime", "timedelta"): datetime.timedelta,
    ("datetime", "timezone"): datetime.timezone,
    ("decimal", "Decimal"): decimal.Decimal,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that loads only data: no classes, no functions, no ``__reduce__`` tricks.

    Globals are refused except a short allow-list of constructors that run no code of the
    sender's choosing (``set``, ``frozenset``, ``complex``, the ``datetime`` types,
    ``decimal.Decimal``, and ``_codecs.encode`` restricted to latin-1, which old protocols
    use for bytes). Persistent ids are refused by the base class.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[module, name]
        except (KeyError, TypeError):
            raise pickle.UnpicklingError(
                f"global {_clip(module)}.{_clip(name)} is not allowed in a log record frame"
            ) from None


def _clip(text: str) -> str:
    """``text`` cut to a bounded length, control characters escaped, no quotes added."""
    return repr(str(text)[:_QUOTE])[1:-1] + ("..." if len(text) > _QUOTE else "")


def _quote(value: object) -> str:
    """A bounded, printable rendering of a sender's value, for rejection messages.

    Never ``repr()`` of the value itself: that of a deeply nested key raises, and that of a
    large one is as large.
    """
    if type(value) is str or type(value) is bytes:
        text = repr(value[:_QUOTE])
        return text + "..." if len(value) > _QUOTE else text
    if type(value) in (int, bool, float) or value is None:
        text = repr(value) if type(value) is not int or value.bit_length() < 200 else "<big int>"
        return text
    return f"<{type(value).__name__}>"


# -- validating the dict ---------------------------------------------------------------------

_PLAIN: tuple[type, ...] = (str, int, float, bool, bytes, type(None), complex, decimal.Decimal)
_PLAIN += (datetime.date, datetime.time, datetime.timedelta, datetime.timezone)
_CONTAINERS = (tuple, list, set, frozenset)

_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str, type(None)),
    "msg": (str,),
    "levelname": (str,),
    "levelno": (int,),
    "pathname": (str,),
    "filename": (str,),
    "module": (str,),
    "funcName": (str, type(None)),
    "lineno": (int,),
    "thread": (int, type(None)),
    "threadName": (str, type(None)),
    "process": (int, type(None)),
    "processName": (str, type(None)),
    "taskName": (str, type(None)),
    "created": (int, float),
    "msecs": (int, float),
    "relativeCreated": (int, float),
    "exc_info": (type(None),),
    "exc_text": (str, type(None)),
    "stack_info": (str, type(None)),
}


def _check_value(value: object, budget: list[int], depth: int) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise FrameError(RejectReason.INVALID, "record dict has too many values")
    if isinstance(value, _PLAIN):
        return
    if depth >= MAX_DEPTH:
        raise FrameError(RejectReason.INVALID, f"record dict nests deeper than {MAX_DEPTH}")
    if isinstance(value, _CONTAINERS):
        for item in value:
            _check_value(item, budget, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _check_value(key, budget, depth + 1)
            _check_value(item, budget, depth + 1)
        return
    raise FrameError(RejectReason.INVALID, f"record dict holds a {type(value).__name__}")


_SCALARS = frozenset({str, int, float, bool, type(None), bytes})
#: Names a record dict may not set: they would shadow LogRecord's methods (``getMessage``)
#: or special attributes once ``makeLogRecord`` copies the dict onto the instance.
_RESERVED = frozenset(dir(logging.LogRecord))
_FIELD_EXACT: dict[str, frozenset[type]] = {k: frozenset(v) for k, v in _FIELD_TYPES.items()}


def _fill_level(data: dict[str, Any]) -> None:
    # makeLogRecord would leave levelno None (no level check can compare it) and levelname
    # "Level None": a record without them gets them from each other, else NOTSET.
    if "levelno" not in data:
        # getLevelName maps a registered name back to its number (3.10 has no mapping getter)
        level = logging.getLevelName(data.get("levelname", ""))
        data["levelno"] = level if type(level) is int else logging.NOTSET
    if "levelname" not in data:
        data["levelname"] = logging.getLevelName(data["levelno"])
    if "msg" not in data:
        data["msg"] = ""


_RANGES: tuple[tuple[str, float, float], ...] = (
    ("levelno", 0, 2**31 - 1),
    ("lineno", -(2**31), 2**31 - 1),
    ("thread", 0, 2**64 - 1),
    ("process", 0, 2**64 - 1),
    ("created", -1e12, 1e12),
    ("msecs", -1e12, 1e12),
    ("relativeCreated", -1e12, 1e12),
)


#: Shapes of record dicts that passed :func:`_check_fields` with scalar values only: their
#: keys, then their values' types. A sender sends records of a few shapes (one per set of
#: ``extra=`` keys), and a dict of a known shape passes those checks again without them.
_PASSED_SHAPES: set[tuple[Any, ...]] = set()


def validate_record_dict(data: object, size: int) -> dict[str, Any]:
    """Check that ``data`` is a plausible record dict; return it, or raise FrameError.

    The value budget is proportional to the frame size, so shared references cannot make a
    small frame expand into an enormous structure when a formatter renders it.
    """
    if type(data) is not dict:
        raise FrameError(RejectReason.INVALID, f"frame holds a {type(data).__name__}, not a dict")
    shape = (*data, *map(type, data.values()))
    if shape not in _PASSED_SHAPES:
        _check_fields(data, size)
        if _SCALARS.issuperset(shape[len(data) :]) and (
            sum(map(len, data)) <= PASSED_SHAPE_KEY_CHARS
        ):
            if len(_PASSED_SHAPES) >= PASSED_SHAPES_BOUND:
                _PASSED_SHAPES.clear()
            _PASSED_SHAPES.add(shape)
    for name, low, high in _RANGES:
        value = data.get(name)
        if value is not None and not low <= value <= high:  # also refuses NaN
            raise FrameError(
                RejectReason.INVALID,
                f"record field {name!r} is out of range [{low}, {high}]: {_quote(value)}",
            )
    if data.get("args") is not None:
        # Senders merge the message first (the stdlib does); merging here would let a tiny
        # frame such as "%*d" with a huge width allocate gigabytes.
        raise FrameError(
            RejectReason.INVALID, "record field 'args' must be None (unmerged message)"
        )
    return data


def _check_fields(data: dict[Any, Any], size: int) -> None:
    """Every key a str that shadows no LogRecord attribute, every known field of its type,
    every value plain, within a budget of values that grows with the frame's ``size``."""
    budget = [min(max(64, size), MAX_VALUES)]
    fields, scalars = _FIELD_EXACT, _SCALARS
    for key, value in data.items():
        kind = type(value)
        if type(key) is not str:
            raise FrameError(RejectReason.INVALID, f"record dict key {_quote(key)} is not a str")
        if key in _RESERVED:
            raise FrameError(
                RejectReason.INVALID,
                f"record dict key {_quote(key)} would shadow a LogRecord attribute",
            )
        expected = fields.get(key)
        if expected is not None and kind not in expected:
            raise FrameError(
                RejectReason.INVALID,
                f"record field {key!r} is a {kind.__name__}, expected "
                f"{' or '.join(sorted(t.__name__ for t in expected))}",
            )
        if kind not in scalars:
            _check_value(value, budget, 0)


def _check_digest(payload: bytes, hmac_key: bytes) -> bytes:
    """Verify and strip the HMAC-SHA256 digest in front of ``payload``."""
    if len(payload) < DIGEST_SIZE:
        raise FrameError(RejectReason.SIGNATURE, "frame is too short to carry an HMAC digest")
    digest, payload = payload[:DIGEST_SIZE], payload[DIGEST_SIZE:]
    if not hmac.compare_digest(digest, hmac.digest(hmac_key, payload, "sha256")):
        raise FrameError(RejectReason.SIGNATURE, "frame HMAC digest does not match")
    return payload


def _unpickling_error(exc: BaseException) -> FrameError:
    if isinstance(exc, pickle.UnpicklingError):
        reason = RejectReason.FORBIDDEN if "is not allowed" in str(exc) else RejectReason.MALFORMED
        return FrameError(reason, f"cannot unpickle frame: {exc}"[:300])
    return FrameError(RejectReason.MALFORMED, f"cannot decode frame: {type(exc).__name__}")


def _scan(data: bytes, start: int, end: int) -> None:
    try:
        scan_pickle(
            data,
            start,
            end,
            max_depth=MAX_DEPTH,
            max_hashed=MAX_HASHED,
            max_containers=MAX_CONTAINERS,
            max_opcodes=MAX_OPCODES,
        )
    except PickleRejected as exc:
        reason = RejectReason.FORBIDDEN if exc.forbidden else RejectReason.MALFORMED
        raise FrameError(reason, f"cannot unpickle frame: {exc}") from None


def _decode_json(payload: bytes) -> object:
    try:
        return json.loads(payload)
    except (Exception, RecursionError) as exc:
        raise FrameError(RejectReason.MALFORMED, f"cannot decode JSON frame: {exc}"[:300]) from None


def decode_payload(payload: bytes, *, hmac_key: bytes | None = None) -> dict[str, Any]:
    """Turn one payload (the bytes after the length prefix) into a validated record dict."""
    payload = bytes(payload)
    if hmac_key is not None:
        payload = _check_digest(payload, hmac_key)
    if not payload:
        raise FrameError(RejectReason.MALFORMED, "empty frame")
    if payload[0] == 0x7B:  # "{": JSON
        return validate_record_dict(_decode_json(payload), len(payload))
    _scan(payload, 0, len(payload))
    # A buffered reader lets the C unpickler prefetch instead of calling read() per opcode.
    reader = io.BufferedReader(io.BytesIO(payload))
    try:
        data = RestrictedUnpickler(reader).load()
    except (Exception, RecursionError) as exc:
        raise _unpickling_error(exc) from None
    if reader.tell() != len(payload):
        raise FrameError(RejectReason.MALFORMED, "frame has bytes after the end of its pickle")
    return validate_record_dict(data, len(payload))


def _decode_frames(
    blob: bytes, spans: list[tuple[int, int]], hmac_key: bytes | None
) -> tuple[list[dict[str, Any]], FrameError | None]:
    """Decode the complete frames held in ``blob``, whose payloads are ``blob[start:stop]``
    for each ``(start, stop)`` of ``spans`` (found by :meth:`StreamDecoder.feed`).

    One unpickler reads them all through one buffered reader: the C unpickler then runs at
    the speed of ``pickle.loads``. After each record the reader must sit exactly at the end of
    that frame, so a pickle that stops early or runs on into the next frame is rejected.
    """
    out: list[dict[str, Any]] = []
    if hmac_key is not None:
        try:
            for start, stop in spans:
                out.append(decode_payload(blob[start:stop], hmac_key=hmac_key))
        except FrameError as exc:
            return out, exc
        return out, None
    # The pickles, back to back without their prefixes: the unpickler keeps what it
    # prefetched between loads, so nothing else may read from its file.
    payloads = b"".join([blob[a:b] for a, b in spans])
    reader = io.BufferedReader(io.BytesIO(payloads), 65_536)
    unpickler = RestrictedUnpickler(reader)
    load, tell, memo = unpickler.load, reader.tell, unpickler.memo
    offset = 0
    try:
        for start, stop in spans:
            size = stop - start
            if not size:
                raise FrameError(RejectReason.MALFORMED, "empty frame")
            offset += size
            if blob[start] == 0x7B:  # "{": JSON
                data = _decode_json(blob[start:stop])
                # move the reader past it (seeking drops what the unpickler prefetched)
                reader = io.BufferedReader(io.BytesIO(payloads), 65_536)
                reader.seek(offset)
                unpickler = RestrictedUnpickler(reader)
                load, tell, memo = unpickler.load, reader.tell, unpickler.memo
            else:
                _scan(blob, start, stop)
                try:
                    data = load()
                except (Exception, RecursionError) as exc:
                    raise _unpickling_error(exc) from None
                memo.clear()
                if tell() != offset:
                    raise FrameError(
                        RejectReason.MALFORMED, "frame length does not match the pickle it holds"
                    )
            out.append(validate_record_dict(data, size))
    except FrameError as exc:
        return out, exc
    return out, None


class StreamDecoder:
    """Splits a byte stream into frames and decodes them, never buffering above the limit.

    Feed it what the connection delivers; it returns the record dicts of the complete frames.
    After a bad frame :attr:`error` holds the reason and the connection should be closed:
    what follows a bad frame cannot be trusted to be aligned.
    """

    def __init__(
        self, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, hmac_key: bytes | None = None
    ) -> None:
        self.max_frame_size = max_frame_size
        self.hmac_key = hmac_key
        self.error: FrameError | None = None
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)

    def complete(self, data: bytes | bytearray | memoryview) -> bool:
        """Whether feeding ``data`` would complete a frame (and so decode something)."""
        held = self._buffer
        head = bytes(held[:4]) if len(held) >= 4 else bytes(held) + bytes(data[: 4 - len(held)])
        if len(head) < 4:
            return False
        size: int = _length.unpack(head)[0]
        return len(held) + len(data) >= 4 + size

    def feed(self, data: bytes | bytearray | memoryview) -> list[dict[str, Any]]:
        if self.error is not None:
            return []
        buffer = self._buffer
        buffer += data
        end = len(buffer)
        pos = 0
        limit = self.max_frame_size + (DIGEST_SIZE if self.hmac_key is not None else 0)
        unpack = _length.unpack_from
        oversized: FrameError | None = None
        spans: list[tuple[int, int]] = []  # the payloads of the complete frames
        while end - pos >= 4:
            (size,) = unpack(buffer, pos)
            if size > limit:
                oversized = FrameError(
                    RejectReason.OVERSIZED,
                    f"frame length {size} is above the limit of {limit} bytes",
                )
                break
            if end - pos - 4 < size:
                break
            spans.append((pos + 4, pos + 4 + size))
            pos += 4 + size
        out: list[dict[str, Any]] = []
        if pos:
            out, self.error = _decode_frames(bytes(buffer[:pos]), spans, self.hmac_key)
        if self.error is None:
            self.error = oversized
        if self.error is not None:
            buffer.clear()
        elif pos:
            del buffer[:pos]
        return out


def decode_datagram(
    packet: bytes, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, hmac_key: bytes | None = None
) -> dict[str, Any]:
    """Decode one datagram: a length-prefixed frame (what CPython sends), or a bare payload."""
    limit = max_frame_size + (DIGEST_SIZE if hmac_key is not None else 0)
    if len(packet) >= 4 and packet[0] == 0:
        (size,) = _length.unpack_from(packet, 0)
        if size > limit:
            raise FrameError(RejectReason.OVERSIZED, f"frame length {size} is above {limit}")
        if size != len(packet) - 4:
            raise FrameError(
                RejectReason.MALFORMED,
                f"datagram length prefix says {size} bytes, {len(packet) - 4} follow",
            )
        return decode_payload(packet[4:], hmac_key=hmac_key)
    if len(packet) > limit:
        raise FrameError(
            RejectReason.OVERSIZED, f"datagram of {len(packet)} bytes is above {limit}"
        )
    return decode_payload(packet, hmac_key=hmac_key)


#: The attributes ``LogRecord.__init__`` sets: a dict holding all of them needs no __init__.
_INIT_FIELDS = frozenset(logging.makeLogRecord({}).__dict__)
_new_record = object.__new__


def make_record(data: dict[str, Any]) -> logging.LogRecord:
    """The LogRecord of a validated dict: what ``logging.makeLogRecord(data)`` returns.

    When the dict carries every attribute ``LogRecord.__init__`` would set (what the stdlib's
    and loopsink's senders send) and no custom record factory is installed, the record is
    built without running ``__init__``, whose values would all be overwritten: much faster
    (see docs/performance.md), same attributes. Otherwise ``makeLogRecord`` does it.
    """
    if data.keys() >= _INIT_FIELDS and logging.getLogRecordFactory() is logging.LogRecord:
        record: logging.LogRecord = _new_record(logging.LogRecord)
        record.__dict__.update(data)
        return record
    _fill_level(data)
    return logging.makeLogRecord(data)
