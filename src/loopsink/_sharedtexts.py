"""Formatting shared by the sinks of one queue: each record formatted once per formatter.

A queue hands every record to every sink, and each sink formats it on the event loop. When
several sinks use the same formatter (the same object, or equal stdlib formatters)
and nothing of their own can change the record first (no filter, no ``format`` override),
they would all compute the same text. The queue gives its sinks one
:class:`FormatSharing`; :meth:`AsyncHandler.format_lines <loopsink.AsyncHandler.format_lines>`
asks it for the :class:`SharedTexts` of the sink's formatter, and the first sink to reach a
record keeps the text for the others.

"The same record" is the identity of an object the lanes share: the record itself when the
lanes pass it on as it was put, else its attribute dict (each lane wraps the record in its
own :class:`~loopsink._record.QueuedRecord` around that one dict). A kept text pins that
object, so its ``id`` cannot be reused by another record while the text is kept. A text
goes once every other sink that will get the record (by its level) has taken it, and the
oldest go once a group keeps :data:`SHARED_TEXTS_BOUND`: a sink whose backlog dropped a
record, or one whose ``emit_batch`` stopped before formatting, leaves nothing behind for
long. A sink that finds no text formats the record itself, as it does alone.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._context import run_each_in_context
from ._record import QueuedRecord

if TYPE_CHECKING:
    from ._handler import AsyncHandler

__all__ = ["SHARED_TEXTS_BOUND", "FormatSharing", "SharedTexts", "sharing_key"]

#: The most texts one group of sinks keeps for its slower members (guarded by the bench
#: row "Many sinks with one format": sinks more than this many records apart format alone).
SHARED_TEXTS_BOUND = 4096

_LogRecord = logging.LogRecord
_Queued = QueuedRecord
_STYLES = (logging.PercentStyle, logging.StrFormatStyle, logging.StringTemplateStyle)
_CONVERTERS = (time.localtime, time.gmtime)
#: Steps of a Formatter that an instance attribute could replace.
_STEPS = ("format", "formatMessage", "formatTime", "usesTime", "formatException", "formatStack")


def sharing_key(formatter: logging.Formatter) -> object:
    """What decides the text ``formatter`` gives: sinks whose keys are equal share texts.

    For an exact ``logging.Formatter`` with nothing replaced on the instance, its settings:
    two such formatters with the same format string, style, date format and converter give
    the same text for any record. Anything else (a subclass, or one with ``defaults``) is
    its own key: a subclass may keep state, read the time or a context variable, so only
    sinks that share the very object share its texts.
    """
    if type(formatter) is not logging.Formatter:
        return formatter
    if any(step in formatter.__dict__ for step in _STEPS):
        return formatter
    style = formatter._style
    if type(style) not in _STYLES or getattr(style, "_defaults", None):
        return formatter
    if not set(style.__dict__) <= {"_fmt", "_defaults"}:
        return formatter
    converter = formatter.converter
    if converter not in _CONVERTERS:
        return formatter
    return (
        type(style),
        style._fmt,
        formatter.datefmt,
        converter,
        formatter.default_time_format,
        formatter.default_msec_format,
    )


class SharedTexts:
    """The texts one group of sinks (one formatter) keeps for each other, by record."""

    __slots__ = ("born", "kept", "left", "members", "order", "pins", "texts")

    def __init__(self) -> None:
        #: the sinks that format with this group's formatter (they joined in format_lines)
        self.members: list[AsyncHandler] = []
        #: by the id of the record's shared object: its text, that object (pinned, so the
        #: id stays its own), and how many other sinks have yet to take it
        self.texts: dict[int, str] = {}
        self.pins: dict[int, object] = {}
        self.left: dict[int, int] = {}
        #: when each text was kept (a count of keeps), and the ids in the order kept, to let
        #: the oldest go: an id whose text was taken may be another record's since, so an
        #: id goes only if its text was kept when the id was (the oldest: kept - len + 1)
        self.born: dict[int, int] = {}
        self.order: deque[int] = deque()
        self.kept = 0

    def __len__(self) -> int:
        return len(self.texts)

    def clear(self) -> None:
        self.texts.clear()
        self.pins.clear()
        self.left.clear()
        self.born.clear()
        self.order.clear()

    def others(self, sink: AsyncHandler) -> Callable[[int], int]:
        """How many members other than ``sink`` get a record of a given level."""
        levels = sorted(member.level for member in self.members if member is not sink)
        if not levels[-1:] or not levels[-1]:  # no levels set: every member gets every record
            count = len(levels)
            return lambda levelno: count
        return lambda levelno: bisect_right(levels, levelno)

    def take(self, record: logging.LogRecord) -> str | None:
        """The text another member kept for ``record``, if any (taken: counted down)."""
        kind = type(record)
        if kind is _LogRecord:
            key = id(record)
        elif kind is _Queued:
            key = id(record.__dict__)
        else:
            return None
        text = self.texts.get(key)
        if text is not None:
            left = self.left[key] - 1
            if left > 0:
                self.left[key] = left
            else:
                del self.texts[key], self.left[key], self.pins[key], self.born[key]
        return text

    def keep(self, record: logging.LogRecord, text: str, others: int) -> None:
        """Keep ``text``, the text of ``record``, for ``others`` other members."""
        kind = type(record)
        if others <= 0:
            return
        if kind is _LogRecord:
            pin: object = record
        elif kind is _Queued:
            pin = record.__dict__
        else:
            return
        key = id(pin)
        texts = self.texts
        if key in texts:  # the same record twice in a row: its first text stands
            return
        texts[key] = text
        self.pins[key] = pin
        self.left[key] = others
        born = self.kept = self.kept + 1
        self.born[key] = born
        order = self.order
        order.append(key)
        if len(order) > SHARED_TEXTS_BOUND:
            when = born - len(order) + 1
            oldest = order.popleft()
            if self.born.get(oldest) == when:
                del texts[oldest], self.left[oldest], self.pins[oldest], self.born[oldest]

    def format(
        self,
        records: Sequence[logging.LogRecord],
        many: Callable[[Sequence[logging.LogRecord]], list[str]],
        in_contexts: bool,
        others: Callable[[int], int],
    ) -> list[str]:
        """The texts of ``records``: those kept by other members, the rest made by ``many``
        (inside each record's context if ``in_contexts``) and kept for the others.

        Raises what ``many`` raises; the texts taken before that are then made again by
        the caller, one record at a time.
        """
        texts = self.texts
        result: list[Any] = []
        add = result.append
        missing: list[logging.LogRecord] = []
        where: list[int] = []
        for index, record in enumerate(records):
            kind = type(record)
            if kind is _LogRecord:
                key = id(record)
            elif kind is _Queued:
                key = id(record.__dict__)
            else:
                key = -1
            text = texts.get(key)
            if text is not None:
                left = self.left[key] - 1
                if left > 0:
                    self.left[key] = left
                else:
                    del texts[key], self.left[key], self.pins[key], self.born[key]
                add(text)
            else:
                add(None)
                missing.append(record)
                where.append(index)
        if not missing:
            return result
        made = run_each_in_context(missing, many) if in_contexts else many(missing)
        keep = self.keep
        for index, record, text in zip(where, missing, made):
            result[index] = text
            keep(record, text, others(record.levelno))
        return result


class FormatSharing:
    """One queue's shared formatting: a :class:`SharedTexts` per distinct formatter in use.

    The queue makes one and sets it on each of its sinks (:attr:`AsyncHandler.format_sharing
    <loopsink.AsyncHandler.format_sharing>`); a sink joins the group of its formatter when it
    formats, and leaves it when its formatter changes, when it gains a filter, or when the
    queue lets it go. Touched only on the loop's thread.
    """

    __slots__ = ("groups",)

    def __init__(self) -> None:
        self.groups: dict[object, SharedTexts] = {}

    def join(self, sink: AsyncHandler, key: object) -> SharedTexts:
        """The group of ``key``, with ``sink`` a member of it."""
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = SharedTexts()
        if sink not in group.members:
            group.members.append(sink)
        return group

    def leave(self, sink: AsyncHandler, key: object) -> None:
        """``sink`` no longer formats with ``key``'s formatter: its texts go (a member fewer
        would leave some never taken), and the group with its last member."""
        group = self.groups.get(key)
        if group is None or sink not in group.members:
            return
        group.members.remove(sink)
        group.clear()
        if not group.members:
            del self.groups[key]

    def kept(self) -> int:
        """How many texts the groups keep now (for tests and diagnostics)."""
        return sum(len(group) for group in self.groups.values())
