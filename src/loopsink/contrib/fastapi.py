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

from .._handler import AsyncHandler
from ._common import running

__all__ = ["lifespan"]

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
