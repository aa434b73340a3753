"""What the framework helpers share: run sinks and configured bridges for an app's lifetime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from .._bridge import LoggingBridge, _resolve_logger
from .._config import configured_bridges, run_bridges
from .._handler import AsyncHandler
from .._queue import LogQueue

__all__ = ["running"]


@asynccontextmanager
async def running(
    *sinks: AsyncHandler,
    logger: logging.Logger | str | None = None,
    level: int | str = logging.NOTSET,
    close_timeout: float = 5.0,
    **queue_options: Any,
) -> AsyncIterator[list[LogQueue]]:
    """Run ``sinks`` and every dictConfig-declared bridge on this loop while the block runs.

    With ``sinks``, a :class:`~loopsink.LogQueue` over them is bridged into ``logger`` (the
    root logger by default) for the duration of the block, as :func:`loopsink.install`
    does. Every bridge built by ``logging.config.dictConfig`` is started here too (see
    :func:`loopsink.config.run_bridges`). On exit, the own bridge is detached, and every
    record logged until then is written and flushed (each queue within ``close_timeout`` s)
    before the block ends.

    Yields the queues that run, for their ``stats``.

    Raises:
        ValueError: there is nothing to run: no sinks and no configured bridge.
    """
    if not sinks and not configured_bridges():
        raise ValueError(
            "nothing to run: pass sinks (e.g. loopsink.FileHandler('app.log')) or declare a "
            "bridge with logging.config.dictConfig ('()': 'loopsink.config.bridge')"
        )
    target = _resolve_logger(logger)
    async with AsyncExitStack() as stack:
        queues: list[LogQueue] = []
        bridges = await stack.enter_async_context(run_bridges(close_timeout=close_timeout))
        queues.extend(item.queue for item in bridges)
        if sinks:
            queue = LogQueue(*sinks, **queue_options)
            bridge = LoggingBridge(queue, level)
            await stack.enter_async_context(queue)
            target.addHandler(bridge)
            queues.append(queue)
            try:
                yield queues
            finally:
                target.removeHandler(bridge)
                await queue.aclose(close_timeout)
                bridge.close()
        else:
            yield queues
