"""The seams of the dictConfig glue: option parsing (pure) apart from hosting (running).

``_configspec`` turns a bridge's options into a checked :class:`BridgeSpec` without making a
queue, a thread or a live bridge; ``_hosting`` runs a queue from such a spec; the helpers
that ``_config`` shares with the sink entries are public names of ``_sinkentries``.
"""

from __future__ import annotations

import ast
import logging
import threading
from pathlib import Path

import pytest

from loopsink import _config, _configspec, _hosting, _sinkentries
from loopsink.config import ConfiguredBridge, configured_bridges
from loopsink.testing import CapturingSink

SRC = Path(_config.__file__).parent


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("app", logging.INFO, __file__, 1, message, None, None)


def test_a_spec_is_parsed_without_starting_anything() -> None:
    before_bridges = len(_hosting.live_bridges())
    before_threads = threading.active_count()
    sink = CapturingSink()
    spec = _configspec.bridge_spec([sink], start="thread", timeout=2, warn_after=None)
    assert spec.sinks == (sink,)
    assert spec.overflow == "block"  # the default for a thread-started queue
    assert spec.timeout == 2.0
    assert isinstance(spec.timeout, float)
    assert spec.warn_after == 0.0  # None: never warn
    assert spec.where == ""
    assert spec.queue_options == {"capacity": 10_000, "overflow": "block", "name": None}
    assert len(_hosting.live_bridges()) == before_bridges
    assert threading.active_count() == before_threads


@pytest.mark.parametrize(
    ("start", "overflow"), [("auto", "drop_newest"), ("loop", "drop_newest"), ("thread", "block")]
)
def test_the_default_overflow_follows_the_start_policy(start: str, overflow: str) -> None:
    spec = _configspec.bridge_spec([CapturingSink()], start=start)  # type: ignore[arg-type]
    assert spec.overflow == overflow
    assert (
        _configspec.bridge_spec([CapturingSink()], start=start, overflow="drop_oldest").overflow
        == "drop_oldest"
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"start": "later"}, "start must be one of 'auto', 'loop', 'thread', got 'later'"),
        ({"backend": "curio"}, "backend must be 'asyncio' or 'trio', got 'curio'"),
        ({"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
        ({"timeout": True}, "timeout must be a positive number of seconds, got True"),
        ({"warn_after": -1}, "warn_after must be a number of seconds (0 or None: never), got -1"),
    ],
)
def test_a_bad_option_fails_in_the_spec(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        _configspec.bridge_spec([CapturingSink()], **options)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_split_bridge_options_names_an_unknown_option_and_a_missing_sinks() -> None:
    sinks, rest = _configspec.split_bridge_options({"sinks": ["x"], "level": "INFO"})
    assert sinks == ["x"]
    assert rest == {"level": "INFO"}
    with pytest.raises(ValueError) as caught:
        _configspec.split_bridge_options({"sinks": [], "levle": "INFO"})
    assert str(caught.value) == (
        "unknown option 'levle' (did you mean 'level'?); a loopsink bridge takes "
        + ", ".join(_configspec.BRIDGE_OPTIONS)
    )
    with pytest.raises(ValueError, match="a loopsink bridge needs 'sinks'"):
        _configspec.split_bridge_options({"level": "INFO"})


def test_a_hosted_bridge_runs_a_spec() -> None:
    sink = CapturingSink()
    item = _hosting.HostedBridge(_configspec.bridge_spec([sink], start="loop", warn_after=0))
    try:
        assert item.state == "idle"
        assert item in _hosting.live_bridges()
        assert item not in configured_bridges()  # not a dictConfig bridge
        item.handle(record("waits for a loop"))
        assert item.state == "idle"  # start="loop": no thread
    finally:
        item.close()  # delivers what waits, from a short-lived thread
    assert item.state == "closed"
    assert [r.getMessage() for r in sink.records] == ["waits for a loop"]
    assert item not in _hosting.live_bridges()


def test_a_configured_bridge_is_a_hosted_bridge_built_from_its_spec() -> None:
    item = ConfiguredBridge([CapturingSink()], start="loop", capacity=7, name="q")
    try:
        assert isinstance(item, _hosting.HostedBridge)
        assert item.queue.capacity == 7
        assert item.queue.name == "q"
        assert item in configured_bridges()
    finally:
        item.close()


def test_sinkentries_helpers_are_public() -> None:
    assert {"did_you_mean", "handler_label"} <= set(_sinkentries.__all__)
    assert _sinkentries.did_you_mean("FileHandlr", ["FileHandler"]) == (
        " (did you mean 'FileHandler'?)"
    )
    assert _sinkentries.did_you_mean("zzz", ["FileHandler"]) == ""
    assert _sinkentries.handler_label([]) == ""


@pytest.mark.parametrize("module", ["_config.py", "_configspec.py", "_hosting.py"])
def test_the_config_modules_import_no_private_name_of_another_module(module: str) -> None:
    tree = ast.parse((SRC / module).read_text())
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []


def test_parsing_does_not_import_the_hosting_code() -> None:
    tree = ast.parse((SRC / "_configspec.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"_hosting", "_bridge", "_fork", "_config"}
