"""Log to a real rsyslogd over UDP, TCP and its unix socket, in the stdlib format and RFC 5424.

The example starts its own rsyslogd (as the current user, in the foreground, with a config in
a temp dir that leaves ``/dev/log`` alone), logs a few records through ``loopsink.install``,
and prints what rsyslog parsed: facility, severity, tag and message. A multi-line message
stays one message on every transport (over TCP thanks to the LF framing with ``#012``).
Without rsyslogd it says so and exits.

Run it with ``python examples/syslog_rsyslog.py``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

import loopsink

CONFIG = """\
global(workDirectory="{work}" net.enableDNS="off")
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="imtcp")
template(name="json" type="list" option.jsonf="on") {{
  property(outname="facility" name="syslogfacility-text" format="jsonf")
  property(outname="severity" name="syslogseverity-text" format="jsonf")
  property(outname="tag" name="syslogtag" format="jsonf")
  property(outname="input" name="inputname" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}}
input(type="imudp" address="127.0.0.1" port="{udp}")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
input(type="imuxsock" Socket="{sock}" UseSpecialParser="off" CreatePath="on")
action(type="omfile" file="{out}" template="json")
"""


def free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Rsyslogd:
    """Where the daemon listens and writes."""

    work: Path
    udp: tuple[str, int] = ("127.0.0.1", 0)
    tcp: tuple[str, int] = ("127.0.0.1", 0)

    @property
    def unix(self) -> str:
        return str(self.work / "log.sock")

    @property
    def out(self) -> Path:
        return self.work / "received.jsonl"

    def start(self, binary: str) -> subprocess.Popen[bytes]:
        """Start rsyslogd; return once its TCP input accepts and its unix socket exists."""
        self.udp = ("127.0.0.1", free_port(socket.SOCK_DGRAM))
        self.tcp = ("127.0.0.1", free_port(socket.SOCK_STREAM))
        conf = self.work / "rsyslog.conf"
        conf.write_text(
            CONFIG.format(
                work=self.work, udp=self.udp[1], tcp=self.tcp[1], sock=self.unix, out=self.out
            )
        )
        process = subprocess.Popen([binary, "-n", "-f", str(conf), "-i", str(self.work / "pid")])
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(self.tcp, timeout=1).close()
                if os.path.exists(self.unix):
                    return process
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("rsyslogd did not start")
            time.sleep(0.02)  # polling a child process's start-up

    def received(self) -> list[dict[str, str]]:
        try:
            text = self.out.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


async def main() -> int:
    binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    if not os.access(binary, os.X_OK):
        print("rsyslogd is not installed (apt-get install rsyslog); nothing to show")
        return 0
    daemon = Rsyslogd(Path(tempfile.mkdtemp(prefix="loopsink-rsyslog-")))
    process = await anyio.to_thread.run_sync(daemon.start, binary)
    try:
        sinks = [
            loopsink.SysLogHandler(daemon.udp, "local0"),
            loopsink.SysLogHandler(daemon.tcp, "local0", socket.SOCK_STREAM),
            loopsink.SysLogHandler(daemon.unix, "local0"),
            loopsink.SysLogHandler(daemon.udp, "local1", format="rfc5424", app_name="shop"),
        ]
        for sink in sinks[:3]:
            sink.ident = "shop: "
        async with loopsink.install(*sinks, logger="shop"):
            log = logging.getLogger("shop")
            log.setLevel(logging.INFO)
            log.info("order %s placed", 17)
            log.error("payment failed\nretrying in %d s", 5)
        entries: list[dict[str, str]] = []
        with anyio.fail_after(10):
            while len(entries) < 2 * len(sinks):
                await anyio.sleep(0.02)  # polling a file another process writes
                entries = await anyio.to_thread.run_sync(daemon.received)
        for entry in sorted(entries, key=lambda e: (e["input"], e["tag"], e["severity"])):
            print(
                f"{entry['input']:9} {entry['facility']:7} {entry['severity']:5} "
                f"{entry['tag']:12} {entry['msg'].strip()}"
            )
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(daemon.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
