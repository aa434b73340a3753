"""The public surface: what `loopsink` exports, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys

import loopsink
import loopsink.testing


def public_names(module: object) -> list[str]:
    return sorted(
        name
        for name in vars(module)
        if not name.startswith("_")
        and not isinstance(getattr(module, name), type(sys))  # submodules
        and name not in {"annotations"}
    )


def test_all_lists_every_public_name_sorted() -> None:
    assert loopsink.__all__ == sorted(loopsink.__all__, key=str)
    assert sorted(set(loopsink.__all__) - {"__version__"}) == public_names(loopsink)


def test_testing_module_surface() -> None:
    assert loopsink.testing.__all__ == [
        "DEFAULT_TIMEOUT",
        "Captured",
        "CapturingSink",
        "capture_records",
    ]


def test_star_import_works() -> None:
    namespace: dict[str, object] = {}
    exec("from loopsink import *", namespace)
    assert set(loopsink.__all__) <= set(namespace)


def test_classes_show_the_public_module() -> None:
    for name in loopsink.__all__:
        obj = getattr(loopsink, name)
        if isinstance(obj, type):
            assert obj.__module__ == "loopsink", name


def test_every_stdlib_handler_has_a_twin() -> None:
    import logging.handlers

    stdlib = {
        name
        for module in (logging, logging.handlers)
        for name, obj in vars(module).items()
        if isinstance(obj, type)
        and issubclass(obj, logging.Handler)
        and name not in {"Handler", "_StderrHandler", "PlaceHolder"}
    } | {"QueueListener"}
    missing = sorted(stdlib - set(loopsink.__all__))
    assert not missing, f"no loopsink twin for {missing}"


def test_import_loads_no_optional_dependency() -> None:
    code = (
        "import sys, loopsink; "
        "print(sorted(m for m in ('httpx', 'aiosmtplib', 'aiohttp', 'fastapi', 'trio', 'aiofiles') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_sink_contract_is_public_and_documented() -> None:
    """What the queue calls on a sink, and what a sink needs to match the built-ins
    (docs/guides/writing-a-sink.md): public names, each with a docstring."""
    contract = [
        "emit",
        "emit_batch",
        "max_batch_size",
        "format_lines",
        "format_many",
        "run_in_context",
        "needs_context",
        "accept_batch",
        "io_lock",
        "write_behind",
        "write_blocking",
        "run_in_io_thread",
        "linger_watched",
        "format_sharing",
        "linger_deadline",
        "write_held",
        "flush",
        "close",
        "handleError",
        "report_batch_failure",
        "report_error",
        "report_late_failure",
        "late_failures",
        "unwritten",
        "error_count",
        "last_error",
        "describe",
    ]
    undocumented = [
        name
        for name in contract
        if name != "max_batch_size" and not getattr(loopsink.AsyncHandler, name).__doc__
    ]
    assert not undocumented, undocumented
    assert isinstance(loopsink.AsyncHandler.max_batch_size, int)
