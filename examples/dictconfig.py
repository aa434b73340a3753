"""Declare loopsink in a logging configuration file, as uvicorn, Django or gunicorn read one.

``uvicorn-log-config.yaml`` (next to this file) is a plain ``logging.config.dictConfig``
dictionary whose handlers are loopsink bridges: ``"()": loopsink.config.bridge`` with its
sinks, their options, formatters, filters and levels. The example

1. loads it with ``dictConfig`` (in a temporary directory, where its files are written);
2. logs before any event loop exists: the bridges use ``start: auto``, so that first
   record starts the bridge's queue in a thread and is written at once;
3. runs an asyncio "app" inside ``loopsink.config.run_bridges()``, which moves the bridges
   onto the app's loop (what the FastAPI and aiohttp helpers do) and flushes them on exit;
4. shows the message a typo in the file gets, at configuration time.

Run it with ``python examples/dictconfig.py``; it takes well under a second.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

import loopsink.config

CONFIG_FILE = Path(__file__).with_name("uvicorn-log-config.yaml")


def load_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(CONFIG_FILE.read_text())
    return config


async def app() -> None:
    async with loopsink.config.run_bridges() as bridges:
        print("running on the app's loop:", *bridges, sep="\n  ")
        logging.getLogger("app").info("handling a request")
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "GET", "/items/1", "1.1", 200
        )
        logging.getLogger("app").warning("disk %d%% full", 93)  # the console sink shows it too
    # leaving run_bridges delivered and flushed everything logged so far


def show_a_typo() -> None:
    config = load_config()
    config["handlers"]["loopsink"]["sinks"]["app_file"]["maxbytes"] = 1_000_000
    try:
        logging.config.dictConfig(config)
    except ValueError as exc:
        print(f"a typo fails at configuration time:\n  {exc}\n  because: {exc.__cause__}")
    else:
        raise AssertionError("the typo was accepted")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path.cwd()
        os.chdir(tmp)
        try:
            logging.config.dictConfig(load_config())
            logging.getLogger("uvicorn.error").info("Started server process [%d]", os.getpid())
            asyncio.run(app())
            show_a_typo()
            logging.shutdown()  # what Python does at exit; here, before the files go away
            for name in ("app.log", "access.log"):
                text = Path(name).read_text()
                print(f"{name}:", *text.splitlines(), sep="\n  ")
            assert "Started server process" in Path("app.log").read_text()
            assert '"GET /items/1 HTTP/1.1" 200' in Path("access.log").read_text()
        finally:
            os.chdir(cwd)


if __name__ == "__main__":
    main()
