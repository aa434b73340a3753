"""The exceptions loopsink raises.

Runtime I/O failures inside sinks never raise into the application: they go to
``handleError`` as in the stdlib. What is raised is misuse of a lifecycle or a
missing optional dependency::

    LoopsinkError
    ├── QueueClosedError      (also RuntimeError)  the queue was used after aclose()
    ├── QueueNotRunningError  (also RuntimeError)  an operation needs a running queue
    └── MissingExtraError     (also ImportError)   a sink's optional dependency is absent
        └── NTEventLogUnavailableError             not Windows, or pywin32 missing

Bad arguments are plain ``ValueError`` / ``TypeError``, as in the stdlib.
"""

from __future__ import annotations

__all__ = ["LoopsinkError", "MissingExtraError", "QueueClosedError", "QueueNotRunningError"]


class LoopsinkError(Exception):
    """Root of every exception that loopsink defines."""


class QueueClosedError(LoopsinkError, RuntimeError):
    """A :class:`~loopsink.LogQueue` was started or flushed after it was closed."""


class QueueNotRunningError(LoopsinkError, RuntimeError):
    """An operation needs the queue's workers, which only run inside ``async with queue``."""


class MissingExtraError(LoopsinkError, ImportError):
    """A sink needs an optional dependency that is not installed.

    The message names the ``pip install 'loopsink[extra]'`` command that fixes it.
    """

    def __init__(self, what: str, module: str, extra: str) -> None:
        super().__init__(
            f"{what} needs the {module!r} package, which is not installed: "
            f"pip install 'loopsink[{extra}]'",
            name=module,
        )
        self.extra = extra


def require(module: str, *, what: str, extra: str) -> object:
    """Import an optional dependency, or fail with the install command in the message."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(what, module, extra) from exc
