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
