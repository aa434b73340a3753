"""A forked child never writes into its parent's connection (#22 item 1).

The parent's network sinks connected before the fork; the child inherits the descriptors.
Bytes the child wrote there would be spliced into the parent's stream (a torn frame for
the receiver) and the parent's pending writes could be sent twice. A child connects on its
own: the receiver sees every record exactly once, each connection carrying whole frames.
"""

from __future__ import annotations

import ast
import os
import pickle
import socket
import struct
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers.processes import DEADLINE, assert_no_line_twice, run_python

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

COUNT = 200

SCRIPT = """
import logging, multiprocessing, os, sys
import loopsink
kind, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if kind == "socket":
    sink = loopsink.SocketHandler("127.0.0.1", port)
elif kind == "http":
    sink = loopsink.HTTPHandler(f"127.0.0.1:{port}", "/log", method="POST")
else:
    import socket as s
    sink = loopsink.SysLogHandler(address=("127.0.0.1", port), socktype=s.SOCK_STREAM)
    sink.setFormatter(logging.Formatter("%(message)s"))
handle = loopsink.start_in_thread(sink, level=logging.INFO)
logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger("app")
for i in range(count):
    log.info("parent-before %d", i)
handle.flush(30)  # the parent's connection is up, and has carried records

def child(tag):
    for i in range(count):
        log.info("%s %d", tag, i)

ctx = multiprocessing.get_context("fork")
children = [ctx.Process(target=child, args=(f"child{k}",)) for k in range(2)]
for process in children:
    process.start()
for i in range(count):
    log.info("parent-during %d", i)
for process in children:
    process.join(60)
    assert process.exitcode == 0, process.exitcode
for i in range(count):
    log.info("parent-after %d", i)
"""


class Receiver:
    """A TCP server on loopback: keeps what each connection carried, as raw bytes."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.streams: list[bytearray] = []
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            stream = bytearray()
            self.streams.append(stream)
            thread = threading.Thread(target=self._read, args=(conn, stream), daemon=True)
            thread.start()
            self._threads.append(thread)

    @staticmethod
    def _read(conn: socket.socket, stream: bytearray) -> None:
        answered = 0
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                stream += data
                # an HTTP client waits for an answer to each request (ends of heads: enough
                # for these bodies, which never hold a blank line)
                heads = stream.count(b"\r\n\r\n")
                if stream.startswith(b"POST ") and heads > answered:
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" * (heads - answered)
                    )
                    answered = heads

    def close(self) -> list[bytes]:
        """Stop accepting; wait (bounded) for every connection to end; return the streams."""
        self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        self.server.close()
        self._accepting.join(DEADLINE)
        for thread in self._threads:
            thread.join(DEADLINE)
            assert not thread.is_alive(), "a connection was never closed"
        return [bytes(stream) for stream in self.streams]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    yield rx
    rx.server.close()


def http_messages(stream: bytes) -> list[str]:
    """HTTPHandler's POST requests (urlencoded forms), one after another on a connection."""
    messages, at = [], 0
    while at < len(stream):
        end = stream.index(b"\r\n\r\n", at)
        head = stream[at:end].decode("latin-1").split("\r\n")
        assert head[0] == "POST /log HTTP/1.1", f"a torn request: {head[0]!r}"
        length = next(
            int(line.split(":", 1)[1])
            for line in head
            if line.lower().startswith("content-length:")
        )
        body = stream[end + 4 : end + 4 + length]
        assert len(body) == length, "a torn body"
        form = urllib.parse.parse_qs(body.decode())
        messages.append(form["msg"][0] % ast.literal_eval(form["args"][0]))
        at = end + 4 + length
    return messages


def socket_messages(stream: bytes) -> list[str]:
    """SocketHandler's frames: a 4-byte length, then a pickled dict. A torn one raises."""
    messages, at = [], 0
    while at < len(stream):
        assert at + 4 <= len(stream), "a torn frame header"
        (size,) = struct.unpack(">L", stream[at : at + 4])
        body = stream[at + 4 : at + 4 + size]
        assert len(body) == size, "a torn frame"
        messages.append(str(pickle.loads(body)["msg"]))  # our own test data
        at += 4 + size
    return messages


def syslog_messages(stream: bytes) -> list[str]:
    """SysLogHandler over TCP: '<PRI>message' frames, each ended by NUL or LF."""
    frames = [frame for frame in stream.replace(b"\n", b"\0").split(b"\0") if frame]
    messages = []
    for frame in frames:
        text = frame.decode()
        assert text.startswith("<"), f"a torn frame: {text!r}"
        assert ">" in text, f"a torn frame: {text!r}"
        messages.append(text.split(">", 1)[1])
    return messages


@pytest.mark.parametrize("kind", ["socket", "syslog-tcp", "http"])
def test_forked_children_connect_on_their_own(
    tmp_path: Path, receiver: Receiver, kind: str
) -> None:
    done = run_python(SCRIPT, kind, str(receiver.port), str(COUNT))
    assert done.returncode == 0, done.stderr[-3000:]
    streams = receiver.close()
    parse = {"socket": socket_messages, "syslog-tcp": syslog_messages, "http": http_messages}[kind]
    per_stream = [parse(stream) for stream in streams]
    messages = [m for stream in per_stream for m in stream]
    assert_no_line_twice(messages)
    tags = ["parent-before", "parent-during", "parent-after", "child0", "child1"]
    expected = {f"{tag} {i}" for tag in tags for i in range(COUNT)}
    assert set(messages) == expected, sorted(set(messages) ^ expected)[:5]
    # each process on a connection of its own: no stream mixes a child's with another's
    for stream in per_stream:
        owners = {m.split(" ", 1)[0].replace("-before", "").replace("-during", "") for m in stream}
        owners = {o.replace("-after", "") for o in owners}
        assert len(owners) == 1, owners
    # and the children's exits did not end the parent's connection: one carried all of it
    assert sum(1 for stream in per_stream if stream and stream[0].startswith("parent")) == 1
    assert done.stderr == "", done.stderr[-3000:]
