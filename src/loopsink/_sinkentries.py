"""Sink entries: build loopsink sinks from dictConfig-style entries, naming the key on error.

The ``sinks`` option of a configured bridge (see :mod:`loopsink._config`) is a list, or a
mapping from sink name to entry; an entry reads like a dictConfig handler entry (``class``
or ``()``, ``level``, ``formatter``, ``filters``, ``.``, and the sink's own constructor
options). Building runs once, at configuration time, and every problem raises a
``ValueError`` whose message says which key was wrong, the value, and the fix.

The sinks built here outlive one queue: when a configured bridge's queue closes (the app's
loop ended), the bridge runs its next queue over the same sinks. :func:`reopen_appending`
is what such a sink needs before the next queue opens it again.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._handler import AsyncHandler

__all__ = ["build_sinks", "did_you_mean", "handler_label", "reopen_appending"]

#: Keys of a sink entry that are not constructor arguments (as in a dictConfig handler).
_SINK_META_KEYS = ("class", "()", "level", "formatter", "filters", "name", ".")

#: Options that dictConfig turns from lists into tuples for the stdlib's handlers; YAML and
#: JSON have no tuples, and the sinks keep the stdlib's tuple-typed signatures.
_TUPLE_OPTIONS = frozenset({"address", "mailhost", "credentials", "secure"})


# -- building sinks from entries ---------------------------------------------------------------


def build_sinks(spec: Any, *, where: str = "") -> tuple[AsyncHandler, ...]:
    """Turn the ``sinks`` option (a list or a name → entry mapping) into sink objects."""
    configurator = getattr(spec, "configurator", None)
    items: list[tuple[str, str | None, Any]] = []
    if isinstance(spec, Mapping):
        for key in list(spec):
            if not isinstance(key, str):
                raise ValueError(f"{where}sinks: sink names must be strings, got {key!r}")
            items.append((f"sinks.{key}", key, spec[key]))
    elif isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
        # index access: dictConfig's ConvertingList resolves ext:// and cfg:// on __getitem__
        items.extend((f"sinks[{index}]", None, spec[index]) for index in range(len(spec)))
    elif isinstance(spec, AsyncHandler):
        items.append(("sinks", None, spec))
    else:
        raise ValueError(
            f"{where}sinks must be a list of sink entries or a mapping from sink name to "
            f"entry, got {spec!r}"
        )
    if not items:
        raise ValueError(f"{where}sinks is empty; declare at least one sink")
    return tuple(
        _build_sink(entry, path=path, name=name, where=where, configurator=configurator)
        for path, name, entry in items
    )


def reopen_appending(sinks: Sequence[AsyncHandler]) -> None:
    """Make file sinks declared with ``mode="w"`` reopen their file with ``"a"`` from now on.

    Called for each new queue over a configuration's sinks. The file was truncated when the
    first queue opened it; the next queue reopens it after the previous one closed it, and
    must append, or it would erase what the previous queue wrote. A file sink is one with a
    ``baseFilename`` and a ``mode``, as the stdlib's ``FileHandler`` and its subclasses have.
    """
    for sink in sinks:
        if getattr(sink, "mode", None) == "w" and hasattr(sink, "baseFilename"):
            sink.mode = "a"  # type: ignore[attr-defined]


def _build_sink(
    entry: Any, *, path: str, name: str | None, where: str, configurator: Any
) -> AsyncHandler:
    if isinstance(entry, AsyncHandler):
        if name is not None and entry.name is None:
            entry.name = name
        return entry
    if isinstance(entry, logging.Handler):
        raise ValueError(
            f"{where}{path}: {entry!r} is a stdlib handler; use its loopsink twin "
            f"(loopsink.{type(entry).__name__}) as a sink"
        )
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"{where}{path} must be a sink entry such as {{'class': 'FileHandler', "
            f"'filename': 'app.log'}} or a sink object, got {entry!r}"
        )
    configurator = getattr(entry, "configurator", configurator)
    keys = list(entry)
    for key in keys:
        if not isinstance(key, str):
            raise ValueError(f"{where}{path}: option names must be strings, got {key!r}")
    if "()" in entry:
        factory = entry["()"]
        if not callable(factory):
            factory = _import(str(factory), f"{where}{path}.()")
        label = getattr(factory, "__name__", repr(factory))
        check_signature = False
    elif "class" in entry:
        factory = _resolve_sink_class(entry["class"], f"{where}{path}.class")
        label = factory.__name__
        check_signature = True
    else:
        raise ValueError(
            f"{where}{path} has no 'class': name the sink, e.g. 'class': 'FileHandler'"
        )
    here = f"{where}{path} ({label})"
    kwargs: dict[str, Any] = {}
    for key in keys:
        if key in _SINK_META_KEYS:
            continue
        if not key.isidentifier():
            raise ValueError(f"{here}: {key!r} is not a valid option name")
        kwargs[key] = _plain(
            entry[key], key, path=f"{where}{path}.{key}", configurator=configurator
        )
    if check_signature:
        _check_options(factory, kwargs, here)
    try:
        sink = factory(**kwargs)
    except Exception as exc:
        raise ValueError(f"{here}: {exc}") from exc
    if not isinstance(sink, AsyncHandler):
        raise ValueError(f"{here} made {sink!r}, which is not a loopsink sink (AsyncHandler)")
    sink_name = entry["name"] if "name" in entry else name
    if sink_name is not None:
        sink.name = str(sink_name)
    if "level" in entry:
        try:
            sink.setLevel(entry["level"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{here}.level: {exc}") from exc
    if entry.get("formatter") is not None:
        sink.setFormatter(
            _lookup(
                entry["formatter"],
                "formatters",
                logging.Formatter,
                f"{here}.formatter",
                configurator,
            )
        )
    filters = entry.get("filters")
    if filters is not None:
        if isinstance(filters, (str, bytes)) or not isinstance(filters, Sequence):
            raise ValueError(f"{here}.filters must be a list of filter names, got {filters!r}")
        for index in range(len(filters)):
            sink.addFilter(
                _lookup(filters[index], "filters", None, f"{here}.filters[{index}]", configurator)
            )
    props = entry.get(".")
    if props is not None:
        if not isinstance(props, Mapping):
            raise ValueError(f"{here}.'.' must map attribute names to values, got {props!r}")
        for attr in list(props):
            setattr(sink, attr, props[attr])
    return sink


def _resolve_sink_class(value: Any, where: str) -> type[AsyncHandler]:
    if isinstance(value, type):
        cls: Any = value
    elif isinstance(value, str):
        if "." not in value:
            cls = _known_sinks().get(value)
            if cls is None:
                offered = _offered_sinks()
                raise ValueError(
                    f"{where}: unknown sink {value!r}{did_you_mean(value, offered)}; "
                    f"loopsink's sinks are {', '.join(offered)}, or give a "
                    f"dotted path to your own AsyncHandler subclass"
                )
        else:
            cls = _import(value, where)
    else:
        raise ValueError(f"{where} must be a sink class name such as 'FileHandler', got {value!r}")
    if isinstance(cls, type) and issubclass(cls, AsyncHandler):
        return cls
    if isinstance(cls, type) and issubclass(cls, logging.Handler):
        twin = cls.__name__ if cls.__name__ in _known_sinks() else None
        hint = f"; use loopsink.{twin}" if twin else ""
        raise ValueError(
            f"{where}: {value!r} is a stdlib handler, not a loopsink sink{hint}. To keep it a "
            f"stdlib handler, declare it as a dictConfig handler of its own"
        )
    raise ValueError(f"{where}: {value!r} is not a loopsink sink (an AsyncHandler subclass)")


def _known_sinks() -> dict[str, type[AsyncHandler]]:
    """Every sink class loopsink has, by name (all of them resolve by name)."""
    from . import handlers

    found: dict[str, type[AsyncHandler]] = {}
    for attr in getattr(handlers, "__all__", ()):
        obj = getattr(handlers, attr, None)
        if isinstance(obj, type) and issubclass(obj, AsyncHandler):
            found[attr] = obj
    return found


#: Sinks that resolve by name but are not offered in "loopsink's sinks are ...": a base
#: class to subclass, not to configure, and sinks of another platform.
_BASE_CLASSES = frozenset({"BaseRotatingHandler"})
_WINDOWS_ONLY = frozenset({"NTEventLogHandler"})


def _offered_sinks() -> list[str]:
    """The sink names worth suggesting here: concrete, and usable on this platform."""
    hidden = _BASE_CLASSES if sys.platform == "win32" else _BASE_CLASSES | _WINDOWS_ONLY
    return sorted(name for name in _known_sinks() if name not in hidden)


def _import(dotted: str, where: str) -> Any:
    module_name, _, attr = dotted.rpartition(".")
    # "loopsink.FileHandler" and "loopsink.handlers.FileHandler" both work; so does any
    # "package.module.Name" that imports.
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{where}: cannot import {module_name!r} for {dotted!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        public = [name for name in dir(module) if not name.startswith("_")]
        raise ValueError(
            f"{where}: module {module_name!r} has no attribute {attr!r}{did_you_mean(attr, public)}"
        ) from None


def _check_options(factory: Callable[..., Any], kwargs: Mapping[str, Any], here: str) -> None:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to check against
        return
    accepted = [
        p.name
        for p in params.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    ]
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in accepted:
                raise ValueError(
                    f"{here}: unknown option {key!r}{did_you_mean(key, accepted)}; "
                    f"it takes {', '.join(accepted) or 'no options'}"
                )
    missing = [
        p.name
        for p in params.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.default is p.empty
        and p.name not in kwargs
    ]
    if missing:
        raise ValueError(f"{here}: missing required option {missing[0]!r}")


def _lookup(value: Any, section: str, kind: type | None, where: str, configurator: Any) -> Any:
    """Resolve a formatter or filter given by its name in the dictConfig sections."""
    if not isinstance(value, str):
        if kind is not None and not isinstance(value, kind):
            raise ValueError(f"{where} must be a {kind.__name__} or a name, got {value!r}")
        return value
    if configurator is None:
        raise ValueError(
            f"{where}: names such as {value!r} work inside logging.config.dictConfig; from "
            f"Python pass the object itself"
        )
    defined = configurator.config.get(section, {})
    if value not in defined:
        names = ", ".join(map(repr, defined)) or "none"
        raise ValueError(
            f"{where}: no {section[:-1]} named {value!r}{did_you_mean(value, list(defined))} "
            f"in the {section!r} section (defined: {names})"
        )
    return defined[value]


def _plain(value: Any, key: str, *, path: str, configurator: Any) -> Any:
    """Unwrap dictConfig's converting containers; build nested sink entries (a target)."""
    if isinstance(value, Mapping):
        if "class" in value or "()" in value:
            return _build_sink(value, path=path, name=None, where="", configurator=configurator)
        return {k: value[k] for k in list(value)}
    if isinstance(value, (list, tuple)):
        items = [value[i] for i in range(len(value))]
        if key in _TUPLE_OPTIONS or isinstance(value, tuple):
            return tuple(items)
        return items
    return value


def handler_label(*values: Any) -> str:
    """``handler 'name': `` when dictConfig is building us, from its converting containers.

    A dict or list option (``sinks``, or a misspelt ``sink``) is one of dictConfig's
    converting containers, whose parent is the handler's entry, keyed by the handler's name.
    """
    for value in values:
        parent = getattr(value, "parent", None)
        key = getattr(parent, "key", None)
        if isinstance(key, str):
            return f"handler {key!r}: "
    return ""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a misspelt ``value``, or ``""``."""
    close = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
