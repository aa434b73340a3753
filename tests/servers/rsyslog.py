"""A real rsyslogd, run by the tests as the current user, and a reader for what it received.

rsyslogd runs in the foreground with its own configuration and work directory in a temp
dir; it leaves ``/dev/log`` alone (``SysSock.Use="off"``) and listens on

- a 127.0.0.1 UDP port,
- a 127.0.0.1 TCP port (imtcp: LF framing and octet counting, detected per frame),
- a second TCP port that also splits on NUL (``AddtlFrameDelimiter="0"``), for the stdlib's
  own TCP bytes,
- a unix datagram socket in the temp dir, with ``UseSpecialParser="off"`` so that RFC 5424
  is parsed there as well, and ``IgnoreTimestamp="off"`` so that the sender's time is kept.

Every message it receives is written as one JSON object per line (PRI, facility, severity,
tag, app-name, procid, msgid, structured data, msg, rawmsg, input) to a file the tests read
back with deadlines. rsyslog cannot report a port it was given as 0, so free ports are picked
first. Startup is confirmed by probe messages on every input, not by waiting a fixed time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

__all__ = ["Entry", "Rsyslog", "find_rsyslogd", "rsyslog_or_skip"]

_CONF = """\
global(workDirectory="{work}" net.enableDNS="off" parser.escapeControlCharactersOnReceive="on")
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="imtcp" MaxSessions="200")
template(name="loopsink_json" type="list" option.jsonf="on") {{
  property(outname="pri" name="pri" format="jsonf")
  property(outname="facility" name="syslogfacility-text" format="jsonf")
  property(outname="severity" name="syslogseverity-text" format="jsonf")
  property(outname="tag" name="syslogtag" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="structured_data" name="structured-data" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="protocol_version" name="protocol-version" format="jsonf")
  property(outname="input" name="inputname" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="rawmsg" name="rawmsg" format="jsonf")
}}
input(type="imudp" address="127.0.0.1" port="{udp_port}")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}")
input(type="imtcp" address="127.0.0.1" port="{tcp_nul_port}" AddtlFrameDelimiter="0")
input(type="imuxsock" Socket="{unix_path}" UseSpecialParser="off" IgnoreTimestamp="off"
      CreatePath="on")
