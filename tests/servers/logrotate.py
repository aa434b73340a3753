"""A real ``logrotate`` (the Debian package) rotating one log file on demand.

``Logrotate(folder, "app.log", mode)`` writes a private config and state file in
``folder``; ``await rotator.rotate()`` runs ``logrotate -f`` once and checks it worked.
Traps handled here: logrotate silently ignores a config that is group- or world-writable
(and still exits 0), so the config is ``chmod 644``; and success is checked on the files,
not on the exit status.
"""

from __future__ import annotations

import os
import shutil
from typing import Literal

import anyio
import pytest

Mode = Literal["create", "copytruncate"]


def logrotate_binary() -> str:
    """The path of ``logrotate``; skips the test when it is not installed."""
    found = shutil.which("logrotate") or (
        "/usr/sbin/logrotate" if os.path.exists("/usr/sbin/logrotate") else None
    )
    if found is None:
        pytest.skip("logrotate is not installed (apt-get install logrotate)")
    return found


class Logrotate:
    """Rotates ``folder/name`` with logrotate in ``create`` or ``copytruncate`` mode."""

    def __init__(self, folder: str, name: str, mode: Mode, *, keep: int = 100) -> None:
        self.binary = logrotate_binary()
        self.log = os.path.join(folder, name)
        self.config = os.path.join(folder, "logrotate.conf")
        self.state = os.path.join(folder, "logrotate.state")
        self.rotations = 0
        directive = "create 0644" if mode == "create" else "copytruncate"
        with open(self.config, "w", encoding="utf-8") as file:
            file.write(
                f"{self.log} {{\n"
                f"    rotate {keep}\n"
                f"    {directive}\n"
                "    ifempty\n"
                "    missingok\n"
                "    nocompress\n"
                "    nodateext\n"
                "}\n"
            )
        os.chmod(self.config, 0o644)

    async def rotate(self) -> None:
        """Run ``logrotate -f`` once; fail loudly if it did not produce the next file."""
        done = await anyio.run_process(
            [self.binary, "-f", "-s", self.state, self.config], check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"logrotate failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
            )
        self.rotations += 1
        if not os.path.exists(f"{self.log}.1"):
            raise RuntimeError(f"logrotate ran but {self.log}.1 does not exist")

    def files(self) -> list[str]:
        """The log and its rotated copies, oldest first."""
        rotated = []
        index = 1
        while os.path.exists(f"{self.log}.{index}"):
            rotated.append(f"{self.log}.{index}")
            index += 1
        return [*reversed(rotated), self.log]
