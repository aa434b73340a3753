"""``python -m loopsink listen`` in a subprocess: records printed like tail -f, clean Ctrl-C."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import IO

import pytest

from loopsink.__main__ import main

DEADLINE = 20.0


class Listener:
    """The CLI as a child process, its stdout and stderr read line by line by threads."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loopsink", "listen", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        self.err_lines: list[str] = []
        self.threads = [
            threading.Thread(target=self._pump, args=(stream, lines), daemon=True)
            for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _pump(stream: IO[str] | None, lines: queue.Queue[str]) -> None:
        assert stream is not None
        for line in stream:
            lines.put(line.rstrip("\n"))

    def ready(self) -> dict[str, tuple[str, int]]:
        """Wait for the 'listening on' line; return {'tcp': (host, port), 'udp': ...}."""
        line = self.err.get(timeout=DEADLINE)
        self.err_lines.append(line)
        assert line.startswith("loopsink: listening on "), line
        return {
            kind: (host, int(port))
            for kind, host, port in re.findall(r"(tcp|udp)(?:\+tls)? ([\d.]+):(\d+)", line)
        }

    def lines(self, count: int) -> list[str]:
        return [self.out.get(timeout=DEADLINE) for _ in range(count)]

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=DEADLINE)
        self._finish()
        return code

    def _finish(self) -> None:
        for thread in self.threads:
            thread.join(DEADLINE)  # the pipes reach EOF once the process has exited
        while not self.err.empty():
            self.err_lines.append(self.err.get_nowait())
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=DEADLINE)
        self._finish()


@pytest.fixture
def make_listener() -> Iterator[type[Listener]]:
    made: list[Listener] = []

    class Tracked(Listener):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            made.append(self)

    yield Tracked
    for listener in made:
        listener.kill()


def send_with_stdlib(address: tuple[str, int], datagram: bool, msg: str) -> None:
    cls = logging.handlers.DatagramHandler if datagram else logging.handlers.SocketHandler
    handler = cls(*address)
    try:
        handler.handle(logging.LogRecord("svc.api", logging.WARNING, __file__, 3, msg, None, None))
    finally:
        handler.close()


def test_listen_prints_records_and_stops_cleanly_on_ctrl_c(make_listener: type[Listener]) -> None:
    cli = make_listener(
        "--tcp",
        "127.0.0.1:0",
        "--udp",
        "127.0.0.1:0",
        "--format",
        "%(levelname)s %(name)s %(message)s",
    )
    addresses = cli.ready()
    send_with_stdlib(addresses["tcp"], False, "over tcp")
    assert cli.lines(1) == ["WARNING svc.api over tcp"]
    send_with_stdlib(addresses["udp"], True, "over udp")
    assert cli.lines(1) == ["WARNING svc.api over udp"]
    assert cli.interrupt() == 0
    assert cli.err_lines[-1] == "loopsink: stopped after 2 records"
    assert not any("Traceback" in line for line in cli.err_lines)


def test_listen_json_output(make_listener: type[Listener]) -> None:
    cli = make_listener("--tcp", "127.0.0.1:0", "--json", "--backend", "trio")
    addresses = cli.ready()
    send_with_stdlib(addresses["tcp"], False, "as json")
    (line,) = cli.lines(1)
    data = json.loads(line)
    assert data["message"] == "as json"
    assert data["name"] == "svc.api"
    assert data["levelname"] == "WARNING"
    assert cli.interrupt() == 0


def test_listen_without_a_socket_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["listen"])
    assert info.value.code == 2
    assert (
        "listen needs at least one of --tcp, --udp, --unix, --unix-datagram"
        in capsys.readouterr().err
    )


def test_listen_rejects_a_malformed_address(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["listen", "--tcp", "127.0.0.1"])
    assert "expected HOST:PORT such as 127.0.0.1:9020, got '127.0.0.1'" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "listen" in capsys.readouterr().err


