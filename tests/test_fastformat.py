"""batch_format gives exactly what logging.Formatter.format gives, one by one and by lists."""

from __future__ import annotations

import logging
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopsink._fastformat import batch_format, batch_formatter

FORMATS = [
    logging.BASIC_FORMAT,
    "%(asctime)s %(levelname)-8s %(name)s: %(message)s",
    "%(asctime)s.%(msecs)03d %(process)d %(threadName)s %(funcName)s:%(lineno)d %(message)r",
    "%(message)s",
]
DATEFMTS = [None, "", "%Y-%m-%dT%H:%M:%S%z", "%H:%M"]


def make(msg: object, args: object, created: float) -> logging.LogRecord:
    record = logging.LogRecord("a.b", logging.WARNING, "/x/y.py", 12, msg, args, None, "fn")  # type: ignore[arg-type]
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    return record


@settings(max_examples=300, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    datefmt=st.sampled_from(DATEFMTS),
    msg=st.one_of(st.text(alphabet="ab %s", max_size=12), st.integers()),
    arg=st.one_of(st.integers(), st.text(max_size=5), st.floats(allow_nan=False)),
    created=st.floats(min_value=0, max_value=4e9),
    utc=st.booleans(),
)
def test_same_text_as_the_stdlib(
    fmt: str, datefmt: str | None, msg: object, arg: object, created: float, utc: bool
) -> None:
    formatter = logging.Formatter(fmt, datefmt)
    if utc:
        formatter.converter = time.gmtime
    args = (
        (arg,)
        if isinstance(msg, str) and msg.count("%s") == 1 and "%" not in msg.replace("%s", "")
        else ()
    )
    fast = batch_format(formatter)
    try:
        expected = formatter.format(make(msg, args, created))
    except (TypeError, ValueError) as exc:
        with pytest.raises(type(exc)):
            fast.one(make(msg, args, created))
        with pytest.raises(type(exc)):
            fast.many([make("fine", (), created), make(msg, args, created)])
        return
    assert fast.one(make(msg, args, created)) == expected
    assert fast.many([make(msg, args, created), make(msg, args, created + 0.5)]) == [
        expected,
        formatter.format(make(msg, args, created + 0.5)),
    ]


def test_time_cache_follows_the_second() -> None:
    formatter = logging.Formatter("%(asctime)s %(message)s")
    fast = batch_format(formatter)
    times = (1000.1, 1000.9, 1001.0, 1000.5, 1000.5004)
    for created in times:
        assert fast.one(make("m", (), created)) == formatter.format(make("m", (), created))
    expected = [formatter.format(make("m", (), created)) for created in times]
    assert fast.many([make("m", (), created) for created in times]) == expected


def test_a_list_sets_the_attributes_the_stdlib_sets() -> None:
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    records = [make("m %d", (i,), 1000.25 + i) for i in range(3)]
    twins = [make("m %d", (i,), 1000.25 + i) for i in range(3)]
    for record, twin in zip(records, twins, strict=True):
        twin.relativeCreated = record.relativeCreated
    assert batch_format(formatter).many(records) == [formatter.format(t) for t in twins]
    assert [vars(r) for r in records] == [vars(t) for t in twins]


def test_a_list_mixes_the_common_case_with_the_rest() -> None:
    """Records with tracebacks, stacks, non-str messages or of a LogRecord subclass take
    the one-by-one path inside a list, and come out in place."""

    class Sub(logging.LogRecord):
        pass

    formatter = logging.Formatter(logging.BASIC_FORMAT)
    with_stack = make("s", (), 5.0)
    with_stack.stack_info = "Stack (most recent call last):\n  here"
    sub = Sub("a.b", logging.ERROR, "/x/y.py", 1, "sub %s", ("x",), None)
    records = [make("a %s", ("1",), 5.0), with_stack, make(42, (), 5.0), sub, make("b", (), 5.0)]
    expected = [formatter.format(r) for r in records]
    for record in records:
        record.exc_text = None
    assert batch_format(formatter).many(records) == expected


