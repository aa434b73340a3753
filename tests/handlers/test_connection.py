"""The shared connection helper: peer hang-up checks on real loopback sockets, the resend
ledger of the at-least-once stream sinks, and their back-off schedule."""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Iterator

import pytest

from loopsink.handlers._connection import (
    HangupWatch,
    PeerState,
    ResendLedger,
    next_delay,
    peek_peer,
)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected TCP pair on loopback: (our side, non-blocking; the server's side)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.create_connection(listener.getsockname(), timeout=5)
        theirs, _ = listener.accept()
    ours.setblocking(False)
    yield ours, theirs
    ours.close()
    theirs.close()


def wait_readable(sock: socket.socket) -> None:
    """Until what the peer did has reached our socket (a wait with a deadline, no sleep)."""
    readable, _, errored = select.select([sock], [], [sock], 5.0)
    assert readable or errored, "the peer's close never arrived"


def reset(ours: socket.socket, theirs: socket.socket) -> None:
    """The server closes with our bytes unread and SO_LINGER 0: its kernel sends a reset."""
    ours.send(b"unread")
    select.select([theirs], [], [], 5.0)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    theirs.close()
    wait_readable(ours)


def test_peek_an_idle_connection_is_alive(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    assert peek_peer(ours) is PeerState.ALIVE
    assert peek_peer(ours) is PeerState.ALIVE  # asking twice changes nothing


def test_peek_a_clean_close_is_closed(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    theirs.close()
    wait_readable(ours)
    assert peek_peer(ours) is PeerState.CLOSED


def test_peek_a_reset_is_a_reset(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    reset(ours, theirs)
    assert peek_peer(ours) is PeerState.RESET


def test_peek_bytes_from_the_peer_are_data_and_stay_unread(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    theirs.sendall(b"hello")
    wait_readable(ours)
    assert peek_peer(ours) is PeerState.DATA
    assert ours.recv(5) == b"hello"  # a plain socket is only peeked at
    assert peek_peer(ours) is PeerState.ALIVE


def test_peek_a_closed_socket_is_closed(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    ours.close()
    assert peek_peer(ours) is PeerState.CLOSED


def test_watch_sees_alive_close_and_never_reads(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    watch = HangupWatch(ours, tls=False)
    assert watch.state() is PeerState.ALIVE
    theirs.sendall(b"kept")
    theirs.close()
    wait_readable(ours)
    assert watch.state() is PeerState.CLOSED
    assert ours.recv(4) == b"kept"  # the bytes stay for whoever owns the stream


def test_watch_sees_a_reset(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    watch = HangupWatch(ours, tls=False)
    reset(ours, theirs)
    assert watch.state() is PeerState.RESET


def test_the_ledger_keeps_the_last_write_for_a_reset() -> None:
    ledger = ResendLedger()
    ledger.sent(b"a", 1)
    ledger.sent(b"bb", 2)  # the write before it is taken as read
    assert ledger.unconfirmed == [(b"bb", 2)]
    again = ledger.lost(reset=True)
    assert again == [(b"bb", 2)]
    assert ledger.unconfirmed == []
    ledger.sent(b"ccc", 3, again)  # one write: what is sent again, then the new bytes
    assert ledger.unconfirmed == [(b"bb", 2), (b"ccc", 3)]
    again = ledger.lost(reset=True)
    assert ResendLedger.records(again) == 5
    assert ResendLedger.payload(again, b"dd") == b"bbcccdd"
    ledger.sent(b"dd", 2, again)  # at most two writes kept: the newest
    assert ledger.unconfirmed == [(b"ccc", 3), (b"dd", 2)]


def test_the_ledger_forgets_after_a_clean_close_or_on_purpose() -> None:
    ledger = ResendLedger()
    ledger.sent(b"a", 1)
    assert ledger.lost(reset=False) == []
    assert ledger.unconfirmed == []
    ledger.sent(b"b", 1)
    ledger.forget()
    assert ledger.lost(reset=True) == []
    assert ResendLedger.payload([], b"same") == b"same"


def test_next_delay_grows_by_the_factor_up_to_the_maximum() -> None:
    delays = []
    delay = None
    for _ in range(8):
        delay = next_delay(delay, 0.05, 2.0, 2.0)
        delays.append(delay)
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert next_delay(None, 1.0, 2.0, 30.0) == 1.0
    assert next_delay(20.0, 1.0, 2.0, 30.0) == 30.0
