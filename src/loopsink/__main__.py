"""The ``loopsink`` command line (``python -m loopsink``).

Each subcommand is a function registered in :data:`COMMANDS` with the function that adds its
arguments, so new subcommands slot in without touching the others. Today:

``loopsink listen``
    Receive records sent by ``SocketHandler`` / ``DatagramHandler`` (loopsink's or the
    stdlib's) and print them like ``tail -f``::

        python -m loopsink listen --tcp 127.0.0.1:9020 --udp 127.0.0.1:9021
        python -m loopsink listen --unix /tmp/log.sock --json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import ssl
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import anyio

from ._compat import threadsafe_scheduler
from ._exceptions import MissingExtraError, require
from ._version import __version__
from .handlers import StreamHandler

__all__ = ["main"]

DEFAULT_FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"


@dataclass(frozen=True)
class Command:
    """A subcommand: how to add its arguments and what runs it (returns the exit status)."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# -- listen ------------------------------------------------------------------------------------


def _host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9020`` for IPv6) into a pair; port 0 picks a free port."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 127.0.0.1:9020, got {text!r}")
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"port must be a number, got {port_text!r} in {text!r}"
        ) from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be from 0 to 65535, got {port} in {text!r}")
    return host, port


def _configure_listen(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("where to listen (at least one; each may repeat)")
    where.add_argument("--tcp", action="append", type=_host_port, default=[], metavar="HOST:PORT")
    where.add_argument("--udp", action="append", type=_host_port, default=[], metavar="HOST:PORT")
    where.add_argument(
        "--unix", action="append", default=[], metavar="PATH", help="unix stream socket"
    )
    where.add_argument(
        "--unix-datagram", action="append", default=[], metavar="PATH", help="unix datagram socket"
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--format",
        default=DEFAULT_FORMAT,
        # argparse %-formats help strings: the format's own %( must be doubled
        help=f"a logging.Formatter format string (default: {DEFAULT_FORMAT!r})".replace("%", "%%"),
    )
    out.add_argument("--json", action="store_true", help="print each record as one JSON object")
    out.add_argument("--level", default="NOTSET", help="print only records at this level or above")
    sec = parser.add_argument_group("security")
    sec.add_argument(
        "--hmac-key-file", metavar="FILE", help="accept only frames signed with this key"
    )
    sec.add_argument(
        "--tls-cert", metavar="PEM", help="serve TLS on --tcp with this certificate chain"
    )
    sec.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert (if not in it)")
    sec.add_argument(
        "--max-frame-size", type=int, default=None, metavar="BYTES", help="largest frame accepted"
    )
    sec.add_argument(
        "--max-connections",
        type=int,
        default=None,
        metavar="N",
        help="stream connections served at once (default: 512 or half the descriptor limit)",
    )
    sec.add_argument(
        "--frame-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="drop a connection whose frame takes longer than this (default: 10)",
    )
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")


# Every control character a sender could use to move the cursor, recolour the terminal or
# start a forged line: C0 (newline included), DEL, C1 (0x9b is a one-byte CSI), and the
# Unicode line and paragraph separators. Tab stays: it cannot forge anything.
_CONTROLS = [*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
_ESCAPE_TEXT = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _CONTROLS}
_ESCAPE_TEXT.update({0x0A: "\\n", 0x0D: "\\r"})
# Inside JSON strings: C0 is escaped by json.dumps already; the rest become \uXXXX.
_ESCAPE_JSON = {c: f"\\u{c:04x}" for c in _CONTROLS}


def escape_controls(text: str) -> str:
    """``text`` with every control character written as an escape: one record, one line."""
    return text.translate(_ESCAPE_TEXT)


class EscapingFormatter(logging.Formatter):
    """A Formatter whose output holds no control characters (a sender's text is untrusted)."""

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: its attributes, plus ``message`` (the merged text)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {k: v for k, v in record.__dict__.items() if k not in ("args", "exc_info")}
        data["message"] = record.getMessage()
        return json.dumps(data, default=str, ensure_ascii=False).translate(_ESCAPE_JSON)


class RejectionSummary:
    """Counts rejected frames by reason and prints at most one line per ``interval``.

    A flood of bad datagrams must not become a flood of stderr lines, and a sender's text
    in a rejection detail must not reach the terminal unescaped.
    """

    def __init__(self, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.counts: dict[str, int] = {}
        self.last_detail = ""
        self.printed_at = -interval

    def __call__(self, reason: str, detail: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.last_detail = detail
        if self.clock() - self.printed_at >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Print what was counted since the last line, if anything."""
        if not self.counts:
            return
        total = sum(self.counts.values())
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.counts.items()))
        detail = escape_controls(self.last_detail[:200])
        frames = "frame" if total == 1 else "frames"
        _print_err(f"loopsink: rejected {total} {frames} ({reasons}); last: {detail}")
        self.counts.clear()
        self.printed_at = self.clock()

    async def run(self) -> None:
        """Print the counts left over from a burst, once per interval."""
        while True:
            await anyio.sleep(self.interval)
            if self.clock() - self.printed_at >= self.interval:
                self.flush()


def _fail(args: argparse.Namespace, message: str) -> NoReturn:
    """Exit with status 2 and the usage line of the subcommand, as argparse does."""
    parser: argparse.ArgumentParser = args._parser
    parser.error(message)


def _run_listen(args: argparse.Namespace) -> int:
    if not (args.tcp or args.udp or args.unix or args.unix_datagram):
        _fail(args, "listen needs at least one of --tcp, --udp, --unix, --unix-datagram")
    if args.tls_key and not args.tls_cert:
        _fail(args, "--tls-key needs --tls-cert")
    if args.tls_cert and not args.tcp:
        _fail(args, "--tls-cert serves TLS on --tcp sockets: give at least one --tcp")
    try:
        level = logging._checkLevel(args.level.upper())  # type: ignore[attr-defined]
    except ValueError:
        _fail(args, f"--level must be a level name such as INFO or WARNING, got {args.level!r}")
    if args.max_connections is not None and args.max_connections < 1:
        _fail(args, f"--max-connections must be at least 1, got {args.max_connections}")
    if args.frame_timeout is not None and not args.frame_timeout > 0:
        _fail(
            args, f"--frame-timeout must be a positive number of seconds, got {args.frame_timeout}"
        )
    # files are read here, before the event loop starts
    hmac_key = None
    if args.hmac_key_file:
        try:
            with open(args.hmac_key_file, "rb") as key_file:
                hmac_key = key_file.read().strip()
        except OSError as exc:
            _fail(args, f"cannot read --hmac-key-file: {exc}")
        if not hmac_key:
            _fail(args, f"--hmac-key-file {args.hmac_key_file!r} is empty")
    ssl_context = None
    if args.tls_cert:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            _fail(args, f"cannot load --tls-cert/--tls-key: {exc}")
    if args.backend == "trio":  # anyio's own error would tell the user to install anyio[trio]
        require("trio", what="--backend trio", extra="trio")
    try:
        return anyio.run(_listen, args, level, hmac_key, ssl_context, backend=args.backend)
    except KeyboardInterrupt:  # Ctrl-C before the signal handler was installed
        return 130


class _Output(StreamHandler):
    """stdout; when the reader goes away (``loopsink listen | head``) the command stops."""

    def __init__(self, stop: anyio.Event) -> None:
        super().__init__(sys.stdout)
        self.stop = stop
        self.broken = False

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], BrokenPipeError):
            self.broken = True
            self.stop.set()
            return
        super().handleError(record)


async def _listen(
    args: argparse.Namespace, level: int, hmac_key: bytes | None, ssl_context: ssl.SSLContext | None
) -> int:
    from .receiver import DEFAULT_MAX_FRAME_SIZE, LogReceiver
    from .receiver._server import DEFAULT_FRAME_TIMEOUT

    stop = anyio.Event()
    sink = _Output(stop)
    sink.setLevel(level)
    sink.setFormatter(JsonLinesFormatter() if args.json else EscapingFormatter(args.format))
    rejections = RejectionSummary()
    receiver = LogReceiver(
        sink,
        hmac_key=hmac_key,
        max_frame_size=args.max_frame_size or DEFAULT_MAX_FRAME_SIZE,
        on_reject=rejections,
        max_connections=args.max_connections,
        frame_timeout=args.frame_timeout or DEFAULT_FRAME_TIMEOUT,
    )

    async def stop_on_signal() -> None:
        try:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    stop.set()
                    return
        except NotImplementedError:
            # Windows' event loops have no signal handlers: a plain handler for Ctrl-C hands
            # the stop over to the loop instead (a KeyboardInterrupt would skip the drain).
            schedule = threadsafe_scheduler()
            previous = signal.signal(signal.SIGINT, lambda *_: schedule(stop.set))
            try:
                await anyio.sleep_forever()
            finally:
                signal.signal(signal.SIGINT, previous)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(stop_on_signal)
        tasks.start_soon(rejections.run)
        async with receiver:
            bound: list[str] = []
            try:
                for host, port in args.tcp:
                    address = await receiver.listen_tcp(host, port, ssl_context=ssl_context)
                    bound.append(f"tcp{'+tls' if ssl_context else ''} {_show(address)}")
                for host, port in args.udp:
                    bound.append(f"udp {_show(await receiver.listen_udp(host, port))}")
                bound += [f"unix {await receiver.listen_unix(p)}" for p in args.unix]
                bound += [
                    f"unix-datagram {await receiver.listen_unix_datagram(p)}"
                    for p in args.unix_datagram
                ]
            except OSError as exc:
                print(f"loopsink listen: cannot listen: {exc}", file=sys.stderr)
                tasks.cancel_scope.cancel()
                return 1
            print(f"loopsink: listening on {', '.join(bound)} (Ctrl-C stops)", file=sys.stderr)
            sys.stderr.flush()
            await stop.wait()
        tasks.cancel_scope.cancel()
    if sink.broken:
        # nobody reads stdout any more: keep Python's exit-time flush from complaining
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    else:
        await sink.flush()
    rejections.flush()
    stats = receiver.stats
    rejected = f", {stats.rejected_total} frames rejected" if stats.rejected_total else ""
    print(f"loopsink: stopped after {stats.records} records{rejected}", file=sys.stderr)
    return 0


def _print_err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _show(address: Any) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


# -- the entry point ---------------------------------------------------------------------------

COMMANDS: dict[str, Command] = {
    "listen": Command(
        help="print records received from SocketHandler / DatagramHandler senders",
        configure=_configure_listen,
        run=_run_listen,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopsink", description="loopsink tools: asyncio-native logging handlers."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        child = sub.add_parser(name, help=command.help, description=command.help)
        command.configure(child)
        child.set_defaults(_command=command, _parser=child)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (``python -m loopsink`` exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Command | None = getattr(args, "_command", None)
    if command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return command.run(args)
    except MissingExtraError as exc:
        print(f"loopsink {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
