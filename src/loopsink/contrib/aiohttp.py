"""An ``aiohttp.web`` cleanup context that runs loopsink on the app's loop and flushes it.

::

    from aiohttp import web
    import loopsink
    from loopsink.contrib.aiohttp import cleanup_ctx

    app = web.Application()
    app.cleanup_ctx.append(cleanup_ctx(loopsink.FileHandler("app.log")))
    web.run_app(app)

aiohttp enters it at start-up and leaves it at clean-up, after the server has stopped
accepting connections and the running handlers have finished (``web.run_app`` on SIGINT or
SIGTERM, or ``AppRunner.cleanup()``), so every record logged while serving, and while the
server shuts down, is written before the process exits. Append it *first*, so that the
other contexts' clean-up logs still reach the sinks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from .._exceptions import require
from .._handler import AsyncHandler
from .._queue import LogQueue
from ._common import running

require("aiohttp", what="loopsink.contrib.aiohttp", extra="aiohttp")

from aiohttp import web  # noqa: E402 - after the check that explains a missing aiohttp

__all__ = ["QUEUES", "cleanup_ctx"]

#: Where the cleanup context stores the queues it runs: ``app[QUEUES]``, for their stats.
QUEUES: web.AppKey[list[LogQueue]] = web.AppKey("loopsink_queues", list)


def cleanup_ctx(
    *sinks: AsyncHandler,
    logger: logging.Logger | str | None = None,
    level: int | str = logging.NOTSET,
    close_timeout: float = 5.0,
    **queue_options: Any,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Make a ``cleanup_ctx`` entry that runs ``sinks`` (and every dictConfig bridge).

    Args:
        *sinks: sinks to bridge ``logger`` into while the app runs.
        logger: the logger (or name) to bridge; the root logger by default.
        level: the bridge's level.
        close_timeout: how long the final drain may take, per queue, in seconds.
        **queue_options: ``capacity``, ``overflow``, ``name`` for the queue over ``sinks``.
    """

    async def loopsink_ctx(app: web.Application) -> AsyncIterator[None]:
        async with running(
            *sinks,
            logger=logger,
            level=level,
            close_timeout=close_timeout,
            **queue_options,
        ) as queues:
            app[QUEUES] = queues
            yield

    return loopsink_ctx
