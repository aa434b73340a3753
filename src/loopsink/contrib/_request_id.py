"""Request ids for the framework middlewares: take the client's, or make one.

An incoming header is network input: it is used only when it is short printable ASCII
without spaces (what request ids from proxies and load balancers look like), so that a
client cannot inject line breaks, control characters or megabytes into every log line.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

__all__ = ["DEFAULT_HEADER", "checked_request_id", "new_request_id"]

DEFAULT_HEADER = "X-Request-ID"
#: What an incoming request id may look like to be kept.
_ACCEPTABLE = re.compile(r"[!-~]{1,128}")


def new_request_id() -> str:
    """A fresh id: 32 hex digits of a random UUID."""
    return uuid.uuid4().hex


def checked_request_id(value: str | None, generate: Callable[[], str]) -> str:
    """``value`` if it is an acceptable request id, else a new one from ``generate``."""
    if value is not None and _ACCEPTABLE.fullmatch(value):
        return value
    return generate()


def check_header_name(header: str) -> str:
    """``header`` if it is a valid HTTP header name; a ``ValueError`` saying so if not."""
    if not isinstance(header, str) or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", header):
        raise ValueError(
            f"header must be an HTTP header name such as 'X-Request-ID', got {header!r}"
        )
    return header


def check_field_name(field: str) -> str:
    """``field`` if it can be a record attribute (an identifier); a ``ValueError`` if not."""
    if not isinstance(field, str) or not field.isidentifier():
        raise ValueError(f"field must be a Python identifier such as 'request_id', got {field!r}")
    return field
