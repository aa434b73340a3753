"""The FastAPI app that tests/contrib/test_fastapi.py serves with a real uvicorn process.

LOOPSINK_TEST_LOG is the log file when the app passes its own sink to the lifespan;
without it the app relies on the bridge declared in uvicorn's --log-config file.
"""

from __future__ import annotations

import asyncio
import logging
import os

from fastapi import FastAPI

import loopsink
from loopsink.contrib.fastapi import lifespan

log = logging.getLogger("app")
log.setLevel(logging.INFO)
LOG_FILE = os.environ.get("LOOPSINK_TEST_LOG")
sinks = [loopsink.FileHandler(LOG_FILE)] if LOG_FILE else []
app = FastAPI(lifespan=lifespan(*sinks, logger="app"))
in_flight = 0


@app.get("/work/{n}")
async def work(n: int) -> dict[str, int]:
    log.info("work %d", n)
    return {"n": n}


@app.get("/slow/{n}")
async def slow(n: int) -> dict[str, int]:
    global in_flight
    in_flight += 1
    log.info("slow %d begin", n)
    await asyncio.sleep(1.0)  # the test sends the signal while these are in flight
    log.info("slow %d end", n)
    return {"n": n}


@app.get("/inflight")
async def inflight() -> dict[str, int]:
    return {"n": in_flight}
