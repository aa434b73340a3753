"""The request-id middlewares' boundaries: what an incoming id may be, and bad options."""

from __future__ import annotations

import pytest

from loopsink.contrib._request_id import checked_request_id
from loopsink.contrib.aiohttp import request_id_middleware
from loopsink.contrib.fastapi import RequestIdMiddleware


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("f00d-1234", True),
        ("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("has space", False),
        ("line\nbreak", False),
        ("tab\t", False),
        ("ünïcode", False),
        (None, False),
    ],
)
def test_an_incoming_id_is_kept_only_when_it_looks_like_one(
    incoming: str | None, kept: bool
) -> None:
    assert checked_request_id(incoming, lambda: "generated") == (incoming if kept else "generated")


def test_bad_options_are_refused_with_the_fix() -> None:
    with pytest.raises(
        ValueError,
        match=r"^header must be an HTTP header name such as 'X-Request-ID', got 'X Request'$",
    ):
        RequestIdMiddleware(object(), header="X Request")
    with pytest.raises(
        ValueError, match=r"^field must be a Python identifier such as 'request_id', got 'req-id'$"
    ):
        request_id_middleware(field="req-id")
