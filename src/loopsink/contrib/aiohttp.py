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
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._context import bind
from .._exceptions import require
from .._handler import AsyncHandler
from .._queue import LogQueue
from ._common import running
from ._request_id import (
    DEFAULT_HEADER,
    check_field_name,
    check_header_name,
    checked_request_id,
    new_request_id,
)

require("aiohttp", what="loopsink.contrib.aiohttp", extra="aiohttp")

from aiohttp import web  # noqa: E402 - after the check that explains a missing aiohttp

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

__all__ = ["QUEUES", "cleanup_ctx", "request_id_middleware"]

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


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_id_middleware(
    *,
    header: str = DEFAULT_HEADER,
    field: str = "request_id",
    generate: Callable[[], str] = new_request_id,
) -> Middleware:
    """Make an aiohttp middleware that binds a request id to every record of a request.

    ::

        app = web.Application(middlewares=[request_id_middleware()])

    The id is the request's ``X-Request-ID`` header when it looks like one (short printable
    ASCII), else a new random one; it is bound with :func:`loopsink.bind` as ``request_id``
    while the handler runs and sent back in the response's header.

    Args:
        header: the request and response header that carries the id.
        field: the record attribute the id is bound as.
        generate: makes an id when the request has none (default: 32 hex digits).
    """
    check_header_name(header)
    check_field_name(field)

    @web.middleware
    async def loopsink_request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = checked_request_id(request.headers.get(header), generate)
        with bind(**{field: request_id}):
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                exc.headers[header] = request_id
                raise
        if not response.prepared:
            response.headers[header] = request_id
        return response

    return loopsink_request_id
