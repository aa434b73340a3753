"""Shared fixtures: both anyio backends, and a guard that restores the logging state."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

# Shared checks outside test modules show the values they compared when they fail.
pytest.register_assert_rewrite("helpers", "servers.processes")


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
    """Every test leaves every logger, and logging.raiseExceptions, as it found them."""
    manager = logging.root.manager
    saved = {
        name: (logger.handlers[:], logger.level, logger.propagate, logger.disabled)
        for name, logger in [("", logging.root), *manager.loggerDict.items()]
        if isinstance(logger, logging.Logger)
    }
    raise_exceptions = logging.raiseExceptions
    yield
    logging.raiseExceptions = raise_exceptions
    for name, logger in [("", logging.root), *manager.loggerDict.items()]:
        if not isinstance(logger, logging.Logger):
            continue
        handlers, level, propagate, disabled = saved.get(name, ([], logging.NOTSET, True, False))
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled
