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
from collections import deque
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ._context import run_each_in_context
from ._record import QueuedRecord
from ._tuning import SHARED_TEXTS_BOUND

if TYPE_CHECKING:
    from ._handler import AsyncHandler

__all__ = ["SHARED_TEXTS_BOUND", "FormatSharing", "SharedTexts", "sharing_key"]


_LogRecord = logging.LogRecord
_levelno = attrgetter("levelno")
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
    """The texts one group of sinks (one formatter) keeps for each other, by record.

    A text is kept, with the object it was found by pinned, until every other member that
    will get the record (by its level) has taken it, or until :data:`SHARED_TEXTS_BOUND`
    newer ones push it out (oldest first): the group never holds more, whatever its sinks
    drop or never get to, and what a slower sink will want waits for it as long as it lags
    less than that. Kept by id: ints and strings, no object for the garbage collector to
    track per record.
    """

    __slots__ = (
        "batch_keys",
        "batch_left",
        "batch_pins",
        "batch_texts",
        "kept",
        "kept_at",
        "members",
        "order",
        "order_stamps",
        "pins",
        "texts",
        "wanted",
    )

    def __init__(self) -> None:
        #: the sinks that format with this group's formatter (they joined in format_lines)
        self.members: list[AsyncHandler] = []
        #: by the id of the record's shared object: its text, and that object (pinned, so
        #: that the id is its own as long as the text is kept)
        self.texts: dict[int, str] = {}
        self.pins: dict[int, object] = {}
        #: by the same id: how many other members will still take the text
        self.wanted: dict[int, int] = {}
        #: the ids in the order kept, and when (a text taken by every member leaves its id
        #: behind, until the bound pushes it out: the stamp tells it from a later text kept
        #: under the same id, once another record has that id)
        self.order: deque[int] = deque()
        self.order_stamps: deque[int] = deque()
        self.kept_at: dict[int, int] = {}
        self.kept = 0
        #: The last batch a member formatted whole, kept whole: the other members of a
        #: queue get the same batches in the same pass as a rule, and take it by one
        #: comparison of its keys instead of a lookup per record. Its keys (None: no batch
        #: kept), texts, records (pinned) and how many other members will still take it.
        self.batch_keys: list[int] | None = None
        self.batch_texts: list[str] = []
        self.batch_pins: list[logging.LogRecord] = []
        self.batch_left = 0

    def __len__(self) -> int:
        return len(self.texts) + (len(self.batch_texts) if self.batch_keys is not None else 0)

    def clear(self) -> None:
        self._drop_batch()
        self.texts.clear()
        self.pins.clear()
        self.wanted.clear()
        self.order.clear()
        self.order_stamps.clear()
        self.kept_at.clear()

    def format(
        self,
        records: Sequence[logging.LogRecord],
        many: Callable[[Sequence[logging.LogRecord]], list[str]],
        in_contexts: bool,
    ) -> list[str]:
        """The texts of ``records``: those other members kept, the rest made by ``many``
        (inside each record's context if ``in_contexts``) and kept for the others.

        Raises what ``many`` raises (the caller then formats the records one at a time).
        """
        texts, pins, wanted, kept_at = self.texts, self.pins, self.wanted, self.kept_at
        keys = [
            id(record)
            if type(record) is _LogRecord
            else id(record.__dict__)
            if type(record) is _Queued
            else 0  # a record of a type of its own: never shared
            for record in records
        ]
        if self.batch_keys is not None:
            if keys == self.batch_keys:  # the batch another member made, whole
                whole = self.batch_texts[:]
                self.batch_left -= 1
                if self.batch_left <= 0:
                    self._drop_batch()
                return whole
            self._spill_batch()  # another batch: its texts wait per record
        found: list[Any] = list(map(texts.get, keys))
        for key, text in zip(keys, found, strict=True):
            if text is not None:  # taken: once every member has, the text goes
                left = wanted.get(key, 1) - 1
                if left > 0:
                    wanted[key] = left
                elif key in texts:
                    del texts[key], pins[key], wanted[key], kept_at[key]
        if None not in found:
            return found
        where = [index for index, text in enumerate(found) if text is None]
        missing = [records[index] for index in where]
        made = run_each_in_context(missing, many) if in_contexts else many(missing)
        if len(self.members) < 2:  # the others left while this sink's batch was under way
            for index, text in zip(where, made, strict=True):
                found[index] = text
            return found
        members = self.members
        if (
            len(where) == len(records)
            and len(records) + len(self.texts) <= SHARED_TEXTS_BOUND
            and 0 not in keys
        ):
            # a batch no member has formatted yet: kept whole if every other member will
            # take every record of it (no member's level above any record's)
            if max(m.level for m in members) <= min(map(_levelno, records)):
                self.batch_keys, self.batch_texts = keys, made[:]
                self.batch_pins, self.batch_left = list(records), len(members) - 1
                return made
        self._keep(where, missing, made, found)
        return found

    def _keep(
        self,
        where: list[int],
        missing: Sequence[logging.LogRecord],
        made: list[str],
        found: list[Any],
    ) -> None:
        """Keep the texts ``made`` for ``missing`` (at ``where`` in ``found``) per record."""
        texts, pins, wanted, kept_at = self.texts, self.pins, self.wanted, self.kept_at
        order, stamps = self.order, self.order_stamps
        members = self.members
        takers: dict[int, int] = {}  # by level: how many other members will take such a record
        for index, record, text in zip(where, missing, made, strict=True):
            found[index] = text
            levelno = record.levelno
            others = takers.get(levelno)
            if others is None:
                others = takers[levelno] = sum(m.level <= levelno for m in members) - 1
            if others <= 0:
                continue
            kind = type(record)
            if kind is _LogRecord:
                pin: object = record
            elif kind is _Queued:
                pin = record.__dict__
            else:
                continue
            key = id(pin)
            if key not in texts:  # (the same record twice in a batch: kept once)
                texts[key] = text
                pins[key] = pin
                wanted[key] = others
                self.kept += 1
                kept_at[key] = self.kept
                order.append(key)
                stamps.append(self.kept)
        if len(order) > SHARED_TEXTS_BOUND:
            pop, pop_stamp = order.popleft, stamps.popleft
            for _ in range(len(order) - SHARED_TEXTS_BOUND):
                oldest, stamp = pop(), pop_stamp()
                if kept_at.get(oldest) == stamp:  # still that text: not taken by all yet
                    del texts[oldest], pins[oldest], wanted[oldest], kept_at[oldest]

    def _spill_batch(self) -> None:
        """The batch kept whole meets another one: keep its texts per record instead, for
        the members that have yet to take them in batches of their own."""
        keys, records, made = self.batch_keys, self.batch_pins, self.batch_texts
        left = self.batch_left
        self._drop_batch()
        if keys is None or left <= 0 or len(self.members) < 2:
            return
        found: list[Any] = [None] * len(records)
        self._keep(list(range(len(records))), records, made, found)
        if left < len(self.members) - 1:  # some members took the batch already
            wanted = self.wanted
            for key in keys:
                if key in wanted:
                    wanted[key] = min(wanted[key], left)

    def _drop_batch(self) -> None:
        self.batch_keys, self.batch_texts, self.batch_pins, self.batch_left = None, [], [], 0


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
        """``sink`` no longer formats with ``key``'s formatter. The texts stay for the
        members left, if they are several; a member alone keeps none (nobody would take
        them), and the group goes with its last member."""
        group = self.groups.get(key)
        if group is None or sink not in group.members:
            return
        group.members.remove(sink)
        if len(group.members) < 2:
            group.clear()
        if not group.members:
            del self.groups[key]

    def kept(self) -> int:
        """How many texts the groups keep now (for tests and diagnostics)."""
        return sum(len(group) for group in self.groups.values())
