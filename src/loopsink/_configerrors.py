"""Say a configuration error again on the last line, when it is what ended the program.

``logging.config.dictConfig`` catches whatever a handler factory raises and raises its own
``ValueError('Unable to configure handler ...')`` from it, so when a bad ``--log-config``
file stops uvicorn (or any program), the traceback ends with that generic line and the
message that says what is wrong and how to fix it sits in the middle of the output. A
factory cannot change dictConfig's exception; what it can do is remember the errors it
raised and, when the interpreter exits *because of one of them* (Python keeps the uncaught
exception in ``sys.last_value``), repeat the message on stderr as the final line.

The same hook covers a typo in the factory's own dotted name (``loopsink.config.bridg``),
which dictConfig resolves before any loopsink code runs: it suggests the name meant.
"""

from __future__ import annotations

import atexit
import importlib
import re
import sys
import threading

__all__ = ["fatal_message", "remember", "report_fatal_error"]

#: The last few errors raised by the dictConfig factory (identity is what matters).
_RAISED: list[BaseException] = []
_LOCK = threading.Lock()
_KEEP = 4

_CANNOT_RESOLVE = re.compile(r"^Cannot resolve '(loopsink(?:\.[A-Za-z_]\w*)+)'")


def remember(exc: BaseException) -> None:
    """Note that the factory raised ``exc`` (so that the exit hook can recognise it)."""
    with _LOCK:
        _RAISED.append(exc)
        del _RAISED[:-_KEEP]


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not item for item in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _suggest_dotted(dotted: str) -> str | None:
    """``loopsink.config.bridg`` -> ``loopsink.config.bridge`` when one name is close."""
    import difflib
    import pkgutil

    parts = dotted.split(".")
    found: object = importlib.import_module(parts[0])
    for index in range(1, len(parts)):
        name = parts[index]
        if hasattr(found, name):
            found = getattr(found, name)
            continue
        try:  # a submodule not imported yet
            found = importlib.import_module(".".join(parts[: index + 1]))
            continue
        except ImportError:
            pass
        choices = {attr for attr in dir(found) if not attr.startswith("_")}
        search = getattr(found, "__path__", None)
        if search is not None:
            choices.update(info.name for info in pkgutil.iter_modules(search))
        close = difflib.get_close_matches(name, sorted(choices), n=1)
        if not close:
            return None
        return ".".join([*parts[:index], close[0], *parts[index + 1 :]])
    return None


def fatal_message(exc: BaseException) -> str | None:
    """The line to print at exit for the uncaught ``exc``, or None when it is not ours."""
    chain = _chain(exc)
    with _LOCK:
        raised = list(_RAISED)
    head = str(exc)
    for item in chain[1:]:
        if any(item is mine for mine in raised):
            # the factory's messages start with "handler 'name': "; dictConfig's with
            # "Unable to configure handler 'name'": say it once
            text = str(item)
            prefix = re.match(r"^handler '[^']*': ", text)
            if prefix and head.startswith("Unable to configure handler"):
                text = text[prefix.end() :]
            return f"loopsink: {head}: {text}"
        if isinstance(item, ValueError):
            found = _CANNOT_RESOLVE.match(str(item))
            if found:
                meant = _suggest_dotted(found.group(1))
                hint = f" (did you mean {meant!r}?)" if meant else ""
                return f"loopsink: {head}: cannot resolve {found.group(1)!r}{hint}"
    return None


def report_fatal_error() -> None:
    """At exit: when a loopsink configuration error ended the program, repeat its message."""
    exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if not isinstance(exc, BaseException):
        return
    try:
        line = fatal_message(exc)
        if line is not None:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
    except Exception:  # at exit, never fail on the way out
        pass


atexit.register(report_fatal_error)
