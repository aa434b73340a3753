"""The pytest plugin and loopsink.testing, as users run them: pytester, each plugin and mode.

Each case writes a user-style test file (the markers that plugin and mode need, nothing
else), runs pytest on it in a subprocess and checks the outcome. The project's own suite
runs with ``-p no:asyncio``; these user files choose their plugin themselves.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


@dataclass(frozen=True)
class Mode:
    """How a user's test file is written and run under one plugin."""

    ini: str
    header: str  # module-level marks and fixtures the plugin needs
    async_fixture: str  # the decorator of an async fixture
    plugins: tuple[str, ...]


ANYIO_HEADER = "\n".join(
    [
        "pytestmark = pytest.mark.anyio",
        "",
        "@pytest.fixture",
        "def anyio_backend():",
        '    return "{backend}"',
    ]
)
STRICT = "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
MODES = {
    "pytest-asyncio-strict": Mode(
        STRICT, "pytestmark = pytest.mark.asyncio", "@pytest_asyncio.fixture", ("-p", "asyncio")
    ),
    "pytest-asyncio-auto": Mode(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n",
        "",
        "@pytest.fixture",
        ("-p", "asyncio"),
    ),
    "pytest-asyncio-module-loop": Mode(
        STRICT,
        'pytestmark = pytest.mark.asyncio(loop_scope="module")',
        '@pytest_asyncio.fixture(loop_scope="module")',
        ("-p", "asyncio"),
    ),
    "pytest-asyncio-session-loop": Mode(
        STRICT,
        'pytestmark = pytest.mark.asyncio(loop_scope="session")',
        '@pytest_asyncio.fixture(loop_scope="session")',
        ("-p", "asyncio"),
    ),
    "anyio-asyncio": Mode(
        "[pytest]\n",
        ANYIO_HEADER.format(backend="asyncio"),
        "@pytest.fixture",
        ("-p", "anyio", "-p", "no:asyncio"),
    ),
    "anyio-trio": Mode(
        "[pytest]\n",
        ANYIO_HEADER.format(backend="trio"),
        "@pytest.fixture",
        ("-p", "anyio", "-p", "no:asyncio"),
    ),
}

USER_TESTS = """
import logging
import pathlib

import pytest
import pytest_asyncio  # noqa: F401 - the strict modes decorate with it

import loopsink
from loopsink.testing import capture_records

{header}

TEARDOWN_LOG = pathlib.Path(__file__).with_name("teardown.log")


async def test_flush_delivers_what_is_pending(loopsink_capture):
    logging.getLogger("app").warning("disk %d%% full", 93)
    await loopsink_capture.flush()
    assert loopsink_capture.messages == ["disk 93% full"]


async def test_wait_for(loopsink_capture):
    logging.getLogger("app").error("boom")
    await loopsink_capture.wait_for(lambda records: [r.levelname for r in records] == ["ERROR"])


async def test_wait_for_has_a_default_timeout(loopsink_capture):
    with pytest.raises(TimeoutError, match=r"^the condition was not met within 0.2 s; "):
        await loopsink_capture.wait_for(lambda records: False)


async def test_set_level(loopsink_capture):
    loopsink_capture.set_level(logging.INFO, logger="app.info")
    logging.getLogger("app.info").info("now visible")
    await loopsink_capture.flush()
    assert loopsink_capture.messages == ["now visible"]


async def test_queue_over_my_sink(loopsink_queue, tmp_path):
    path = tmp_path / "app.log"
    loopsink_queue.start(loopsink.FileHandler(path), logger="app.file")
    logging.getLogger("app.file").warning("to disk")
    await loopsink_queue.flush()
    assert path.read_text() == "to disk\\n"


async def test_queue_is_flushed_at_teardown(loopsink_queue):
    loopsink_queue.start(loopsink.FileHandler(TEARDOWN_LOG), logger="app.teardown")
    logging.getLogger("app.teardown").warning("logged, never flushed by the test")


{async_fixture}
async def captured():
    async with capture_records("app.fixture") as captured:
        yield captured


async def test_capture_records_in_an_async_fixture(captured):
    logging.getLogger("app.fixture").warning("inside")
    assert captured.messages == [] or captured.messages == ["inside"]
    await captured.flush()
    assert captured.messages == ["inside"]


async def test_capture_records_in_the_test():
    async with capture_records("app.block") as captured:
        logging.getLogger("app.block").warning("one")
        await captured.flush()
        assert captured.messages == ["one"]
        with pytest.raises(TimeoutError, match=r"^the condition was not met within 0.2 s; "):
            await captured.wait_for(lambda records: len(records) > 1, timeout=0.2)
"""

SYNC_TESTS = """
import logging


def test_sync_test(loopsink_capture):
    logging.getLogger("legacy").warning("from sync code")
    loopsink_capture.flush_sync()
    assert loopsink_capture.messages == ["from sync code"]
"""

PASSED = 9


@pytest.mark.parametrize("mode", list(MODES))
def test_fixtures_under_each_plugin_and_mode(pytester: pytest.Pytester, mode: str) -> None:
    chosen = MODES[mode]
    pytester.makeini(chosen.ini + "loopsink_timeout = 0.2\nfilterwarnings = error\n")
    pytester.makepyfile(
        test_user=USER_TESTS.format(header=chosen.header, async_fixture=chosen.async_fixture),
        test_sync=SYNC_TESTS,
    )
    result = pytester.runpytest_subprocess(*chosen.plugins, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=PASSED)
    teardown_log = Path(pytester.path, "teardown.log")
    assert teardown_log.read_text() == "logged, never flushed by the test\n"


def test_a_test_that_waits_in_vain_fails_instead_of_hanging(pytester: pytest.Pytester) -> None:
    """An anyio-marked fixture in a pytest-asyncio auto-mode run used to hang for ever."""
    pytester.makeini(MODES["pytest-asyncio-auto"].ini + "loopsink_timeout = 0.2\n")
    pytester.makepyfile(
        test_user=textwrap.dedent(
            """
            import logging

            async def test_never(loopsink_capture):
                logging.getLogger("app").warning("something else")
                await loopsink_capture.wait_for(lambda records: len(records) == 2)
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "asyncio", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert (
        "TimeoutError: the condition was not met within 0.2 s; captured so far: "
        "['something else'] (pass timeout= to wait longer)"
    ) in result.stdout.str()
