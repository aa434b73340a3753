"""Framework helpers: start loopsink with the application, flush it before the process exits.

* :mod:`loopsink.contrib.fastapi`: a lifespan for FastAPI and Starlette (any ASGI server).
* :mod:`loopsink.contrib.aiohttp`: a ``cleanup_ctx`` entry for ``aiohttp.web``.

Both run the sinks you pass them *and* every bridge declared through
``logging.config.dictConfig`` (see :mod:`loopsink.config`) on the application's event loop,
and on shutdown wait until every record logged so far is written.
"""

from ._common import running as running

__all__ = ["running"]