action(type="omfile" file="{output}" template="loopsink_json")
"""

PROBE = "loopsink-rsyslog-probe"


@dataclass(frozen=True)
class Entry:
    """One message as rsyslog parsed it."""

    pri: int
    facility: str
    severity: str
    tag: str
    app_name: str
    procid: str
    msgid: str
    structured_data: str
    hostname: str
    timestamp: str
    protocol_version: str
    input: str
    msg: str
    rawmsg: str

    @classmethod
    def from_json(cls, line: str) -> Entry:
        data: dict[str, Any] = json.loads(line)
        fields = {name: str(data.get(name, "")) for name in cls.__dataclass_fields__}
        fields["pri"] = int(data["pri"])  # type: ignore[assignment]
        return cls(**fields)  # type: ignore[arg-type]


def find_rsyslogd() -> str | None:
    found = shutil.which("rsyslogd")
    if found:
        return found
    return "/usr/sbin/rsyslogd" if os.access("/usr/sbin/rsyslogd", os.X_OK) else None


def rsyslog_or_skip() -> str:
    """The rsyslogd binary; skip loudly without it, and fail in CI, which installs it."""
    binary = find_rsyslogd()
    if binary is not None:
        return binary
    reason = (
        "rsyslogd is NOT INSTALLED: the real-daemon syslog tests cannot run. Install it with "
        "`make system-deps` (apt-get install rsyslog)."
    )
    if os.environ.get("CI"):
        pytest.fail(reason + " CI must install it (.ci/run -> make test -> system-deps).")
    pytest.skip(reason)


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Rsyslog:
    """rsyslogd in the foreground with inputs on free loopback ports and a unix socket."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.udp_port = _free_port(socket.SOCK_DGRAM)
        self.tcp_port = _free_port(socket.SOCK_STREAM)
        self.tcp_nul_port = _free_port(socket.SOCK_STREAM)
        self.unix_path = str(workdir / "log.sock")
        self.output = workdir / "received.jsonl"
        self.conf = workdir / "rsyslog.conf"
        self.pidfile = workdir / "rsyslogd.pid"
        self.stderr_path = workdir / "rsyslogd.stderr"
        self.conf.write_text(
            _CONF.format(
                work=workdir,
                udp_port=self.udp_port,
                tcp_port=self.tcp_port,
                tcp_nul_port=self.tcp_nul_port,
                unix_path=self.unix_path,
                output=self.output,
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def udp_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.udp_port)

    @property
    def tcp_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.tcp_port)

    @property
    def tcp_nul_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.tcp_nul_port)

    # -- lifecycle (sync: used from fixtures and, through a thread, from async tests) -------

    def start(self, timeout: float = 15.0) -> None:
        """Start rsyslogd and return once every input has delivered a probe to the file."""
        assert self.process is None, "rsyslogd is already running"
        self.pidfile.unlink(missing_ok=True)
        with open(self.stderr_path, "ab") as err:
            self.process = subprocess.Popen(
                [self.binary, "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
                stdout=err,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        try:
            self._wait_ready(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, deadline: float) -> None:
        token = uuid.uuid4().hex
        senders: dict[str, Callable[[bytes], None]] = {
            "udp": self._probe_udp,
            "tcp": lambda data: self._probe_tcp(self.tcp_port, data),
            "tcpnul": lambda data: self._probe_tcp(self.tcp_nul_port, data),
            "unix": self._probe_unix,
        }
        waiting = set(senders)
        while waiting:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"rsyslogd exited with {self.process.returncode} at startup: "
                    f"{self.stderr_path.read_text(errors='replace')}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"rsyslogd did not deliver probes on {sorted(waiting)} in time; stderr: "
                    f"{self.stderr_path.read_text(errors='replace')}"
                )
            for name in sorted(waiting):
                with contextlib.suppress(OSError):  # not listening yet: the next round retries
                    senders[name](f"<14>{PROBE}: {token} {name}\n".encode())
            seen = {e.msg.split()[-1] for e in self._read_all() if token in e.msg}
            waiting -= seen
            if waiting:
                time.sleep(0.02)  # polling interval for a subprocess, not a synchronisation

    def _probe_udp(self, data: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(data, self.udp_address)

    def _probe_tcp(self, port: int, data: bytes) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(data)

    def _probe_unix(self, data: bytes) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(self.unix_path)
            sock.send(data)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop rsyslogd (SIGTERM, then SIGKILL) and wait for it to exit."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    # -- reading what was received ------------------------------------------------------------

    def _read_all(self) -> list[Entry]:
        try:
            text = self.output.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        # rsyslog may be half-way through a line: only complete lines count
        complete = text[: text.rfind("\n") + 1]
        return [Entry.from_json(line) for line in complete.splitlines() if line.strip()]

    def entries(self) -> list[Entry]:
        """Everything received so far, except the start-up probes."""
        return [e for e in self._read_all() if PROBE not in e.rawmsg]

    async def wait_for(self, token: str, count: int, *, timeout: float = 10.0) -> list[Entry]:
        """Wait until ``count`` messages containing ``token`` arrived; return them in order.

        Fails with what did arrive when the deadline passes; also fails if more than
        ``count`` arrive (a duplicate or a split message is a bug too).
        """
        found: list[Entry] = []
        with anyio.move_on_after(timeout):
            while True:
                entries = await anyio.to_thread.run_sync(self.entries)
                found = [e for e in entries if token in e.rawmsg]
                if len(found) >= count:
                    break
                await anyio.sleep(0.02)  # polling a file another process writes
        assert len(found) == count, (
            f"expected {count} messages with {token!r} from rsyslog, got {len(found)}: "
            f"{[e.rawmsg for e in found][:20]}"
        )
        return found


def running_rsyslog(workdir: Path) -> Iterator[Rsyslog]:
    """Start rsyslogd in ``workdir`` and stop it afterwards (for fixtures)."""
    server = Rsyslog(rsyslog_or_skip(), workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
