"""Immutable snapshots of a queue's counters (``LogQueue.stats``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["DropReason", "QueueStats", "SinkStats"]


class DropReason:
    """The reasons a record can be dropped, as they appear in ``stats.dropped``."""

    #: The queue (or a sink's backlog) was full and the newest record was refused.
    FULL = "full"
    #: The queue (or a sink's backlog) was full and its oldest record was evicted.
    EVICTED = "evicted"
    #: ``put`` was called after the queue was closed.
    CLOSED = "closed"
    #: ``aclose(timeout)`` ran out of time before the record was written.
    DEADLINE = "deadline"


def _frozen(mapping: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType({k: v for k, v in sorted(mapping.items()) if v})


@dataclass(frozen=True)
class SinkStats:
    """Counters of one sink, as seen by the queue that feeds it."""

    #: The sink's ``name`` (or its class name when it has none).
    name: str
    #: Records handed to the sink that it wrote or sent without an error.
    emitted: int
    #: Calls to the sink's ``handleError`` (one per failed record).
    errors: int
    #: Records waiting in the sink's backlog or being written right now.
    pending: int
    #: The largest ``pending`` seen since the queue started.
    high_water: int
    #: Records this sink never received, by reason (see :class:`DropReason`).
    dropped: Mapping[str, int] = field(default_factory=dict)
    #: ``repr`` of the last exception the sink reported, or ``None``.
    last_error: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dropped", _frozen(self.dropped))


@dataclass(frozen=True)
class QueueStats:
    """A snapshot of a :class:`~loopsink.LogQueue`'s counters."""

    #: Records accepted by ``put``.
    enqueued: int
    #: Records refused or lost before reaching any sink, by reason (see :class:`DropReason`).
    dropped: Mapping[str, int]
    #: One entry per sink, in the order the sinks were given.
    sinks: tuple[SinkStats, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "dropped", _frozen(self.dropped))

    @property
    def dropped_total(self) -> int:
        """Every record lost, at the queue or at any sink."""
        return sum(self.dropped.values()) + sum(sum(s.dropped.values()) for s in self.sinks)
