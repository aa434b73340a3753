"""RecordJSON: a record's attribute dict as JSON, byte for byte what ``dumps`` gives.

``dumps`` is the compact encoder every HTTP body uses (its own tests are in
test_http_presets.py); RecordJSON keeps the text a call site's records share, so each case
here encodes a record twice: once to fill the kept pieces, once to find them.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopsink.handlers import _recordjson
from loopsink.handlers._recordjson import RecordJSON, dumps


def make(
    msg: object = "handled %s in %d ms", args: Any = ("GET /", 3), **attrs: Any
) -> logging.LogRecord:
    record = logging.LogRecord(
        "svc.req", logging.INFO, "/app/views.py", 42, msg, args, None, "index"
    )
    record.__dict__.update(attrs)
    return record


def formatted(record: logging.LogRecord) -> logging.LogRecord:
    record.message = record.getMessage()
    return record


def assert_same_text(encode: RecordJSON, record: logging.LogRecord) -> None:
    expected = dumps(record.__dict__)
    assert encode(record) == expected
    assert encode(record) == expected  # from the kept pieces
    json.loads(expected)


def test_a_formatted_record_is_its_dict_as_dumps_gives_it() -> None:
    encode = RecordJSON()
    record = formatted(make())
    text = encode(record)
    assert text == dumps(record.__dict__)
    assert json.loads(text)["message"] == "handled GET / in 3 ms"
    assert text.startswith('{"name":"svc.req","msg":"handled %s in %d ms","args":["GET /",3],')


def test_records_of_one_call_site_differ_only_in_what_changed() -> None:
    encode = RecordJSON()
    first, second = formatted(make(args=("a", 1))), formatted(make(args=("b", 2)))
    second.created, second.msecs, second.relativeCreated = 1.5, 500.0, 12.25
    assert encode(first) == dumps(first.__dict__)
    assert encode(second) == dumps(second.__dict__)
    assert '"created":1.5,"msecs":500.0,"relativeCreated":12.25' in encode(second)


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("unformatted, no message", lambda r: r),
        (
            "extra fields before the message",
            lambda r: formatted(make(user="ann", n=[1, {"k": None}])),
        ),
        ("asctime after the message", lambda r: setattr(formatted(r), "asctime", "2026-12-06")),
        ("an asctime that is not a str", lambda r: setattr(formatted(r), "asctime", 5)),
        ("asctime before the message", lambda r: (setattr(r, "asctime", "t"), formatted(r))),
        ("an exception", lambda r: setattr(r, "exc_info", (ValueError, ValueError("x"), None))),
        ("a rendered traceback", lambda r: setattr(formatted(r), "exc_text", "Traceback ...")),
        ("a stack", lambda r: setattr(formatted(r), "stack_info", "Stack (most recent call last)")),
        ("a dict as the message", lambda r: formatted(make(msg={"event": "x"}, args=()))),
        ("an int as the message", lambda r: formatted(make(msg=7, args=()))),
        ("a mapping as args", lambda r: formatted(make(msg="%(a)s", args=({"a": 1},)))),
        ("no args", lambda r: formatted(make(msg="plain", args=()))),
        ("args JSON cannot hold", lambda r: formatted(make(msg="%s %s", args=(object(), b"x")))),
        (
            "non-ASCII and escapes",
            lambda r: formatted(make(msg='é "q" \\ \n\t\u2028 %s', args=("😀",))),
        ),
        (
            "threads not logged",
            lambda r: (setattr(r, "thread", None), setattr(r, "threadName", None), formatted(r)),
        ),
        ("a float level", lambda r: (setattr(r, "levelno", 20.0), formatted(r))),
        ("a bool line number", lambda r: (setattr(r, "lineno", True), formatted(r))),
        ("an int time", lambda r: (setattr(r, "created", 1700000000), formatted(r))),
        ("an infinite time", lambda r: (setattr(r, "relativeCreated", float("inf")), formatted(r))),
        (
            "a time that is not a number",
            lambda r: (setattr(r, "msecs", float("nan")), formatted(r)),
        ),
        ("a list as the logger name", lambda r: (setattr(r, "name", ["a"]), formatted(r))),
        ("an int as the function name", lambda r: (setattr(r, "funcName", 3), formatted(r))),
        ("a message that is not a str", lambda r: setattr(r, "message", 3)),
        (
            "attributes in another order",
            lambda r: (delattr(r, "args"), setattr(r, "args", ()), formatted(r)),
        ),
        ("an attribute deleted", lambda r: (delattr(r, "module"), formatted(r))),
    ],
)
def test_every_record_shape_gives_dumps_text(name: str, change: Any) -> None:
    encode = RecordJSON()
    assert_same_text(encode, formatted(make()))  # pieces kept for the plain call site
    record = make()
    changed = change(record)
    assert_same_text(encode, changed if isinstance(changed, logging.LogRecord) else record)


def test_a_number_equal_to_a_kept_one_but_of_another_type_is_not_given_its_text() -> None:
    """20 == 20.0 == True as dict keys; the kept pieces of levelno 20 must not serve 20.0."""
    encode = RecordJSON()
    plain = formatted(make())
    assert_same_text(encode, plain)
    for attribute, value in [
        ("levelno", 20.0),
        ("lineno", 42.0),
        ("process", float(plain.process or 0)),
    ]:
        record = formatted(make())
        setattr(record, attribute, value)
        assert encode(record) == dumps(record.__dict__), attribute


def test_a_logger_name_equal_to_a_kept_int_is_encoded_whole() -> None:
    encode = RecordJSON()
    first = formatted(make())
    first.name = 1  # type: ignore[assignment]
    second = formatted(make())
    second.name = True  # type: ignore[assignment]
    assert encode(first) == dumps(first.__dict__)
    assert encode(second) == dumps(second.__dict__)
    assert '"name":true' in encode(second)


def test_messages_formatted_by_the_caller_share_their_call_sites_pieces() -> None:
    """An f-string message differs in every record: as part of the kept key it made every
    record encode its pieces again, and filled the bound with one set per record."""
    encode = RecordJSON()
    for number in range(100):
        record = formatted(make(msg=f"user {number} logged in", args=()))
        assert encode(record) == dumps(record.__dict__)
    assert len(encode._pieces) == 1


def test_the_kept_pieces_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_recordjson, "PIECES_BOUND", 3)
    encode = RecordJSON()
    for line in range(10):
        record = formatted(make())
        record.lineno = line
        assert encode(record) == dumps(record.__dict__)
        assert len(encode._pieces) <= 3


@pytest.mark.skipif(sys.version_info < (3, 12), reason="taskName is a record attribute since 3.12")
@pytest.mark.parametrize("task_name", [None, "Task-7"])
def test_the_task_name_is_in_its_place(task_name: str | None) -> None:
    encode = RecordJSON()
    record = formatted(make(taskName=task_name))
    assert_same_text(encode, record)
    assert f'"taskName":{json.dumps(task_name)},' in encode(record)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(
    message=st.text(),
    args=st.lists(st.integers() | st.text() | st.floats() | st.none(), max_size=3),
    extras=st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda k: not hasattr(make(), k)),
        json_values,
        max_size=3,
    ),
    created=st.floats(min_value=0, max_value=4e9),
    line=st.integers(min_value=0, max_value=3),
)
def test_any_record_gives_dumps_text(
    message: str, args: list[Any], extras: dict[str, Any], created: float, line: int
) -> None:
    encode = RECORD_JSON
    record = make(msg=message.replace("%", "%%") + " %s" * len(args), args=tuple(args), **extras)
    record.created, record.lineno = created, line
    assert_same_text(encode, formatted(record))


RECORD_JSON = RecordJSON()  # shared by the examples, as a sink's encoder is by its batches
