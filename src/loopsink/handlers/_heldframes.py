"""The frames a network sink holds for a linger, as the file sinks hold their text.

Each send costs the sender the wake-up of its peer (measured in docs/performance.md), so
where records trickle in, a few per pass of the event loop, a send per batch is most of what
such a sink costs the application. Under a queue
(:attr:`~loopsink.AsyncHandler.linger_watched`) the socket, datagram and syslog sinks keep
the frames of each batch here and send what they hold once :data:`~loopsink._tuning.LINGER`
is over or enough wait (:meth:`FramesHoldingSink._held_full`): on a stream in one write, on
a datagram socket as a burst of datagrams, which mostly find the peer still awake. They go
through the public contract of held output (``linger_deadline``, ``write_held``, ``flush``,
``close``, ``unwritten``). Frames held count as emitted; a send that fails for good reports
them with ``report_late_failure``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from time import monotonic

from .._handler import AsyncHandler
from .._tuning import HELD_DATAGRAMS, HELD_FRAMES_BYTES, LINGER

__all__ = ["FramesHoldingSink"]

_Batch = tuple[list[bytes], list[logging.LogRecord]]


class FramesHoldingSink(AsyncHandler):
    """A sink whose frames wait here for a linger; a subclass sends them (:meth:`_deliver`).

    A subclass's ``emit_batch`` hands each batch's frames to :meth:`_hand_over`, which holds
    them (under a queue, on a stream) or sends them at once, after any still held, so that
    the order is kept.
    """

    def __init__(self, level: int | str = logging.NOTSET) -> None:
        super().__init__(level)
        self._held: list[_Batch] = []
        self._held_bytes = 0
        self._held_count = 0  # frames
        self._held_since = 0.0
        #: records of the send of held frames under way
        self._sending = 0

    async def _deliver(
        self, frames: list[bytes], records: list[logging.LogRecord], *, late: bool = False
    ) -> None:
        """Send ``frames`` (of ``records``); report what fails for good with
        :meth:`_report_unsent`."""
        raise NotImplementedError

    def _report_unsent(
        self, exc: BaseException, records: Sequence[logging.LogRecord], *, late: bool
    ) -> None:
        """Report records whose send failed for good: as a failed batch, or ``late`` as
        records the queue already counted as emitted (held frames)."""
        if late:
            self.report_late_failure(exc, records[0], len(records))
        else:
            self.report_batch_failure(records)

    async def _hand_over(
        self, frames: list[bytes], records: list[logging.LogRecord], *, hold: bool
    ) -> None:
        """Hold a batch's frames, or send them now, after any frames still held."""
        if hold:
            await self._hold(frames, records)
        else:
            await self._send_held()
            await self._deliver(frames, records)

    def _held_frames_limit(self) -> int:
        """Held frames are sent once they reach this many bytes, whatever the linger."""
        return HELD_FRAMES_BYTES

    def _frames_are_datagrams(self) -> bool:
        """Whether each frame is a send of its own (a datagram), not part of one write."""
        return False

    def _held_full(self) -> bool:
        """Whether the frames held are enough to send now, whatever the linger: a write's
        worth of bytes, or for datagrams a burst of one step of the loop."""
        if self._frames_are_datagrams() and self._held_count >= HELD_DATAGRAMS:
            return True
        return self._held_bytes >= self._held_frames_limit()

    async def _hold(self, frames: list[bytes], records: Sequence[logging.LogRecord]) -> None:
        """Keep a batch's frames; send everything held once the linger is over or enough
        wait (:meth:`_held_full`)."""
        if not self._held:
            self._held_since = monotonic()
        self._held.append((frames, list(records)))
        self._held_bytes += sum(map(len, frames))
        self._held_count += len(frames)
        if self._held_full() or monotonic() - self._held_since >= LINGER:
            await self._send_held()

    async def _send_held(self) -> None:
        """Send every frame held, in one call of :meth:`_deliver`.

        A send cancelled half-way (a queue's close out of time) holds its frames again, so
        that ``close()`` may still send them and :attr:`unwritten` names them meanwhile
        (frames already written may then go twice: at least once, as after a reset).
        """
        if not self._held:
            return
        held, self._held, self._held_bytes, self._held_count = self._held, [], 0, 0
        if len(held) == 1:
            frames, records = held[0]
        else:
            frames = [frame for batch, _ in held for frame in batch]
            records = [record for _, batch_records in held for record in batch_records]
        self._sending = len(records)
        try:
            await self._deliver(frames, records, late=True)
        except Exception as exc:  # what the subclass did not report: all of it failed
            self._report_unsent(exc, records, late=True)
        except BaseException:
            self._held.insert(0, (frames, records))
            self._held_bytes += sum(map(len, frames))
            self._held_count += len(frames)
            self._held_since = monotonic()
            raise
        finally:
            self._sending = 0

    def linger_deadline(self) -> float | None:
        """When the frames held since the first batch of the linger must be sent."""
        if self._held:
            return self._held_since + LINGER
        return super().linger_deadline()

    async def write_held(self) -> None:
        """Send the frames held for the linger (called by the queue once it is over)."""
        await self._send_held()
        await super().write_held()

    async def flush(self) -> None:
        """Send the frames held for the linger now."""
        await self._send_held()
        await super().flush()

    @property
    def unwritten(self) -> int:
        """Records counted as emitted whose frames are held, or in a send not yet done."""
        held = sum(len(records) for _, records in self._held)
        return super().unwritten + held + self._sending

    def _after_fork(self) -> None:
        super()._after_fork()
        self._held, self._held_bytes, self._held_count = [], 0, 0  # the parent sends those
        self._sending = 0
