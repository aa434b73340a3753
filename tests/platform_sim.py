"""Run loopsink as if on Windows or macOS: the POSIX- and Linux-only attributes removed first.

``python tests/platform_sim.py windows`` (or ``macos``) strips what that platform's CPython
lacks from ``select``, ``socket``, ``os`` and the module table *before* anything imports
``selectors``, ``asyncio``, ``anyio`` or ``loopsink``, then runs every scenario of
:data:`SCENARIOS` on asyncio and prints ``ok NAME`` (or ``FAIL NAME: ...``) for each.
``sys.platform`` stays ``linux``: code that branches on it is not exercised, only code that
touches the attributes themselves. trio cannot run here (it needs epoll on Linux), so the
scenarios run on asyncio only.

A new transport or sink joins by adding one ``async def`` to :data:`SCENARIOS`.

This module imports nothing but ``sys`` at the top, so that :func:`simulate` runs first.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

#: Attributes each simulated platform's CPython does not have (module name -> names).
_MISSING: dict[str, dict[str, tuple[str, ...]]] = {
    "windows": {
        "select": ("poll", "epoll", "kqueue", "devpoll"),
        "socket": (
            "AF_UNIX",
            "MSG_DONTWAIT",
            "MSG_NOSIGNAL",
            "SOCK_NONBLOCK",
            "SOCK_CLOEXEC",
            "SO_REUSEPORT",
            "TCP_KEEPIDLE",
            "fromshare",  # (Windows has it; deleting nothing that is absent is harmless)
        ),
        "os": ("fork", "forkpty", "register_at_fork", "getuid", "geteuid", "pipe2"),
    },
    "macos": {
        "select": ("epoll",),
        "socket": ("SOCK_NONBLOCK", "SOCK_CLOEXEC", "MSG_NOSIGNAL", "TCP_KEEPIDLE"),
        "os": ("pipe2", "eventfd", "memfd_create"),
    },
}
#: Name prefixes removed from ``select`` as well (the poll/epoll/kqueue constants).
_MISSING_PREFIXES: dict[str, tuple[str, ...]] = {
    "windows": ("POLL", "EPOLL", "KQ_", "KEVENT"),
    "macos": ("EPOLL", "POLLRDHUP"),
}
#: Modules that cannot be imported there.
_MISSING_MODULES: dict[str, tuple[str, ...]] = {
    "windows": ("fcntl", "termios", "pwd", "grp", "resource"),
    "macos": (),
}
#: Methods of ``socket.socket`` that the platform lacks.
_MISSING_SOCKET_METHODS: dict[str, tuple[str, ...]] = {
    "windows": ("recvmsg", "sendmsg", "recvmsg_into"),
    "macos": (),
}


class _Absent:
    """A class attribute that reads as missing: ``hasattr(sock, name)`` is False."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        raise AttributeError(f"{self.name} (absent on the simulated platform)")


