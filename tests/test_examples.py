"""Every examples/*.py runs to completion by itself, within a deadline, and exits 0.

The convention (examples/README.md): an example needs no arguments and no network beyond
loopback, starts whatever receivers it needs, finishes by itself in a few seconds, and
leaves nothing behind (it writes under a temporary directory). An example that would serve
forever drives itself by default and serves only when given ``--serve``. New examples are
picked up here without any change.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"
#: Generous: an example that takes more than a few seconds on a loaded machine is a bug,
#: but the deadline must not fail a slow CI runner.
DEADLINE = 120.0


def discovered() -> list[Path]:
    return sorted(EXAMPLES.glob("*.py"))


def test_examples_are_discovered() -> None:
    names = {path.name for path in discovered()}
    assert {
        "fastapi_app.py",
        "aiohttp_app.py",
        "legacy_sync.py",
        "trio_app.py",
        "dictconfig.py",
    } <= names


@pytest.mark.parametrize("example", discovered(), ids=lambda path: path.stem)
def test_example_runs_to_completion(example: Path, tmp_path: Path) -> None:
    text = example.read_text()
    assert text.startswith('"""'), f"{example.name} must start with its docstring"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONWARNINGS"] = "error::ResourceWarning"
    try:
        proc = subprocess.run(
            [sys.executable, str(example)],
            cwd=tmp_path,  # anything written relative to the cwd lands here
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{example.name} did not finish within {DEADLINE} s:\n{exc.stdout!r}")
    assert proc.returncode == 0, f"{example.name} exited {proc.returncode}:\n{proc.stderr}"
    assert proc.stdout.strip(), f"{example.name} printed nothing to show what it did"
    assert "Traceback" not in proc.stderr, proc.stderr
