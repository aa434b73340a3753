"""gunicorn's config for bench_gunicorn.py: logging as the environment asks, set up in the master.

``BENCH_GUNICORN_MODE``: ``none`` (no logging), ``stdlib`` (the stdlib's
``RotatingFileHandler``) or ``loopsink`` (``start_in_thread`` with
``RotatingFileHandler(multiprocess=True)``, as docs/guides/legacy-sync.md says);
``BENCH_GUNICORN_LOG``: the log file. The files never reach ``maxBytes`` here, so every line
can be checked in one file (the stdlib's rotation across processes loses whole files).
"""

from __future__ import annotations

import logging
import multiprocessing
import os

MODE = os.environ.get("BENCH_GUNICORN_MODE", "none")
LOG = os.environ.get("BENCH_GUNICORN_LOG", "gunicorn-bench.log")
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
MAX_BYTES = 1 << 30

#: requests served, by every worker: made here, in the master, before the workers fork
SERVED = multiprocessing.get_context("fork").Value("q", 0)

worker_class = "sync"
workers = 2

if MODE == "stdlib":
    import logging.handlers

    handler = logging.handlers.RotatingFileHandler(LOG, maxBytes=MAX_BYTES, backupCount=3)
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
elif MODE == "loopsink":
    import loopsink

    sink = loopsink.RotatingFileHandler(LOG, maxBytes=MAX_BYTES, backupCount=3, multiprocess=True)
    sink.setFormatter(logging.Formatter(FORMAT))
    loopsink.start_in_thread(sink)
    logging.getLogger().setLevel(logging.INFO)


def when_ready(server: object) -> None:
    logging.getLogger("hooks").info("gunicorn ready, pid %d", os.getpid())


def on_exit(server: object) -> None:
    """The workers have stopped: how many requests they served, for the check."""
    with open(f"{LOG}.served", "w") as out:
        out.write(str(SERVED.value))
