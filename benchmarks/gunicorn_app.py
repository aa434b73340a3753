"""The Flask app bench_gunicorn.py serves under gunicorn sync workers.

Logging is set up in the gunicorn config (``gunicorn_conf.py``, imported by the master, so
the workers inherit it by fork with or without ``--preload``), as
docs/guides/legacy-sync.md shows. Each request logs two lines; a counter shared by every
worker (made in the master) counts the requests served, for the check afterwards.
"""

from __future__ import annotations

import logging
import os

import gunicorn_conf
from flask import Flask

app = Flask(__name__)
log = logging.getLogger("app")
pid = os.getpid()


@app.get("/items/<int:item>")
def item(item: int) -> dict[str, object]:
    with gunicorn_conf.SERVED.get_lock():
        gunicorn_conf.SERVED.value += 1
        seq = gunicorn_conf.SERVED.value
    log.info("item %d start %d", seq, item)
    log.info("item %d done", seq)
    return {"item": item, "seq": seq}


@app.get("/stats")
def stats() -> dict[str, int]:
    return {"served": int(gunicorn_conf.SERVED.value), "pid": pid}
