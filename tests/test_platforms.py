"""loopsink as Windows and macOS users get it, and as a bare ``pip install`` gets it.

Each platform runs ``tests/platform_sim.py`` in a subprocess with that platform's missing
attributes removed before import (see its docstring for what is and is not simulated). The
platform table in ``docs/platforms.md`` summarises what these tests establish.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from platform_sim import SCENARIOS

HERE = Path(__file__).parent
DEADLINE = 60.0


@pytest.mark.parametrize("platform", ["windows", "macos"])
def test_simulated_platform_runs_every_scenario(platform: str) -> None:
    done = subprocess.run(
        [sys.executable, str(HERE / "platform_sim.py"), platform],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.stdout.splitlines() == [f"ok {name}" for name in SCENARIOS], (
        done.stdout + done.stderr
    )
    assert done.returncode == 0
    assert "Traceback" not in done.stderr, done.stderr


def _program(platform: str, body: str) -> str:
    prelude = (
        f"import sys\nsys.path.insert(0, {str(HERE)!r})\n"
        f"import platform_sim\nplatform_sim.simulate({platform!r})\n"
    )
    return prelude + textwrap.dedent(body)


@pytest.mark.parametrize("platform", ["windows", "macos"])
def test_cli_listen_stops_cleanly_on_ctrl_c(platform: str) -> None:
    """Windows' loops have no signal handlers: Ctrl-C still stops the receiver cleanly."""
    program = _program(
        platform,
        """
        from loopsink.__main__ import main
        sys.exit(main(["listen", "--tcp", "127.0.0.1:0"]))
        """,
    )
    with subprocess.Popen(
        [sys.executable, "-c", program],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:  # leaving closes both pipes, also when an assertion fails
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()
            assert line.startswith("loopsink: listening on tcp 127.0.0.1:"), line
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=DEADLINE)
        finally:
            proc.kill()
    assert "Traceback" not in err, err
    assert err == "loopsink: stopped after 0 records\n"
    assert proc.returncode == 0


def test_core_runs_without_sniffio() -> None:
    """anyio >= 4.12 no longer installs sniffio: loopsink must not need it (a bare install)."""
    program = textwrap.dedent(
        """
        import sys
        sys.modules["sniffio"] = None  # as in a venv with only loopsink and anyio
        import logging, os, tempfile
        import anyio
        import loopsink
        from loopsink import _hosting

        path = os.path.join(tempfile.mkdtemp(), "app.log")

        async def main() -> None:
            assert _hosting._loop_running_here()  # the config glue sees the running loop
            logger = logging.getLogger("nosniffio")
            logger.setLevel(logging.INFO)
            async with loopsink.install(loopsink.FileHandler(path), logger=logger):
                logger.info("no sniffio here")

        anyio.run(main, backend="asyncio")
        assert not _hosting._loop_running_here()
        with open(path) as file:
            assert file.read() == "no sniffio here\\n", path
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=DEADLINE
    )
    assert (done.stdout, done.stderr, done.returncode) == ("ok\n", "", 0)


EVERY_MODULE = textwrap.dedent(
    """
    import importlib, importlib.metadata as md, pkgutil, re, sys
    sys.modules["sniffio"] = None  # anyio no longer installs it: a bare install lacks it

    def base_closure(dist):
        '''The distributions a bare install of ``dist`` brings (no extras), transitively.'''
        seen, todo = set(), [dist]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for req in md.requires(name) or []:
                if "extra ==" in req:
                    continue
                if ";" in req and not eval_marker(req.split(";", 1)[1]):
                    continue
                todo.append(re.split(r"[\\s<>=!~\\[;(]", req, maxsplit=1)[0].lower())
        return seen

    def eval_marker(marker):
        from packaging.markers import Marker
        return Marker(marker).evaluate()

    allowed = {"loopsink"}
    owners = md.packages_distributions()
    dists = base_closure("loopsink")
    allowed |= {top for top, names in owners.items() if {n.lower() for n in names} & dists}
    allowed |= {name.replace("-", "_") for name in dists}  # 3.10 maps only top_level.txt
    import loopsink
    failed = []
    for info in pkgutil.walk_packages(loopsink.__path__, "loopsink."):
        if info.name in ("loopsink._pytest_plugin", "loopsink.contrib.aiohttp"):
            continue  # loaded by pytest / needs loopsink[aiohttp] (checked below)
        importlib.import_module(info.name)
    try:
        importlib.import_module("loopsink.contrib.aiohttp")
    except loopsink.MissingExtraError as exc:
        assert "pip install 'loopsink[aiohttp]'" in str(exc), str(exc)
    loaded = {name.split(".")[0] for name, mod in sys.modules.items() if mod is not None}
    ours = {"__main__", "_distutils_hack", "packaging"}  # this script and its tools
    foreign = sorted(loaded - set(sys.stdlib_module_names) - allowed - ours)
    print(foreign)
    """
)


def test_every_module_imports_with_the_base_dependencies_only() -> None:
    """What each module imports at import time is the stdlib or a base dependency.

    Optional packages (trio, aiosmtplib, aiofiles, fastapi, aiohttp) and sniffio may be
    installed here, but no module may load them at import: each sink imports its extra
    when it is used. ``loopsink.contrib.aiohttp`` is the one module that is its extra.
    """
    block = "import sys\nfor name in ('aiohttp',):\n    sys.modules[name] = None\n"
    done = subprocess.run(
        [sys.executable, "-c", block + EVERY_MODULE],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert (done.stdout, done.stderr, done.returncode) == ("[]\n", "", 0)
