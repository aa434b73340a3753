"""A FastAPI app that forgot loopsink's lifespan: tests/contrib/test_uvicorn_paths.py serves it.

Its records (and uvicorn's) go to the bridges of the ``--log-config`` file, which no loop
ever runs here; what happens to them is the test's subject.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

log = logging.getLogger("app")
log.setLevel(logging.INFO)
app = FastAPI()


@app.get("/work/{n}")
async def work(n: int) -> dict[str, int]:
    log.info("work %d", n)
    return {"n": n}