def _tcp_socketpair(family: int | None = None, type: int = 1, proto: int = 0) -> Any:
    """Windows' socketpair(): two connected loopback TCP sockets (there is no AF_UNIX)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return server, client


def simulate(platform: str) -> None:
    """Remove what ``platform`` lacks. Must run before selectors/asyncio/anyio are imported."""
    early = [m for m in ("asyncio", "anyio", "loopsink") if m in sys.modules]
    if early:
        raise RuntimeError(f"simulate() must run before importing {early}")
    import os
    import select
    import socket

    modules = {"select": select, "socket": socket, "os": os}
    for module_name, names in _MISSING[platform].items():
        module = modules[module_name]
        for name in names:
            if hasattr(module, name):
                delattr(module, name)
    for name in dir(select):
        if name.startswith(_MISSING_PREFIXES[platform]):
            delattr(select, name)
    for name in _MISSING_MODULES[platform]:
        sys.modules[name] = None  # type: ignore[assignment]
    for name in _MISSING_SOCKET_METHODS[platform]:
        setattr(socket.socket, name, _Absent(name))
    if platform == "windows":
        socket.socketpair = _tcp_socketpair
    # socket imported selectors, which chose its DefaultSelector from what select had then
    import importlib
    import selectors

    importlib.reload(selectors)
    if platform == "windows":
        # Windows' asyncio loops have no signal handlers: add_signal_handler raises
        # NotImplementedError (anyio.open_signal_receiver lets it through).
        import asyncio

        def no_signal_handlers(self: object, *args: object) -> None:
            raise NotImplementedError

        for loop_class in (asyncio.SelectorEventLoop,):
            loop_class.add_signal_handler = no_signal_handlers  # type: ignore[method-assign]


# -- the scenarios -----------------------------------------------------------------------------


async def imports_and_every_sink(platform: str, tmp: str) -> None:
    import logging
    import os

    import loopsink
    import loopsink.config
    import loopsink.handlers
    import loopsink.receiver
    import loopsink.testing

    path = os.path.join(tmp, "construct.log")
    sinks: list[loopsink.AsyncHandler] = [
        loopsink.StreamHandler(),
        loopsink.FileHandler(path, delay=True),
        loopsink.WatchedFileHandler(path, delay=True),
        loopsink.RotatingFileHandler(path, maxBytes=100, backupCount=1, delay=True),
        loopsink.TimedRotatingFileHandler(path, delay=True),
        loopsink.SocketHandler("127.0.0.1", 9),
        loopsink.DatagramHandler("127.0.0.1", 9),
        loopsink.SysLogHandler(("127.0.0.1", 514)),
        loopsink.SMTPHandler("127.0.0.1", "a@example.com", ["b@example.com"], "s"),
        loopsink.HTTPHandler("127.0.0.1:9", "/log", method="POST"),
        loopsink.MemoryHandler(10, target=loopsink.NullHandler()),
        loopsink.NullHandler(),
    ]
    for sink in sinks:
        assert sink.level == logging.NOTSET
        await sink.aclose()


def _refusal(make: Callable[[], object]) -> str:
    """The message of the NotImplementedError that ``make()`` raises."""
    try:
        make()
    except NotImplementedError as exc:
        return str(exc)
    raise AssertionError("expected NotImplementedError")


def _expect_refusal(make: Callable[[], object], message: str) -> None:
    got = _refusal(make)
    assert got == message, got


async def unix_only_features_refused(platform: str, tmp: str) -> None:
    """Without AF_UNIX (Windows) a unix-socket address fails where it is given."""
    import os

    import loopsink
    from loopsink.receiver import LogReceiver

    path = os.path.join(tmp, "log.sock")
    if platform != "windows":  # they exist there: nothing to refuse
        loopsink.SocketHandler(path, None)
        return
    lacks = "needs unix domain sockets (socket.AF_UNIX), which this platform (linux) lacks"
    fix = "use a (host, port) address instead"
    _expect_refusal(
        lambda: loopsink.SocketHandler(path, None), f"SocketHandler with port=None {lacks}: {fix}"
    )
    _expect_refusal(
        lambda: loopsink.DatagramHandler(path, None),
        f"DatagramHandler with port=None {lacks}: {fix}",
    )
    _expect_refusal(
        lambda: loopsink.SysLogHandler("/dev/log"),
        f"SysLogHandler with a socket path address ('/dev/log') {lacks}: {fix}",
    )
    async with LogReceiver() as receiver:
        refused: list[str] = []
        try:
            await receiver.listen_unix(path)
        except NotImplementedError as exc:
            refused.append(str(exc))
        assert refused == [f"LogReceiver.listen_unix {lacks}: {fix}"], refused


async def asyncio_program_into_a_file(platform: str, tmp: str) -> None:
    import logging
    import os

    import loopsink

    path = os.path.join(tmp, "app.log")
    sink = loopsink.FileHandler(path)
    sink.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("sim.app")
    logger.setLevel(logging.INFO)
    async with loopsink.install(sink, logger=logger):
        for n in range(3):
            logger.info("line %d", n)
    with open(path) as file:
        text = file.read()
    assert text == "INFO line 0\nINFO line 1\nINFO line 2\n", text


def sync_program_into_a_file(platform: str, tmp: str) -> None:
    import logging
    import os

    import loopsink

    path = os.path.join(tmp, "sync.log")
    sink = loopsink.FileHandler(path)
    sink.setFormatter(logging.Formatter("%(message)s"))
    running = loopsink.start_in_thread(sink, logger="sim.legacy")
    try:
        logging.getLogger("sim.legacy").warning("from a plain thread")
        running.flush(5.0)
    finally:
        running.close(5.0)
    with open(path) as file:
        text = file.read()
    assert text == "from a plain thread\n", text


async def _three_batches(sink: Any, flushed: Callable[[int], Awaitable[None]]) -> None:
    """Log three records, each in a batch of its own, waiting until each has arrived."""
    import logging

    import loopsink

    async with loopsink.install(sink, logger="sim", level=logging.INFO) as queue:
        for n in range(3):
            logging.getLogger("sim").warning("batch %d", n)
            await queue.flush()
            await flushed(n + 1)


async def syslog_over_tcp(platform: str, tmp: str) -> None:
    """Every batch reaches the receiver (the hang-up probe runs before each write)."""
    import socket

    import anyio

    import loopsink
    from loopsink.receiver import SyslogReceiver

    async with SyslogReceiver(udp_port=None) as receiver:
        assert receiver.tcp_address is not None
        sink = loopsink.SysLogHandler(receiver.tcp_address, socktype=socket.SOCK_STREAM)

        async def arrived(count: int) -> None:
            with anyio.fail_after(5):
                await receiver.wait_count(count)

        await _three_batches(sink, arrived)
        assert [m.body for m in receiver.messages] == ["batch 0", "batch 1", "batch 2"], [
            m.body for m in receiver.messages
        ]
        assert receiver.connections == 1


async def socket_handler_over_tcp(platform: str, tmp: str) -> None:
    import anyio

    import loopsink
    from loopsink.receiver import LogReceiver
    from loopsink.testing import CapturingSink

    got = CapturingSink()
    async with LogReceiver(got) as receiver:
        host, port = await receiver.listen_tcp("127.0.0.1", 0)
        sink = loopsink.SocketHandler(host, port)

        async def arrived(count: int) -> None:
            with anyio.fail_after(5):
                await got.wait_for(lambda records: len(records) >= count)

        await _three_batches(sink, arrived)
    assert got.messages == ["batch 0", "batch 1", "batch 2"], got.messages
    assert sink.connections == 1


async def socket_handler_notices_a_hangup(platform: str, tmp: str) -> None:
    """A receiver restarted between two batches loses nothing: the probe sees the hang-up.

    Without a probe the second batch is written into the dead connection (the kernel takes
    it), and is lost when the reset arrives.
    """
    import logging

    import anyio

    import loopsink
    from loopsink.receiver import LogReceiver
    from loopsink.testing import CapturingSink

    first, second = CapturingSink(), CapturingSink()
    async with LogReceiver(first) as receiver:
        host, port = await receiver.listen_tcp("127.0.0.1", 0)
        sink = loopsink.SocketHandler(host, port)
        sink.retryStart = 0.01
        async with loopsink.install(sink, logger="sim.hangup") as queue:
            logging.getLogger("sim.hangup").warning("before")
            await queue.flush()
            with anyio.fail_after(5):
                await first.wait_for(lambda records: len(records) >= 1)
            await receiver.aclose()
            async with LogReceiver(second) as again:
                await again.listen_tcp(host, port)
                logging.getLogger("sim.hangup").warning("after")
                await queue.flush()
                with anyio.fail_after(5):
                    await second.wait_for(lambda records: len(records) >= 1)
    assert (first.messages, second.messages) == (["before"], ["after"])
    assert sink.connections == 2


async def datagram_handler_over_udp(platform: str, tmp: str) -> None:
    """The receiver reads datagrams without recvmsg (Windows) and still spots a cut one."""
    import anyio

    import loopsink
    from loopsink.receiver import LogReceiver
    from loopsink.testing import CapturingSink

    got = CapturingSink()
    rejected = anyio.Event()
    reasons: list[str] = []

    def on_reject(reason: str, detail: str) -> None:
        reasons.append(reason)
        rejected.set()

    async with LogReceiver(got, max_frame_size=4096, on_reject=on_reject) as receiver:
        host, port = await receiver.listen_udp("127.0.0.1", 0)
        sink = loopsink.DatagramHandler(host, port)

        async def arrived(count: int) -> None:
            with anyio.fail_after(5):
                await got.wait_for(lambda records: len(records) >= count)

        await _three_batches(sink, arrived)
        # a datagram larger than the receiver's buffer is counted as oversized, not read
        import socket

        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with raw:
            raw.sendto(b"x" * 9000, (host, port))
        with anyio.fail_after(5):
            await rejected.wait()
        assert reasons == ["oversized"], reasons
        assert dict(receiver.stats.rejected) == {"oversized": 1}, receiver.stats
    assert got.messages == ["batch 0", "batch 1", "batch 2"], got.messages


async def http_handler_keeps_its_connection(platform: str, tmp: str) -> None:
    """HTTPHandler (h11 in its own thread) reuses one kept-alive connection, and a server
    that closed it while idle costs no record: the idle check needs no poll()."""
    import logging
    import threading
    import urllib.parse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import anyio

    import loopsink

    messages: list[str] = []
    peers: set[int] = set()
    arrived = threading.Condition()

    class Intake(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            with arrived:
                messages.append(form["msg"][0])
                peers.add(self.client_address[1])
                arrived.notify_all()
            close = messages[-1] == "second"  # the server drops the idle connection after it
            self.send_response(200)
            self.send_header("Content-Length", "0")
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = close

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Intake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def wait_count(count: int) -> None:
        with arrived:
            assert arrived.wait_for(lambda: len(messages) >= count, 5.0), messages

    try:
        host, port = server.server_address[:2]
        sink = loopsink.HTTPHandler(f"{host}:{port}", "/log", method="POST")
        async with loopsink.install(sink, logger="sim.http", level=logging.INFO) as queue:
            for count, text in enumerate(("first", "second", "third"), 1):
                logging.getLogger("sim.http").warning(text)
                await queue.flush()
                await anyio.to_thread.run_sync(wait_count, count)
            errors = queue.stats.sinks[0].errors
    finally:
        server.shutdown()
        server.server_close()
    assert messages == ["first", "second", "third"], messages
    assert len(peers) == 2, peers  # one kept-alive connection, a new one after the close
    assert errors == 0, errors


#: name -> scenario(platform, tmp dir); a coroutine function runs under anyio.run(asyncio).
SCENARIOS: dict[str, Callable[[str, str], Any]] = {
    "imports_and_every_sink": imports_and_every_sink,
    "unix_only_features_refused": unix_only_features_refused,
    "asyncio_program_into_a_file": asyncio_program_into_a_file,
    "sync_program_into_a_file": sync_program_into_a_file,
    "syslog_over_tcp": syslog_over_tcp,
    "socket_handler_over_tcp": socket_handler_over_tcp,
    "socket_handler_notices_a_hangup": socket_handler_notices_a_hangup,
    "datagram_handler_over_udp": datagram_handler_over_udp,
    "http_handler_keeps_its_connection": http_handler_keeps_its_connection,
}


def main(argv: list[str]) -> int:
    platform, wanted = argv[0], argv[1:] or list(SCENARIOS)
    simulate(platform)
    import inspect
    import tempfile
    import traceback

    import anyio

    failed = 0
    for name in wanted:
        scenario = SCENARIOS[name]
        with tempfile.TemporaryDirectory() as tmp:
            try:
                if inspect.iscoroutinefunction(scenario):
                    anyio.run(scenario, platform, tmp, backend="asyncio")
                else:
                    scenario(platform, tmp)
            except BaseException as exc:
                failed += 1
                detail = "".join(traceback.format_exception(exc)).replace("\n", "\n    ")
                print(f"FAIL {name}: {detail}", flush=True)
            else:
                print(f"ok {name}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
