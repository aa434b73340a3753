"""Shared fixtures: both anyio backends, and a guard that restores the logging state."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"debug": True}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Every test leaves the root logger, the logger tree and raiseExceptions as it found them."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    existing = set(logging.root.manager.loggerDict)
    raise_exceptions = logging.raiseExceptions
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.raiseExceptions = raise_exceptions
    for name in set(logging.root.manager.loggerDict) - existing:
        logger = logging.root.manager.loggerDict[name]
        if isinstance(logger, logging.Logger):
            logger.handlers.clear()
            logger.setLevel(logging.NOTSET)
            logger.propagate = True
            logger.disabled = False
