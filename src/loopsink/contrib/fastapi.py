"""A FastAPI / Starlette lifespan that runs loopsink on the app's loop and flushes at shutdown.

::

    from fastapi import FastAPI
    import loopsink
    from loopsink.contrib.fastapi import lifespan

    app = FastAPI(lifespan=lifespan(loopsink.FileHandler("app.log")))

The server (uvicorn, hypercorn, granian) enters the lifespan when the app starts and leaves
it after the last request has been answered, so every record logged while serving, and
while the server drains its connections at shutdown, is written before the process exits.
Nothing here imports FastAPI: any ASGI framework with a ``lifespan=`` argument works.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from .._context import bind
from .._handler import AsyncHandler
from ._common import running
from ._request_id import (
    DEFAULT_HEADER,
    check_field_name,
    check_header_name,
    checked_request_id,
    new_request_id,
)

__all__ = ["RequestIdMiddleware", "lifespan"]

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def lifespan(
    *sinks: AsyncHandler,
    logger: logging.Logger | str | None = None,
    level: int | str = logging.NOTSET,
    close_timeout: float = 5.0,
    app_lifespan: Lifespan | None = None,
    **queue_options: Any,
) -> Lifespan:
    """Make a lifespan that runs ``sinks`` (and every dictConfig-declared bridge).

    Pass it as ``FastAPI(lifespan=...)`` or ``Starlette(lifespan=...)``. Without ``sinks`` it
    runs the bridges declared with ``logging.config.dictConfig`` (for instance in a uvicorn
    ``--log-config`` file); with both, both.

    Args:
        *sinks: sinks to bridge ``logger`` into while the app runs.
        logger: the logger (or name) to bridge; the root logger by default.
        level: the bridge's level.
        close_timeout: how long the final drain may take, per queue, in seconds.
        app_lifespan: your own lifespan, run inside ours, so that what it logs while the
            app starts and stops is delivered too. Its state (what it yields) is yours.
        **queue_options: ``capacity``, ``overflow``, ``name`` for the queue over ``sinks``.

    The queues that run are stored as ``app.state.loopsink`` (a list), for their ``stats``.
    """

    @asynccontextmanager
    async def loopsink_lifespan(app: Any) -> AsyncIterator[Any]:
        async with running(
            *sinks,
            logger=logger,
            level=level,
            close_timeout=close_timeout,
            **queue_options,
        ) as queues:
            state = getattr(app, "state", None)
            if state is not None:
                state.loopsink = queues
            if app_lifespan is None:
                yield None
            else:
                async with app_lifespan(app) as app_state:
                    yield app_state

    return loopsink_lifespan


class RequestIdMiddleware:
    """Pure ASGI middleware: bind a request id to every record logged while serving a request.

    ::

        app = FastAPI(lifespan=lifespan(sink))
        app.add_middleware(RequestIdMiddleware)

    The id is the request's ``X-Request-ID`` header when it looks like one (short printable
    ASCII), else a new random one; it is bound with :func:`loopsink.bind` as ``request_id``
    for the whole request (code run with ``run_in_threadpool`` included) and sent back in
    the response's header. Being pure ASGI, it adds no task and no copy of the body.

    Args:
        app: the ASGI application to wrap.
        header: the request and response header that carries the id.
        field: the record attribute the id is bound as.
        generate: makes an id when the request has none (default: 32 hex digits).
    """

    def __init__(
        self,
        app: Any,
        *,
        header: str = DEFAULT_HEADER,
        field: str = "request_id",
        generate: Callable[[], str] = new_request_id,
    ) -> None:
        self.app = app
        self.header = check_header_name(header)
        self.field = check_field_name(field)
        self.generate = generate
        self._raw_header = header.lower().encode("latin-1")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == self._raw_header:
                incoming = value.decode("latin-1")
                break
        request_id = checked_request_id(incoming, self.generate)
        raw_id = request_id.encode("latin-1", "replace")
        raw_header = self._raw_header

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != raw_header]
                headers.append((raw_header, raw_id))
                message = {**message, "headers": headers}
            await send(message)

        with bind(**{self.field: request_id}):
            await self.app(scope, receive, send_with_id)
