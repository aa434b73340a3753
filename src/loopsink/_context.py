"""Running a sink's per-record code in the context of the record's log call, and bound fields.

The stdlib's handlers run filters and formatters inside the caller's
``contextvars.Context``: a filter that reads a request id from a ``ContextVar`` sees the
caller's value. A sink runs later, in a queue worker, so the bridge captures the context at
the call (``contextvars.copy_context()``, O(1)) and the sink enters it for that record.

Entering costs a little, so records are taken in *runs*: consecutive records whose contexts
are equal (the same object, or the same variables with the same values, which a task that
logs several lines between two ``ContextVar.set`` calls produces) are handled inside one
entry. Each entry is into a fresh copy of the context (``Context.copy()``, O(1)): the same
context may be wanted by the loop and by a sink's thread at once, and a filter that sets a
variable must not change what the next sink sees.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import Context, ContextVar
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

from ._record import record_context

__all__ = [
    "Binding",
    "bind",
    "bound_fields",
    "context_runs",
    "in_context",
    "run_each_in_context",
]

T = TypeVar("T")
R = TypeVar("R")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
#: The fields bound with :func:`bind`, as an immutable mapping: binding makes a new one.
_FIELDS: ContextVar[Mapping[str, Any]] = ContextVar("loopsink_fields", default=_EMPTY)
#: Inside an entered record context: that context (so nested calls do not enter it again).
_ENTERED: ContextVar[Context | None] = ContextVar("loopsink_entered", default=None)


class _Usage:
    """Whether :func:`bind` was ever called: until then the queue skips looking for fields."""

    bound = False


usage = _Usage()


def _enter(context: Context, func: Callable[..., R], args: tuple[Any, ...]) -> R:
    _ENTERED.set(context)
    return func(*args)


def in_context(record: logging.LogRecord, func: Callable[..., R], *args: Any) -> R:
    """Call ``func(*args)`` inside the context of ``record``'s log call.

    Records that carry no context (made without a bridge), and calls already inside that
    context, call ``func`` directly.
    """
    context = getattr(record, "_loopsink_context", None)
    if context is None or _ENTERED.get() is context:
        return func(*args)
    result: R = context.copy().run(_enter, context, func, args)
    return result


def context_runs(
    records: Sequence[logging.LogRecord],
) -> Iterator[tuple[Context | None, Sequence[logging.LogRecord]]]:
    """Split ``records`` into runs of consecutive records that share one context."""
    count = len(records)
    if not count:
        return
    contexts = list(map(record_context, records))
    start = 0
    current = contexts[0]
    for index in range(1, count):
        context = contexts[index]
        if context is current or (
            context is not None and current is not None and context == current
        ):
            continue
        yield current, records[start:index]
        start, current = index, context
    yield current, records[start:]


def _run_whole(
    context: Context, func: Callable[[Sequence[T]], list[R]], run: Sequence[T]
) -> list[R]:
    _ENTERED.set(context)
    return func(run)


def run_each_in_context(
    records: Sequence[logging.LogRecord],
    func: Callable[[Sequence[logging.LogRecord]], list[R]],
) -> list[R]:
    """``func(records)`` (one result per record), run inside each record's own context.

    ``func`` is called once per run of records that share a context, so a batch whose
    records all come from one context enters it once.
    """
    entered = _ENTERED.get()
    results: list[R] = []
    for context, run in context_runs(records):
        if context is None or context is entered:
            results.extend(func(run))
        else:
            results.extend(context.copy().run(_run_whole, context, func, run))
    return results


# -- bound fields ----------------------------------------------------------------------------


class Binding:
    """The fields bound by one :func:`bind` call: undo them with :meth:`reset`, or ``with``.

    Like a ``contextvars.Token`` (which is a context manager since Python 3.14): binding
    happens at the call, and leaving the ``with`` block, or ``reset()``, restores the fields
    that were bound before.
    """

    __slots__ = ("_token",)

    def __init__(self, token: contextvars.Token[Mapping[str, Any]]) -> None:
        self._token = token

    def reset(self) -> None:
        """Restore the fields bound before this binding (in the same context).

        Raises:
            RuntimeError: the binding was already reset.
            ValueError: called in a different context than the one it was bound in.
        """
        _FIELDS.reset(self._token)

    def __enter__(self) -> Binding:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.reset()

    def __repr__(self) -> str:
        return f"<loopsink.Binding {dict(_FIELDS.get())!r}>"


def bind(**fields: Any) -> Binding:
    """Bind ``fields`` to the current context: every record logged in it carries them.

    Each field becomes an attribute of the records logged in this context (and in tasks and
    threads started from it), as if passed with ``extra=``: ``%(request_id)s`` in a format
    string, a key in :class:`~loopsink.JSONFormatter`'s output. A field never replaces an
    attribute the record already has (a standard one, or one given with ``extra=``).
    Fields add up: binding again adds to (or replaces) the fields bound before.

    Use it as a context manager (``with loopsink.bind(request_id=rid): ...``) or keep the
    :class:`Binding` and call its ``reset()``, e.g. in middleware.

    Raises:
        ValueError: a field name is one of the ``LogRecord`` attributes (``name``, ``msg``…).
    """
    clash = sorted(set(fields) & _RESERVED)
    if clash:
        raise ValueError(
            f"cannot bind {', '.join(map(repr, clash))}: a LogRecord attribute of that name "
            f"exists; choose another field name"
        )
    usage.bound = True
    current = _FIELDS.get()
    merged = MappingProxyType({**current, **fields}) if current else MappingProxyType(fields)
    return Binding(_FIELDS.set(merged))


def bound_fields() -> Mapping[str, Any]:
    """The fields bound in the current context (a read-only mapping)."""
    return _FIELDS.get()


def apply_bound_fields(records: Sequence[logging.LogRecord]) -> None:
    """Give each record the fields bound in its log call's context (queue worker)."""
    for record in records:
        context = getattr(record, "_loopsink_context", None)
        if context is None:
            continue
        fields = context.get(_FIELDS)
        if not fields:
            continue
        state = record.__dict__
        missing = [key for key in fields if key not in state]
        if not missing:
            continue
        # The fast path's record shares its attribute dict with the caller's record: give
        # this one a dict of its own rather than change what other handlers hold.
        state = dict(state)
        for key in missing:
            state[key] = fields[key]
        record.__dict__ = state


_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}