def test_exceptions_and_stacks_take_the_stdlib_path() -> None:
    formatter = logging.Formatter()
    fast = batch_formatter(formatter)
    record = make("m", (), 5.0)
    record.stack_info = "Stack (most recent call last):\n  here"
    assert fast(record) == "m\nStack (most recent call last):\n  here"


class Custom(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        return "custom:" + super().formatMessage(record)


def test_an_overriding_formatter_is_used_as_it_is() -> None:
    formatter = Custom()
    assert batch_formatter(formatter) == formatter.format


@pytest.mark.parametrize(
    "formatter",
    [
        logging.Formatter("{asctime} {levelname} {message}", style="{"),
        logging.Formatter("$levelname $message", style="$"),
        logging.Formatter("%(message)s %(extra)s", defaults={"extra": "d"}),
        logging.Formatter("%(asctime)s %(message)s", "%H:%M"),
    ],
)
def test_other_styles_give_the_same_text(formatter: logging.Formatter) -> None:
    record = make("m %s", ("x",), 1_700_000_000.25)
    try:
        raise KeyError("k")
    except KeyError:
        import sys

        record.exc_info = sys.exc_info()
    expected = formatter.format(make("m %s", ("x",), 1_700_000_000.25))
    assert batch_formatter(formatter)(make("m %s", ("x",), 1_700_000_000.25)) == expected
    with_exception = formatter.format(record)
    record.exc_text = None
    assert batch_formatter(formatter)(record) == with_exception


@pytest.mark.parametrize(
    "fmt",
    [
        "%(levelname)-8s|%(name)10s|%(lineno)5d %(message)s %%",
        "%(asctime)s %(levelname)s %(name)s: %(message)s",
        "%(asctime)s|%(levelname)s|%(name)s 100%% %(message)s",
        "%(message)s %(levelname)s %(name)s %(asctime)s",
        "%(levelname)s %(name)s %(message)s %(message)s",
        "[%(name)s] %(message)s (%(funcName)s) %(asctime)s",
        "%(levelno)03d %(process)x %(message)r",
        "%(name)s %(message)s %(message)s",
        "%(name)s",
    ],
)
@pytest.mark.parametrize("name", ["a.b", "100%", "%(message)s", "%s %d", "%%"])
def test_stable_fields_applied_once_give_the_same_text(fmt: str, name: str) -> None:
    formatter = logging.Formatter(fmt)
    fast = batch_format(formatter)
    for level in (logging.DEBUG, logging.WARNING, 33):  # 33 has no name: "Level 33"
        for message, args in (("plain %s", ("x",)), ("100%% sure", ()), ("%(k)s", ({"k": 1},))):
            record = logging.LogRecord(name, level, "/x/y.py", 7, message, args, None, "fn")  # type: ignore[arg-type]
            twin = logging.LogRecord(name, level, "/x/y.py", 7, message, args, None, "fn")  # type: ignore[arg-type]
            again = logging.LogRecord(name, level, "/x/y.py", 7, message, args, None, "fn")  # type: ignore[arg-type]
            twin.created, twin.msecs = record.created, record.msecs
            again.created, again.msecs = record.created, record.msecs
            expected = formatter.format(twin)
            assert fast.one(record) == expected
            assert fast.many([again]) == [expected]


def test_a_changed_levelname_is_applied_as_changed() -> None:
    formatter = logging.Formatter("%(levelname)s %(message)s")
    fast = batch_formatter(formatter)
    record = make("m", (), 5.0)
    assert fast(record) == "WARNING m"
    record.levelname = "\x1b[33mWARNING\x1b[0m"  # what a colouring filter does
    assert fast(record) == "\x1b[33mWARNING\x1b[0m m"


def test_a_changed_name_or_levelname_is_applied_as_changed_in_a_list() -> None:
    fast = batch_format(logging.Formatter(logging.BASIC_FORMAT))
    records = [make("m", (), 5.0) for _ in range(3)]
    records[1].levelname = "NOTICE"
    records[2].name = "other"
    assert fast.many(records) == ["WARNING:a.b:m", "NOTICE:a.b:m", "WARNING:other:m"]
