"""Shutting down a test server's own event loop without leaving sockets to the collector.

A server that runs on its own loop in a thread (aiohttp, hypercorn) may still hold a
connection's transport when it stops: one whose TLS handshake failed before the server's
protocol saw it, one that its shutdown did not reach. Such a transport stays open until
the garbage collector finds it, and its ResourceWarning then fires inside whichever test is
running at that moment, far from the server that left it. Closing every transport still
registered with the server's loop, before the loop closes, ends them with their server.
Only the server's loop is touched: a transport of the code under test lives on the test's
own loop and is never closed here.
"""

from __future__ import annotations

import asyncio


def close_leftover_transports(loop: asyncio.AbstractEventLoop) -> None:
    """Abort every transport still open on ``loop`` (a stopped server's loop), then let the
    loop run once so that their connection_lost callbacks run before it closes."""
    # Selector loops keep their transports, weakly, by file descriptor: the only registry
    # of a loop's sockets that asyncio has (a private attribute; test code only).
    # abort() also ends one that was closing but still had data to write, and does nothing
    # to one already lost.
    transports = getattr(loop, "_transports", None)
    if not transports:
        return
    for transport in list(transports.values()):
        transport.abort()
    loop.run_until_complete(asyncio.sleep(0))
