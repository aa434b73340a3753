"""Syslog messages and framing as pure functions: the bytes each framing gives, without a
socket (the end-to-end bytes are checked against real receivers in test_syslog.py)."""

from __future__ import annotations

import logging
import socket

import pytest

from loopsink.handlers import _syslogformat as fmt


def record(msg: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("app", level, __file__, 1, msg, None, None)


def test_lf_framing_escapes_inner_line_feeds_and_ends_with_one() -> None:
    assert fmt.frame_message("<14>app: a\nb\n\n", "lf", nul=True) == b"<14>app: a#012b\n"


def test_octet_framing_counts_utf8_bytes() -> None:
    assert fmt.frame_message("<14>h\u00e9llo", "octet", nul=True) == b"10 <14>h\xc3\xa9llo"


@pytest.mark.parametrize("framing", ["stdlib", None])
def test_stdlib_framing_and_datagrams_end_with_a_nul_when_asked(framing: str | None) -> None:
    assert fmt.frame_message("<14>x\n", framing, nul=True) == b"<14>x\n\x00"  # type: ignore[arg-type]
    assert fmt.frame_message("<14>x", framing, nul=False) == b"<14>x"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("framing", "stream", "unix", "rfc5424", "tls", "expected"),
    [
        (None, False, False, False, False, None),  # UDP
        ("lf", False, True, False, False, None),  # a datagram carries one message as is
        (None, True, False, False, False, "lf"),  # TCP
        (None, True, True, False, False, "stdlib"),  # unix stream
        (None, True, False, True, False, "octet"),  # RFC 5424 over TCP
        (None, True, False, False, True, "octet"),  # TLS (RFC 5425)
        ("stdlib", True, False, True, True, "stdlib"),  # given wins
    ],
)
def test_choose_framing(
    framing: fmt.Framing | None,
    stream: bool,
    unix: bool,
    rfc5424: bool,
    tls: bool,
    expected: str | None,
) -> None:
    got = fmt.choose_framing(framing, stream=stream, unix=unix, rfc5424=rfc5424, tls=tls)
    assert got == expected


def test_the_batch_encoder_gives_the_bytes_of_frame_message() -> None:
    prio = {"INFO": "<14>", "ERROR": "<11>"}.__getitem__
    records = [record("one"), record("two\nlines\n", logging.ERROR)]
    lf = fmt.stdlib_encoder(prio, logging.Formatter().format, "app: ", "lf", nul=True)
    assert lf is not None
    assert [lf(r) for r in records] == [b"<14>app: one\n", b"<11>app: two#012lines\n"]
    nul = fmt.stdlib_encoder(prio, logging.Formatter().format, "app: ", None, nul=True)
    assert nul is not None
    assert [nul(r) for r in records] == [b"<14>app: one\x00", b"<11>app: two\nlines\n\x00"]
    for encode, framing in ((lf, "lf"), (nul, None)):
        for r in records:
            message = prio(r.levelname) + "app: " + logging.Formatter().format(r)
            assert encode(r) == fmt.frame_message(message, framing, nul=True)  # type: ignore[arg-type]
    assert fmt.stdlib_encoder(prio, logging.Formatter().format, "", "octet", nul=True) is None


def test_header_fields_keep_printable_ascii_within_bounds() -> None:
    assert fmt.header_field("my app\u00e9!", 5) == "myapp"
    assert fmt.header_field(" \t", 5) == "-"


class _Owner:
    facility_names = {"local0": 16}  # noqa: RUF012


def test_ident_and_facility_checks_name_the_problem() -> None:
    assert fmt.check_ident(_Owner(), "app: ") == "app: "
    with pytest.raises(ValueError, match=r"_Owner ident 'a\\nb' holds the control character"):
        fmt.check_ident(_Owner(), "a\nb")
    assert fmt.check_facility(_Owner(), "local0") == "local0"
    assert fmt.check_facility(_Owner(), 23) == 23
    with pytest.raises(ValueError, match="facility 24 is out of range"):
        fmt.check_facility(_Owner(), 24)
    with pytest.raises(ValueError, match="'locl0' is not a syslog facility name"):
        fmt.check_facility(_Owner(), "locl0")


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"socktype": socket.SOCK_STREAM},
        {"socktype": socket.SOCK_STREAM, "framing": "octet"},
        {"socktype": socket.SOCK_STREAM, "framing": "stdlib"},
        {
            "socktype": socket.SOCK_STREAM,
            "format": "rfc5424",
            "hostname": "h",
            "app_name": "a",
            "procid": 7,
        },
        {"format": "rfc5424", "hostname": "h", "app_name": "a", "procid": 7},
    ],
    ids=["udp", "tcp-lf", "tcp-octet", "tcp-stdlib", "tcp-rfc5424", "udp-rfc5424"],
)
def test_the_handlers_batch_encoder_gives_the_bytes_of_encode(options: dict[str, object]) -> None:
    from loopsink import SysLogHandler

    handler = SysLogHandler(("127.0.0.1", 514), **options)  # type: ignore[arg-type]
    handler.ident = "app: "
    records = [record("one"), record("two\nlines\n", logging.ERROR)]
    encode = handler._batch_encoder()
    assert encode is not None
    assert [encode(r) for r in records] == [handler.encode(r) for r in records]