def test_listen_unix_socket_with_hmac_and_level(make_listener: type[Listener]) -> None:
    import anyio

    import loopsink

    with tempfile.TemporaryDirectory(prefix="ls-") as folder:
        path = os.path.join(folder, "log.sock")
        key_file = os.path.join(folder, "key")
        with open(key_file, "wb") as file:
            file.write(b"s3cret\n")  # surrounding whitespace is ignored
        cli = make_listener(
            "--unix",
            path,
            "--hmac-key-file",
            key_file,
            "--format",
            "%(message)s",
            "--level",
            "warning",
        )
        cli.ready()

        async def send_signed() -> None:
            async with loopsink.SocketHandler(path, None, hmac_key=b"s3cret") as sink:
                for level, msg in ((logging.INFO, "quiet"), (logging.ERROR, "signed and loud")):
                    await sink.handle(logging.LogRecord("a", level, __file__, 1, msg, None, None))

        anyio.run(send_signed)
        assert cli.lines(1) == ["signed and loud"]
        unsigned = logging.handlers.SocketHandler(path, None)
        unsigned.handle(logging.LogRecord("a", logging.ERROR, __file__, 1, "forged", None, None))
        unsigned.close()
        assert cli.err.get(timeout=DEADLINE) == (
            "loopsink: rejected 1 frame (signature 1); last: frame HMAC digest does not match"
        )
        assert cli.interrupt() == 0
    assert cli.out.empty()
    assert cli.err_lines[-1] == "loopsink: stopped after 2 records, 1 frames rejected"


def test_listen_tls(make_listener: type[Listener]) -> None:
    import ssl

    import anyio
    import trustme

    import loopsink

    ca = trustme.CA()
    client = ssl.create_default_context()
    ca.configure_trust(client)
    with tempfile.TemporaryDirectory(prefix="ls-") as folder:
        pem = os.path.join(folder, "server.pem")
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(pem)
        cli = make_listener("--tcp", "127.0.0.1:0", "--tls-cert", pem, "--format", "%(message)s")
        host, port = cli.ready()["tcp"]
        assert "tcp+tls 127.0.0.1:" in cli.err_lines[0]

        async def send() -> None:
            async with loopsink.SocketHandler(host, port, ssl_context=client) as sink:
                await sink.handle(
                    logging.LogRecord("a", logging.ERROR, __file__, 1, "tls!", None, None)
                )

        anyio.run(send)
        assert cli.lines(1) == ["tls!"]
        assert cli.interrupt() == 0


def test_listen_stops_quietly_when_stdout_goes_away() -> None:
    """``loopsink listen ... | head -1``: once the reader is gone the command just ends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopsink", "listen", "--tcp", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert proc.stdout is not None
        ready = proc.stderr.readline()
        (port,) = re.findall(r"tcp 127\.0\.0\.1:(\d+)", ready)
        proc.stdout.close()  # the reader goes away
        for i in range(3):  # the first write may still fit in the pipe of a closing reader
            send_with_stdlib(("127.0.0.1", int(port)), False, f"into the void {i}")
            if proc.poll() is not None:
                break
        code = proc.wait(timeout=DEADLINE)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=DEADLINE)
        if proc.stderr is not None:
            proc.stderr.close()
    assert code == 0
    assert "Traceback" not in err
    assert "Logging error" not in err
    assert "Exception ignored" not in err
    assert err.strip().startswith("loopsink: stopped after")


@pytest.mark.parametrize("args", [["--help"], ["listen", "--help"]])
def test_help_is_printed(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loopsink", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: loopsink")
    assert "%(asctime)s" in done.stdout or args == ["--help"]


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    from loopsink import __version__

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"loopsink {__version__}\n"


def test_listen_trio_backend_without_trio_names_the_extra() -> None:
    """Without trio, ``--backend trio`` names ``loopsink[trio]``, not anyio's ``anyio[trio]``."""
    program = (
        "import sys\n"
        "sys.modules['trio'] = None  # as if trio were not installed\n"
        "from loopsink.__main__ import main\n"
        "sys.exit(main(['listen', '--tcp', '127.0.0.1:0', '--backend', 'trio']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=DEADLINE
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "loopsink listen: --backend trio needs the 'trio' package, which is not installed: "
        "pip install 'loopsink[trio]'\n"
    )
