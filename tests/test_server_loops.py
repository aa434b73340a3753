"""The test servers' own loops close the connections their servers left open (servers.loops)."""

from __future__ import annotations

import asyncio
import socket

from servers.loops import close_leftover_transports


def test_a_connection_a_stopped_server_left_open_ends_with_its_loop() -> None:
    loop = asyncio.new_event_loop()
    accepted = asyncio.Event()

    class Forgetful(asyncio.Protocol):
        """Keeps no reference to its transport, as a server whose TLS handshake failed."""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted.set()

    try:
        server = loop.run_until_complete(loop.create_server(Forgetful, "127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            loop.run_until_complete(asyncio.wait_for(accepted.wait(), 10))
            server.close()  # stops listening; the accepted connection stays open
            close_leftover_transports(loop)
            assert client.recv(1) == b""  # the server's side is closed: the client sees EOF
    finally:
        # Without the helper the transport dies with the loop, unclosed: a ResourceWarning
        # that pytest (warnings as errors) reports as this test's failure.
        loop.close()
