"""Syslog messages and their framing: what a record becomes on the wire, apart from any socket.

Pure code, testable without a daemon: the RFC 5424 header (:class:`RFC5424Formatter`), the
checks of what may go into a stdlib-style header (``ident``, ``facility``), and the framing
of a message on a stream (RFC 6587 ``lf`` and ``octet``, or the stdlib's NUL-terminated
bytes). :class:`~loopsink.handlers.SysLogHandler` puts ``<PRI>`` and the message together
and hands the framed bytes to its transport (UDP, TCP, unix sockets).
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping
from typing import Any, Literal

__all__ = [
    "FORMATS",
    "FRAMINGS",
    "IDENT_CONTROLS",
    "LF_ESCAPE",
    "MAX_FACILITY",
    "Framing",
    "RFC5424Formatter",
    "SyslogFormat",
    "check_facility",
    "check_ident",
    "choose_framing",
    "format_structured_data",
    "frame_message",
    "header_field",
    "program_name",
    "stdlib_encoder",
    "stdlib_framer",
]

Framing = Literal["lf", "octet", "stdlib"]
SyslogFormat = Literal["stdlib", "rfc5424"]
FRAMINGS: tuple[str, ...] = ("lf", "octet", "stdlib")
FORMATS: tuple[str, ...] = ("stdlib", "rfc5424")

#: rsyslog's own escape for a line feed inside a message (``#`` + three octal digits): using
#: it for TCP makes rsyslog store the same text for a record as it does over UDP.
LF_ESCAPE = "#012"


# -- RFC 5424 -------------------------------------------------------------------------------


def header_field(value: object, max_len: int) -> str:
    """An RFC 5424 header field: printable US-ASCII without spaces, bounded, or ``-``."""
    text = "".join(c for c in str(value) if "!" <= c <= "~")[:max_len]
    return text or "-"


def _sd_name(name: object, what: str) -> str:
    text = str(name)
    if not text or len(text) > 32 or any(not ("!" <= c <= "~") or c in '="]' for c in text):
        raise ValueError(
            f"RFC 5424 structured data {what} must be 1-32 printable ASCII characters without "
            f"space, '=', ']' or '\"', got {text!r}"
        )
    return text


def _sd_value(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def format_structured_data(data: object) -> str:
    """Render structured data: a mapping ``{sd_id: {param: value}}``, a ready string, or ``-``.

    Raises ValueError for an SD-ID or parameter name RFC 5424 does not allow.
    """
    if data is None or data == "" or data == {}:
        return "-"
    if isinstance(data, str):
        if not data.startswith("["):
            raise ValueError(
                f"RFC 5424 structured data given as text must start with '[', got {data!r}; "
                f"or give a mapping such as {{'origin@32473': {{'ip': '10.0.0.1'}}}}"
            )
        return data
    if not isinstance(data, Mapping):
        raise TypeError(
            f"RFC 5424 structured data must be a mapping {{sd_id: {{param: value}}}} or a str, "
            f"got {type(data).__name__}: {data!r}"
        )
    parts: list[str] = []
    for sd_id, params in data.items():
        element = [_sd_name(sd_id, "SD-ID")]
        if params:
            if not isinstance(params, Mapping):
                raise TypeError(
                    f"RFC 5424 structured data element {sd_id!r} must map parameter names to "
                    f"values, got {params!r}"
                )
            element.extend(
                f'{_sd_name(name, "PARAM-NAME")}="{_sd_value(value)}"'
                for name, value in params.items()
            )
        parts.append("[" + " ".join(element) + "]")
    return "".join(parts) or "-"


def program_name() -> str:
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    return os.path.basename(argv0) or "-"


class RFC5424Formatter(logging.Formatter):
    """Formats records as RFC 5424 syslog messages, everything after ``<PRI>``.

    ``1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG``: the timestamp has
    microseconds and the UTC offset; MSG is the record formatted by ``fmt`` (as
    ``logging.Formatter`` does, traceback included), UTF-8 without a BOM. Give it to
    :class:`SysLogHandler` with ``setFormatter`` (or use ``format="rfc5424"``): the handler
    then adds the PRI, sends no NUL and no ident, and frames TCP with octet counting.

    Per record, ``extra={"msgid": "ID47", "structured_data": {"origin@32473": {"ip": "…"}}}``
    sets MSGID and STRUCTURED-DATA.

    ``fmt``, ``datefmt``, ``style``, ``validate`` and ``defaults`` are those of
    ``logging.Formatter``; they shape MSG.

    Args:
        app_name: APP-NAME (up to 48 characters); default: the program's file name.
        hostname: HOSTNAME (up to 255); default: ``socket.gethostname()``.
        procid: PROCID (up to 128); default: the record's process id.
        msgid: MSGID (up to 32) when the record has no ``msgid`` attribute; default ``-``.
        structured_data_attr: the record attribute holding STRUCTURED-DATA.
        utc: stamp in UTC (``Z``-equivalent ``+00:00``) instead of local time.
    """

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        validate: bool = True,
        *,
        defaults: Mapping[str, Any] | None = None,
        app_name: str | None = None,
        hostname: str | None = None,
        procid: str | int | None = None,
        msgid: str | None = None,
        structured_data_attr: str = "structured_data",
        utc: bool = False,
    ) -> None:
        super().__init__(fmt, datefmt, style, validate, defaults=defaults)
        self.app_name = header_field(app_name if app_name is not None else program_name(), 48)
        self.hostname = header_field(
            hostname if hostname is not None else socket.gethostname(), 255
        )
        self.procid = None if procid is None else header_field(procid, 128)
        self.msgid = header_field(msgid if msgid is not None else "-", 32)
        if not isinstance(structured_data_attr, str) or not structured_data_attr:
            raise TypeError(
                f"structured_data_attr must be the name of a record attribute, "
                f"got {structured_data_attr!r}"
            )
        self.structured_data_attr = structured_data_attr
        self.utc = utc

    def format_timestamp(self, record: logging.LogRecord) -> str:
        """RFC 3339 with microseconds and the offset, e.g. ``2026-11-24T12:18:17.123456+01:00``."""
        when = datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc)
        if not self.utc:
            when = when.astimezone()
        return when.isoformat(timespec="microseconds")

    def format_header(self, record: logging.LogRecord) -> str:
        """``1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA`` for ``record``."""
        procid = self.procid
        if procid is None:
            procid = str(record.process) if record.process else "-"
        msgid = getattr(record, "msgid", None)
        msgid = self.msgid if msgid is None else header_field(msgid, 32)
        sd = format_structured_data(getattr(record, self.structured_data_attr, None))
        return (
            f"1 {self.format_timestamp(record)} {self.hostname} {self.app_name} "
            f"{procid} {msgid} {sd}"
        )

    def format(self, record: logging.LogRecord) -> str:
        return f"{self.format_header(record)} {super().format(record)}"


# -- what a stdlib-style header may hold ----------------------------------------------------


# C0 (line feed, carriage return, NUL...), DEL, C1 and the Unicode line separators
IDENT_CONTROLS = frozenset(
    [*map(chr, range(0x20)), "\x7f", *map(chr, range(0x80, 0xA0)), "\u2028", "\u2029"]
)
#: Syslog facilities are 0-23 (RFC 5424 section 6.2.1): PRI = facility * 8 + severity <= 191.
MAX_FACILITY = 23


def check_ident(handler: Any, ident: Any) -> str:
    name = type(handler).__name__
    if not isinstance(ident, str):
        raise TypeError(f"{name} ident must be a str such as 'myapp: ', got {ident!r}")
    bad = sorted(set(ident) & IDENT_CONTROLS)
    if bad:
        raise ValueError(
            f"{name} ident {ident!r} holds the control character(s) "
            f"{', '.join(repr(c) for c in bad)}: a receiver would read a line feed as the "
            f"start of a second message. Use printable text such as 'myapp: '"
        )
    return ident


def check_facility(handler: Any, facility: Any) -> int | str:
    name = type(handler).__name__
    if isinstance(facility, str):
        if facility not in handler.facility_names:
            raise ValueError(
                f"{name} facility {facility!r} is not a syslog facility name; use one of "
                f"{', '.join(sorted(handler.facility_names))} or a LOG_* number"
            )
        return facility
    if isinstance(facility, bool) or not isinstance(facility, int):
        raise TypeError(f"{name} facility must be a LOG_* number or a name, got {facility!r}")
    if not 0 <= facility <= MAX_FACILITY:
        raise ValueError(
            f"{name} facility {facility} is out of range: syslog facilities are 0 to "
            f"{MAX_FACILITY} (LOG_KERN to LOG_LOCAL7); pass a LOG_* constant or a name such "
            f"as 'local0'"
        )
    return facility


# -- framing --------------------------------------------------------------------------------


def choose_framing(
    framing: Framing | None, *, stream: bool, unix: bool, rfc5424: bool, tls: bool
) -> Framing | None:
    """The framing a message gets: ``None`` on a datagram socket (one message per datagram);
    on a stream, ``framing`` if given, else ``"stdlib"`` on a unix socket, ``"octet"`` with
    RFC 5424 or TLS (RFC 5425 requires it), ``"lf"`` for plain TCP."""
    if not stream:
        return None
    if framing is not None:
        return framing
    if unix:
        return "stdlib"
    if rfc5424 or tls:
        return "octet"
    return "lf"


def frame_message(message: str, framing: Framing | None, *, nul: bool) -> bytes:
    """The bytes sent for ``message`` (``<PRI>`` included) under ``framing``.

    ``"lf"``: trailing line feeds dropped, inner ones written as ``#012``, one LF after.
    ``"octet"``: the UTF-8 length, a space, the message. Otherwise (``"stdlib"`` or a
    datagram): the message, then a NUL if ``nul``.
    """
    if framing == "lf":
        return (message.rstrip("\n").replace("\n", LF_ESCAPE) + "\n").encode("utf-8")
    if framing == "octet":
        body = message.encode("utf-8")
        return b"%d %s" % (len(body), body)
    if nul:
        message += "\000"
    return message.encode("utf-8")


def stdlib_framer(
    prio: Callable[[str], str],
    ident: str,
    framing: Framing | None,
    *,
    nul: bool,
) -> Callable[[logging.LogRecord, str], bytes] | None:
    """A per-batch framer of stdlib-format messages: ``frame(record, text)`` gives the bytes
    of :func:`frame_message` for ``prio(levelname) + ident + text``, where ``text`` is the
    record's formatted text (formatted for a whole batch at once, and shared with other
    sinks that format alike).

    ``None`` for octet counting, which has no shortcut. ``ident`` holds no line feed (it is
    checked when set), so escaping the formatted text alone equals escaping the message.
    """
    if framing == "lf":

        def frame_lf(record: logging.LogRecord, text: str) -> bytes:
            if "\n" in text:
                text = text.rstrip("\n").replace("\n", LF_ESCAPE)
            return (prio(record.levelname) + ident + text + "\n").encode("utf-8")

        return frame_lf
    if framing == "octet":
        return None
    tail = "\000" if nul else ""

    def frame(record: logging.LogRecord, text: str) -> bytes:
        return (prio(record.levelname) + ident + text + tail).encode("utf-8")

    return frame


def stdlib_encoder(
    prio: Callable[[str], str],
    fmt: Callable[[logging.LogRecord], str],
    ident: str,
    framing: Framing | None,
    *,
    nul: bool,
) -> Callable[[logging.LogRecord], bytes] | None:
    """:func:`stdlib_framer` for one record at a time, formatting it with ``fmt``."""
    frame = stdlib_framer(prio, ident, framing, nul=nul)
    if frame is None:
        return None

    def encode(record: logging.LogRecord) -> bytes:
        return frame(record, fmt(record))

    return encode
