"""SysLogHandler's transports on their own: each opens a real socket on loopback (or a unix
path), on asyncio and trio, and closes what it opened."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from loopsink.handlers._connection import PeerState, peek_peer
from loopsink.handlers._syslogtransport import (
    close_connection,
    connect_tcp,
    connect_udp,
    connect_unix,
    send_datagram,
)

unix_only = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs unix sockets")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ls-") as name:  # unix paths stay short
        yield Path(name)


async def test_udp_resolves_once_and_sends_datagrams() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        connection = await connect_udp(*receiver.getsockname())
        assert connection.socktype == socket.SOCK_DGRAM
        assert connection.stream is None
        assert connection.dest == receiver.getsockname()
        await send_datagram(connection.sock, connection.dest, b"<14>one\x00")
        await send_datagram(connection.sock, connection.dest, b"<14>two\x00")
        assert receiver.recv(100) == b"<14>one\x00"
        assert receiver.recv(100) == b"<14>two\x00"
        await close_connection(connection.stream, connection.sock, connection.probe)
        assert connection.sock.fileno() == -1


async def test_tcp_gives_a_stream_and_a_probe_that_sees_the_close() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        host, port = listener.getsockname()
        connection = await connect_tcp(
            host, port, ssl_context=None, server_hostname=None, connect_timeout=5
        )
        theirs, _ = listener.accept()
    assert connection.socktype == socket.SOCK_STREAM
    assert connection.stream is not None
    assert connection.probe is not None
    await connection.stream.send(b"5 <14>x")
    theirs.settimeout(5)
    assert theirs.recv(100) == b"5 <14>x"
    assert peek_peer(connection.probe) is PeerState.ALIVE
    theirs.close()
    with anyio.fail_after(5):
        await anyio.wait_readable(connection.probe)
    assert peek_peer(connection.probe) is PeerState.CLOSED
    probe = connection.probe
    await close_connection(connection.stream, connection.sock, probe)
    assert probe.fileno() == -1


async def test_tcp_refused_raises_oserror() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        host, port = listener.getsockname()
    with pytest.raises(OSError):
        await connect_tcp(host, port, ssl_context=None, server_hostname=None, connect_timeout=5)


@unix_only
async def test_unix_tries_a_datagram_socket_then_a_stream(short_dir: Path) -> None:
    dgram_path = str(short_dir / "dgram")
    stream_path = str(short_dir / "stream")
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dgram,
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stream,
    ):
        dgram.bind(dgram_path)
        stream.bind(stream_path)
        stream.listen()
        first = await connect_unix(dgram_path, None, connect_timeout=5)
        assert first.socktype == socket.SOCK_DGRAM
        assert first.stream is None
        second = await connect_unix(stream_path, None, connect_timeout=5)
        assert second.socktype == socket.SOCK_STREAM  # the stdlib's fallback
        assert second.stream is not None
        with pytest.raises(OSError):  # asked for a datagram socket: no fallback
            await connect_unix(stream_path, socket.SOCK_DGRAM, connect_timeout=5)
        for item in (first, second):
            await close_connection(item.stream, item.sock, item.probe)
