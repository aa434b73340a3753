"""AsyncHandler: the base class of every sink.

It mirrors ``logging.Handler`` (level, filters, formatter, name, ``handleError``) so that
formatters, filters and records from the stdlib work unchanged, but every method that may
wait on I/O is a coroutine. Sinks are driven by a :class:`~loopsink.LogQueue` worker, which
hands them records in batches through :meth:`AsyncHandler.emit_batch`.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio

from ._compat import current_loop_token
from ._context import in_context, run_each_in_context
from ._executor import executor_of
from ._fastformat import BatchFormat, batch_format, one_by_one
from ._record import OwnRecord, keep_context, plain_text
from ._sharedtexts import FormatSharing, SharedTexts, sharing_key
from ._turns import formatting_steps
from ._writebehind import WriteBehind

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["AsyncHandler", "emit_holding_lock", "take_lock"]

P = TypeVar("P")

#: Sink classes whose per-record work is their filters and formatter and nothing a user
#: can override (exact classes: a subclass may add per-record code of its own).
FORMATTER_ONLY_SINKS: set[type] = set()
#: Formatter classes that read no context variable (exact classes, for the same reason).
CONTEXT_FREE_FORMATTERS: set[type] = {logging.Formatter}


class AsyncHandler(logging.Filterer):
    """Base class for async sinks: a ``logging.Handler`` whose I/O methods are coroutines.

    Subclasses override :meth:`emit` (one record) and, when they can write many records at
    once, :meth:`emit_batch`. Both may raise: the caller routes the failure to
    :meth:`handleError`, counts it, and carries on with the next records.

    The documented methods are the whole contract between a sink and the queue, the same
    for the built-in sinks and a user's (the "Writing a sink" guide): :meth:`format_lines`
    formats a batch in slices; :meth:`write_behind` hands the output to the sink's own I/O
    thread (:meth:`write_blocking`, :meth:`run_in_io_thread`), held for a short linger that
    the queue watches (:attr:`linger_watched`, :meth:`linger_deadline`, :meth:`write_held`)
    and written by :meth:`flush` and :meth:`close`; a write that fails later is reported and
    counted (:meth:`report_late_failure`, :attr:`late_failures`). Sinks of one queue that
    format with the same formatter share the texts :meth:`format_lines` makes
    (:attr:`format_sharing`).

    A sink's I/O is serialised: the queue worker, :meth:`handle`, and the queue's calls to
    :meth:`flush` and :meth:`close` take the sink's lock, so subclasses never lock themselves.

    Args:
        level: records below this level are ignored by the sink when a queue, a bridge or
            a ``QueueListener(respect_handler_level=True)`` delivers them (default: all
            records). :meth:`handle`, like the stdlib's, leaves levels to its caller.
    """

    #: The most records a queue worker hands to one :meth:`emit_batch` call.
    max_batch_size: int = 1024

    def __init__(self, level: int | str = logging.NOTSET) -> None:
        super().__init__()
        self._name: str | None = None
        self.level = logging._checkLevel(level)  # type: ignore[attr-defined]
        self.formatter: logging.Formatter | None = None
        self._closed = False
        self._lock: anyio.Lock | None = None
        self._lock_loop: object = None
        self._error_count = 0
        self._last_error: str | None = None
        #: records counted as emitted whose write failed later (see :attr:`late_failures`)
        self._late_failures = 0
        #: storage of :attr:`linger_watched`
        self._lingering = False
        #: the held output and I/O thread of :meth:`write_behind`, made on first use
        self._io: WriteBehind | None = None
        self._fast_format: tuple[tuple[Any, ...], BatchFormat, object] | None = None
        #: storage of :attr:`format_sharing`
        self._sharing: FormatSharing | None = None
        #: the sharing key and group this sink joined (see _shared_texts)
        self._format_group: tuple[object, SharedTexts] | None = None

    # -- the logging.Handler surface -------------------------------------------------------

    @property
    def name(self) -> str | None:
        return self._name

    @name.setter
    def name(self, value: str | None) -> None:
        self._name = value

    def get_name(self) -> str | None:
        return self._name

    def set_name(self, name: str | None) -> None:
        self._name = name

    def setLevel(self, level: int | str) -> None:
        """Set the threshold below which this sink ignores records."""
        self.level = logging._checkLevel(level)  # type: ignore[attr-defined]

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        """Use ``fmt`` (an ordinary ``logging.Formatter``) to turn records into text."""
        self.formatter = fmt

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` with this sink's formatter, or the stdlib's default one.

        The formatter runs inside the context of the record's log call (see
        :meth:`run_in_context`), as a stdlib handler's formatter does.
        """
        fmt: logging.Formatter = self.formatter or logging._defaultFormatter  # type: ignore[attr-defined]
        try:
            return in_context(record, fmt.format, record)
        except Exception:
            if type(record) is not OwnRecord:
                raise
            return plain_text(record)  # loopsink's own warning, to a formatter made for others

    def needs_context(self) -> bool:
        """Whether anything this sink runs per record may read context variables.

        The bridge captures the ``contextvars.Context`` of every log call; carrying it along
        and entering it costs a little per record, which a queue whose sinks all answer
        ``False`` skips. The default answers ``True`` for every sink but a built-in one
        with no filter and the stdlib's (or loopsink's JSON) formatter. Override it to
        return ``False`` only if neither your filters, your formatter nor your sink's own
        per-record code reads a context variable (a request id, a trace span).
        """
        if self.filters or type(self) not in FORMATTER_ONLY_SINKS:
            return True
        formatter = self.formatter
        return formatter is not None and type(formatter) not in CONTEXT_FREE_FORMATTERS

    def run_in_context(self, record: logging.LogRecord, func: Callable[..., P], *args: Any) -> P:
        """Call ``func(*args)`` inside the ``contextvars.Context`` of ``record``'s log call.

        The bridge captures the context of every log call; :meth:`format`, the filters and
        the built-in sinks' encoders already run inside it. Call this for any other code
        a sink runs for one record that may read context variables (a request id, the
        current trace span). Records without a captured context call ``func`` directly.
        """
        return in_context(record, func, *args)

    def accepts(self, record: logging.LogRecord) -> logging.LogRecord | None:
        """Apply this sink's level, then its filters; return the record to emit, or ``None``.

        What the stdlib's ``Logger.callHandlers`` (the level) and ``Handler.handle`` (the
        filters) do together: the queue and the bridge deliver through it, so a sink
        attached to a queue still ignores records below its level.
        """
        if record.levelno < self.level:
            return None
        if not self.filters:
            return record
        return self.apply_filters(record)

    def apply_filters(self, record: logging.LogRecord) -> logging.LogRecord | None:
        """Run this sink's filters (not its level); return the record to emit, or ``None``.

        CPython 3.12+'s rule on every Python: a filter may return a replacement record,
        which the later filters and the sink then see instead of the original. The
        filters run inside the context of the record's log call, as a stdlib handler's do.
        """
        return self._filtered([record])[0]

    def _filtered(self, records: Sequence[logging.LogRecord]) -> list[logging.LogRecord | None]:
        """Apply the filters to each record, inside its log call's context."""
        return run_each_in_context(records, self._filter_run)

    def _filter_run(self, records: Sequence[logging.LogRecord]) -> list[logging.LogRecord | None]:
        verdicts: list[logging.LogRecord | None] = []
        for record in records:
            current: logging.LogRecord | None = record
            for item in self.filters:
                check: Any = getattr(item, "filter", item)  # a Filter, or a plain callable
                verdict: object = check(current)
                if not verdict:
                    current = None
                    break
                if isinstance(verdict, logging.LogRecord):
                    current = verdict
            if current is None or current is record:
                verdicts.append(current)
            else:
                verdicts.append(keep_context(current, record))
        return verdicts

    def accept_batch(self, records: Sequence[logging.LogRecord]) -> list[logging.LogRecord]:
        """The records of ``records`` that pass this sink's level and filters, in order.

        What :meth:`accepts` does for each, with the filters run inside each record's log
        call context, entered once per run of records that share it.
        """
        level = self.level
        if level:
            records = [r for r in records if r.levelno >= level]
        if not self.filters:
            return list(records)
        return [r for r in self._filtered(records) if r is not None]

    def handleError(self, record: logging.LogRecord) -> None:
        """Report an exception raised while emitting ``record``; call it from an ``except``.

        As in the stdlib, the traceback and the record's origin go to stderr only when
        ``logging.raiseExceptions`` is true, and nothing is raised. Every call is counted
        in the sink's ``errors`` statistic.
        """
        origin = (
            f"Logged from file {record.pathname}, line {record.lineno}"
            f" (logger {record.name!r}, level {record.levelname})\n"
        )
        try:
            origin += f"Message: {record.msg!r}\nArguments: {record.args!r}\n"
        except Exception:  # a __repr__ that raises must not hide the original error
            origin += "Unable to print the message and arguments.\n"
        self._report(origin)

    def report_error(self, action: str) -> None:
        """Report an exception raised by a step that has no record, such as ``flush``.

        Call it from an ``except`` block; like :meth:`handleError` it is counted and printed
        to stderr only when ``logging.raiseExceptions`` is true.
        """
        self._report(f"While the sink was doing: {action}\n")

    def _report(self, context: str) -> None:
        exc = sys.exc_info()[1]
        self._error_count += 1
        self._last_error = repr(exc) if exc is not None else "unknown error"
        if not (logging.raiseExceptions and sys.stderr):
            return
        lines = ["--- Logging error ---\n"]
        if exc is not None:
            lines.extend(traceback.format_exception(type(exc), exc, exc.__traceback__))
        lines.append(f"Sink: {self.describe()}\n{context}")
        try:
            sys.stderr.write("".join(lines))
        except (OSError, ValueError):  # stderr is gone or closed: nowhere left to report to
            pass

    def describe(self) -> str:
        """A short label for this sink, used in stats and error reports."""
        return self._name or type(self).__name__

    # -- the async surface -----------------------------------------------------------------

    async def handle(self, record: logging.LogRecord) -> logging.LogRecord | Literal[False] | None:
        """Filter ``record`` and emit it now, under the sink's lock.

        This is the direct path, without a queue, and it is the stdlib's ``Handler.handle``
        (CPython 3.12+): it applies the filters, not the sink's level (the caller checks
        levels, as ``Logger.callHandlers`` does; ``MemoryHandler`` hands every buffered
        record to its target). Returns the record emitted (a filter's replacement, if
        any) or ``False`` when a filter rejected it. A failure goes to :meth:`handleError`.
        """
        accepted = self.apply_filters(record) if self.filters else record
        if accepted is None:
            return False
        async with self.io_lock():
            try:
                await self.emit(accepted)
            except Exception:
                self.handleError(accepted)
        return accepted

    async def emit(self, record: logging.LogRecord) -> None:
        """Write or send one record. Subclasses must override it (or :meth:`emit_batch`)."""
        raise NotImplementedError(
            f"{type(self).__name__} must override emit() or emit_batch() to be a sink"
        )

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        """Write or send several records, in order.

        The default emits them one by one, reporting each failure to :meth:`handleError`.
        Sinks that can do better (one write, one request) override it; an exception raised
        out of an override is reported once per record of the batch.
        """
        for record in records:
            try:
                await self.emit(record)
            except Exception:  # noqa: PERF203 - one failed record must not stop the others
                self.handleError(record)

    async def flush(self) -> None:
        """Push out anything the sink buffers, and wait until it is out.

        The default writes what :meth:`write_behind` holds and waits until the I/O thread
        has written it (a sink that never calls it has nothing to push). A sink that
        overrides ``flush`` calls ``await super().flush()`` first.
        """
        if self._io is not None:
            await self._io.drain()

    async def close(self) -> None:
        """Release the sink's resources. Idempotent; subclasses call ``super().close()``.

        The default writes what :meth:`write_behind` holds, waits for it, and lets the
        sink's I/O thread go. A sink that must close something on that thread (a file it
        opened there) does it with :meth:`run_in_io_thread` before calling
        ``super().close()``.
        """
        if self._io is not None:
            await self._io.drain()
            self._io.stop()
        self._closed = True

    async def aclose(self) -> None:
        """Alias of :meth:`close`, for ``contextlib.aclosing`` and anyio's conventions."""
        await self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        label = f" {self._name}" if self._name else ""
        return f"<{type(self).__name__}{label} ({logging.getLevelName(self.level)})>"

    # -- helpers for sinks and the queue ---------------------------------------------------

    def _after_fork(self) -> None:
        """In a forked child, before a fresh queue drives this sink (see ``_fork``).

        What the parent's thread was doing did not come along: its lock is forgotten (a
        new one is made for the child's loop), and a sink that holds output for a thread
        of its own drops what it held, which the parent writes. Sinks with such state
        extend this.
        """
        self._lock = None
        self._lock_loop = None
        self._lingering = False
        if self._io is not None:
            self._io.discard_after_fork()

    def io_lock(self) -> anyio.Lock:
        """The lock that serialises this sink's I/O.

        Made on first use in each event loop: a sink may outlive one loop and serve the next
        (a configured bridge moves from the app's loop to a thread at exit), and a lock
        belongs to the loop that made it.
        """
        loop = current_loop_token()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = anyio.Lock(), loop
        return self._lock

    @property
    def error_count(self) -> int:
        """How many times :meth:`handleError` has been called on this sink."""
        return self._error_count

    @property
    def last_error(self) -> str | None:
        """``repr`` of the last exception reported through :meth:`handleError`."""
        return self._last_error

    def report_batch_failure(self, records: Sequence[logging.LogRecord]) -> None:
        """Report the exception being handled for every record of a failed batch.

        The traceback is printed once (for the first record), every record is counted.
        Call it from an ``except`` block.
        """
        if not records:
            return
        self.handleError(records[0])
        self._error_count += len(records) - 1

    # -- the sink contract: output handed to the sink's I/O thread, held for a linger -------

    async def write_behind(self, data: str | bytes, records: Sequence[logging.LogRecord]) -> None:
        """Hand ``data``, the output of ``records``, to this sink's I/O thread, to be written.

        The thread passes it to :meth:`write_blocking`, in the order handed over, so the
        event loop never waits on the write. While a queue drives the sink
        (:attr:`linger_watched`), ``data`` is held for a short linger and joined with the
        batches that follow into one write; the queue writes it when the linger is over
        (:meth:`linger_deadline`, :meth:`write_held`), and :meth:`flush` and :meth:`close`
        write it at once. Called directly (no queue), it returns once ``data`` is written.

        ``records`` count as emitted when this returns; a write that fails later on the
        thread is reported through :meth:`report_late_failure`, which takes them back out
        of ``emitted`` and counts them under ``errors`` (see :attr:`late_failures`).

        Args:
            data: formatted output; ``str`` or ``bytes``, the same type on every call
                (:meth:`write_blocking` gets held pieces joined into one).
            records: the records ``data`` holds, at least one (usually the second item of
                what :meth:`format_lines` returns).
        """
        if not isinstance(data, (str, bytes)):
            raise TypeError(
                f"{type(self).__name__}.write_behind() takes str or bytes, got "
                f"{type(data).__name__}: format the records first (see format_lines())"
            )
        if not records:
            raise ValueError(
                f"{type(self).__name__}.write_behind() needs the records the data holds (at "
                "least one), to report them if the write fails; for output of no record, "
                "use run_in_io_thread()"
            )
        output = self._io_thread()
        due = output.hold(data, len(records), records[0])
        if due or not self._lingering:
            await output.push()
        if not self._lingering:  # nobody would come back for held output: write it now
            await output.drain()

    def write_blocking(self, data: Any) -> None:
        """Write ``data`` for real: override it when the sink uses :meth:`write_behind`.

        Runs on the sink's I/O thread, never on the event loop, so it may block (a file's
        ``write``, a socket's ``sendall``, an ``sqlite3`` insert). It gets what
        :meth:`write_behind` was handed, several pieces joined into one ``str`` or
        ``bytes`` (an override may annotate ``data`` with the one type its sink hands
        over). An exception it raises is reported as a late failure of the records that
        data holds.
        """
        raise NotImplementedError(
            f"{type(self).__name__} hands output to write_behind(), so it must override "
            "write_blocking(data) to write it (it runs on the sink's I/O thread)"
        )

    async def run_in_io_thread(self, func: Callable[..., P], *args: Any) -> P:
        """Run the blocking call ``func(*args)`` on this sink's I/O thread; return its result.

        It runs after everything handed to :meth:`write_behind` so far is written, on the
        same thread as :meth:`write_blocking`, so a sink never touches its file or
        connection from two threads: open, ``fsync``, rename and close through it. An
        exception ``func`` raises is raised here.
        """
        result: P = await self._io_thread().run(func, *args)
        return result

    def _io_thread(self) -> WriteBehind:
        output = self._io
        if output is None:
            output = self._io = WriteBehind(
                self, self.write_blocking, f"loopsink-{type(self).__name__}"
            )
        return output

    @property
    def linger_watched(self) -> bool:
        """Whether a queue worker watches this sink's held output (set by the queue).

        A :class:`~loopsink.LogQueue` sets it while its worker drives the sink. The worker
        then calls :meth:`write_held` once :meth:`linger_deadline` has passed and no later
        batch wrote the output first, and calls :meth:`flush` and :meth:`close` when the
        queue closes. While it is false (the sink is called by :meth:`handle`, by a
        ``MemoryHandler``, by the app) nobody would come back for held output, so a sink
        must write before :meth:`emit` or :meth:`emit_batch` returns. :meth:`write_behind`
        follows this rule by itself; a sink that holds output its own way reads it.
        """
        return self._lingering

    @linger_watched.setter
    def linger_watched(self, watched: bool) -> None:
        self._lingering = bool(watched)

    def linger_deadline(self) -> float | None:
        """When the output this sink holds must be written (``time.monotonic()``); ``None``: none.

        A queue worker asks when it goes idle, and at the end of each turn while batches
        keep coming, and calls :meth:`write_held` once that time has come (and again if
        more is held by then), or once a little before it when the worker's own next look
        would come later; if the output is still held after that call (the last write
        still runs), the worker waits for the deadline given here. While a deadline at
        most a linger away is given, a few records logged after a small batch wait for it
        and come in the batch just before :meth:`write_held` (they would only wait in the
        held output). The default answers for what :meth:`write_behind` holds; a sink that
        holds output its own way overrides this and :meth:`write_held` together.
        """
        return self._io.deadline() if self._io is not None else None

    async def write_held(self) -> None:
        """Start writing the output held since the last batch; called by the queue's worker.

        Called under :meth:`io_lock` once :meth:`linger_deadline` has passed. It hands the
        held output to the I/O thread and returns without waiting for the write (that is
        :meth:`flush`'s job); an exception it raises is reported with :meth:`report_error`.
        """
        if self._io is not None:
            await self._io.push()

    @property
    def unwritten(self) -> int:
        """How many records counted as emitted are not written yet: held by
        :meth:`write_behind` for its linger, or in a write the I/O thread has not finished.

        A queue whose close runs out of time names them beside the records it still had
        pending (lost if the process exits then). A sink that holds output its own way
        overrides it.
        """
        return 0 if self._io is None else self._io.unwritten

    @property
    def late_failures(self) -> int:
        """How many records counted as emitted were lost later, by a write in the background.

        Raised by :meth:`report_late_failure`. A queue takes them back out of the sink's
        ``emitted`` statistic (they are counted under ``errors`` too).
        """
        return self._late_failures

    def report_late_failure(self, exc: BaseException, first: logging.LogRecord, count: int) -> None:
        """Report a background write of ``count`` records, starting with ``first``, that failed.

        For sinks that hand a batch to a writer thread and return before it is written: the
        queue counted the batch as emitted, so it is taken back out of ``emitted`` and
        counted under ``errors``, and the traceback printed once, as for a failed batch.
        Call it on the event loop's thread: the queue reads both counters there around each
        batch, and a report from another thread could fall between the two reads.
        """
        self._late_failures += count
        try:
            raise exc
        except BaseException:
            self.handleError(first)
        self._error_count += count - 1

    async def emit_each_in_thread(
        self,
        records: Sequence[logging.LogRecord],
        prepare: Callable[[logging.LogRecord], P],
        send: Callable[[P], object],
    ) -> None:
        """Prepare each record on the loop, then ``send`` them all on the sink's I/O thread.

        For sinks whose I/O is a blocking call per record (a stdlib queue's ``put``, the
        Windows event log): one trip to a thread per batch, and each failure, in ``prepare``
        or in ``send``, goes to :meth:`handleError` for its own record.
        """
        prepared: list[tuple[logging.LogRecord, P]] = []
        for record in records:
            try:
                prepared.append((record, prepare(record)))
            except Exception:  # noqa: PERF203 - one bad record must not cost the others
                self.handleError(record)
        if not prepared:
            return
        items = [item for _, item in prepared]
        failures = await executor_of(self).run(_send_each, send, items)
        for index, exc in failures:
            try:
                raise exc
            except Exception:  # noqa: PERF203 - reported from an except block, with its traceback
                self.handleError(prepared[index][0])

    def _batch_formatter(self) -> BatchFormat:
        """The fast equivalent of :meth:`format`, rebuilt only when the formatter changes.

        Kept between batches so that what it caches (the time text, the applied stable
        fields) serves the next batch too.
        """
        return self._formatting()[1]

    def _formatting(self) -> tuple[tuple[Any, ...], BatchFormat, object]:
        """The formatter's fingerprint, its :class:`BatchFormat`, and its sharing key
        (``None``: the sink formats in its own way, and shares with no other sink)."""
        if type(self).format is not AsyncHandler.format:  # the sink formats in its own way
            return ((), one_by_one(self.format), None)
        formatter: logging.Formatter = self.formatter or logging._defaultFormatter  # type: ignore[attr-defined]
        fingerprint = (
            formatter,
            type(formatter),
            tuple(formatter.__dict__.values()),
            formatter.converter,
            getattr(formatter._style, "_fmt", None),
        )
        cached = self._fast_format
        if cached is not None and cached[0] == fingerprint:
            return cached
        cached = self._fast_format = (fingerprint, batch_format(formatter), sharing_key(formatter))
        return cached

    @property
    def format_sharing(self) -> FormatSharing | None:
        """The queue's shared formatting, set by the queue while its worker drives the sink.

        A :class:`~loopsink.LogQueue` with several sinks sets it on each of them, and
        :meth:`format_lines` then formats each record once for all the sinks of the queue
        that use the same formatter (the same object, or equal stdlib formatters): the
        first sink to reach a record keeps its text for the others. Only where the text is
        sure to be the same: a sink with filters, or one that overrides :meth:`format`,
        formats alone, and so does a record of a type of its own. Nothing in a sink has to
        change to take part; setting it to ``None`` leaves the sharing.
        """
        return self._sharing

    @format_sharing.setter
    def format_sharing(self, sharing: FormatSharing | None) -> None:
        joined = self._format_group
        if joined is not None and self._sharing is not None:
            self._sharing.leave(self, joined[0])
        self._format_group = None
        self._sharing = sharing

    def _shared_texts(self, sharing: FormatSharing, key: object) -> SharedTexts | None:
        """The group of sinks formatting with ``key``'s formatter, if another sink is in it
        (joined or left as the sink's formatter and filters are now)."""
        if self.filters:
            key = None
        joined = self._format_group
        if joined is None or joined[0] != key:
            if joined is not None:
                sharing.leave(self, joined[0])
            if key is None:
                self._format_group = None
                return None
            joined = self._format_group = (key, sharing.join(self, key))
        group = joined[1]
        return group if len(group.members) > 1 else None

    def format_many(self, records: Sequence[logging.LogRecord]) -> list[str]:
        """The texts :meth:`format` gives for ``records``, in one call.

        For the stdlib's ``logging.Formatter`` and :class:`~loopsink.JSONFormatter` what a
        batch shares (the time text, the fields of one call site) is worked out once, and
        the text is shared with the queue's other sinks that format alike (see
        :attr:`format_sharing`); each record's formatter runs in the record's context when
        :meth:`needs_context` says so. It raises what :meth:`format` raises for the first
        record that fails: call :meth:`format` record by record to find it. It does not
        yield: call it with a few records at a time, as :meth:`format_lines` does.
        """
        _, fmt, key = self._formatting()
        sharing = self._sharing
        shared = None if sharing is None else self._shared_texts(sharing, key)
        try:
            return self._format_chunk(records, fmt, shared, self.needs_context())
        except Exception:
            return [self.format(record) for record in records]

    def _format_chunk(
        self,
        records: Sequence[logging.LogRecord],
        fmt: BatchFormat,
        shared: SharedTexts | None,
        in_contexts: bool,
    ) -> list[str]:
        if shared is not None:
            return shared.format(records, fmt.many, in_contexts)
        if in_contexts:
            return run_each_in_context(records, fmt.many)
        return fmt.many(records)

    async def format_lines(
        self, records: Sequence[logging.LogRecord], terminator: str
    ) -> tuple[str, list[logging.LogRecord]]:
        """Format a batch into one string, each record followed by ``terminator``.

        Returns the text and the records that formatted; a record whose formatting raises
        goes to :meth:`handleError` and is left out. A large batch is formatted in slices that
        take turns with the other tasks (``loopsink._turns``), so it never stalls them.
        """
        texts: list[str] = []
        failed: set[int] = set()
        _, fmt, key = self._formatting()
        in_contexts = self.needs_context()
        sharing = self._sharing
        shared = None if sharing is None else self._shared_texts(sharing, key)
        async for start, chunk in formatting_steps(records):
            before = len(texts)
            try:  # most chunks never raise
                texts.extend(self._format_chunk(chunk, fmt, shared, in_contexts))
            except Exception:
                del texts[before:]  # again one by one, to find the records that raise
                for index, record in enumerate(chunk, start):
                    try:
                        texts.append(in_context(record, fmt.one, record))
                    except Exception:  # noqa: PERF203 - one bad record must not cost the others
                        if type(record) is OwnRecord:
                            texts.append(plain_text(record))
                            continue
                        self.handleError(record)
                        failed.add(index)
        if not texts:
            return "", []
        text = terminator.join(texts) + terminator
        if not failed:
            return text, list(records)
        return text, [r for i, r in enumerate(records) if i not in failed]


