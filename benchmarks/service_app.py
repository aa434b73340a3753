"""The FastAPI service that benchmarks/bench_service.py serves with a real uvicorn process.

Two endpoints, as a small service has: ``/items/{n}`` logs two lines per request,
``/orders/{n}`` three. Each request takes a sequence number of its own, so that every line
of every request can be found and counted in the log file afterwards; ``/stats`` says how
many requests were served (and logs nothing of its own, bar uvicorn's access line).

How the app logs is chosen by ``BENCH_SERVICE_MODE`` (the log-config file given to uvicorn
does the rest):

* ``none``: the ``app`` logger is disabled: no logging at all, the baseline;
* ``stdlib`` and ``config``: handlers from uvicorn's ``--log-config`` file (the stdlib's
  ``FileHandler``, its queue setup through :func:`stdlib_queue`, or a loopsink bridge run
  by the lifespan without sinks);
* ``lifespan``: ``loopsink.contrib.fastapi.lifespan(FileHandler(BENCH_SERVICE_LOG))`` on
  the root logger, which uvicorn's loggers propagate to.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import queue
from typing import Any

from fastapi import FastAPI

import loopsink
from loopsink.contrib.fastapi import lifespan

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def make_app() -> FastAPI:
    mode = os.environ.get("BENCH_SERVICE_MODE", "none")
    log = logging.getLogger("app")
    log.setLevel(logging.INFO)
    if mode == "none":
        log.disabled = True
        app = FastAPI()
    elif mode == "lifespan":
        sink = loopsink.FileHandler(os.environ["BENCH_SERVICE_LOG"])
        sink.setFormatter(logging.Formatter(FORMAT))
        app = FastAPI(lifespan=lifespan(sink))
    elif mode == "config":
        app = FastAPI(lifespan=lifespan())  # runs the bridges the log-config file declared
    else:
        app = FastAPI()
    served = 0

    @app.get("/items/{n}")
    async def item(n: int) -> dict[str, int]:
        nonlocal served
        served += 1
        seq = served
        log.info("item %d requested (%d)", seq, n)
        log.info("item %d served", seq)
        return {"seq": seq, "n": n}

    @app.get("/orders/{n}")
    async def order(n: int) -> dict[str, int]:
        nonlocal served
        served += 1
        seq = served
        log.info("order %d received (%d)", seq, n)
        log.info("order %d validated", seq)
        log.info("order %d stored", seq)
        return {"seq": seq, "n": n}

    @app.get("/stats")
    async def stats() -> dict[str, int]:
        return {"served": served}

    return app


def stdlib_queue(filename: str, format: str = FORMAT) -> logging.Handler:
    """The stdlib's queue setup for a dictConfig file on every Python: a ``QueueHandler``
    whose ``QueueListener`` writes to a ``FileHandler`` (3.12's ``listener`` key, by hand)."""
    target = logging.FileHandler(filename)
    target.setFormatter(logging.Formatter(format))
    records: queue.SimpleQueue[Any] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, target)
    listener.start()

    def stop() -> None:
        listener.stop()
        target.close()

    atexit.register(stop)
    return logging.handlers.QueueHandler(records)