def _send_each(send: Callable[[P], object], items: Sequence[P]) -> list[tuple[int, Exception]]:
    """Runs in a worker thread: ``send`` every item, collecting failures instead of raising."""
    failures: list[tuple[int, Exception]] = []
    for index, item in enumerate(items):
        try:
            send(item)
        except Exception as exc:  # noqa: PERF203 - one bad record must not cost the others
            failures.append((index, exc))
    return failures


async def take_lock(lock: anyio.Lock) -> None:
    """Acquire a sink's :meth:`~AsyncHandler.io_lock` for a queue's worker or a receiver.

    The lock is taken without a checkpoint when it is free, as it nearly always is: a
    checkpoint costs a whole pass of the loop per batch. When another task holds it, this
    waits for it. (``io_lock`` itself stays a plain lock: a caller's ``handle()`` in a
    loop must still give the other tasks their turn.)
    """
    try:
        lock.acquire_nowait()
    except anyio.WouldBlock:
        await lock.acquire()


async def emit_holding_lock(
    sink: AsyncHandler, records: Sequence[logging.LogRecord], lock: anyio.Lock
) -> None:
    """``sink.emit_batch(records)`` holding ``lock`` (the sink's :meth:`~AsyncHandler.io_lock`,
    taken with :func:`take_lock`); a failure is reported for every record, never raised."""
    await take_lock(lock)
    try:
        await sink.emit_batch(records)
    except Exception:
        sink.report_batch_failure(records)
    finally:
        lock.release()
