"""SMTPHandler against a real aiosmtpd server on 127.0.0.1, on asyncio and trio.

The mail is compared byte for byte (Date aside) with what the stdlib's SMTPHandler sends to
the same server; TLS uses a throwaway CA and certificate made by trustme.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import logging.handlers
import re
import ssl
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme

import loopsink
from loopsink import MissingExtraError, SMTPHandler
from loopsink._compat import current_backend
from servers.smtpd import SMTPServer, free_port, running_smtpd, serving_smtpd

FROM = "App Alerts <alerts@example.com>"
TO = ["ops@example.com", "dev@example.com"]
USER, PASSWORD = "logger", "s3cret-pw"


def make_record(
    msg: str = "disk %s is full", *args: object, level: int = logging.ERROR
) -> logging.LogRecord:
    if not args and "%s" in msg:
        args = ("/var",)
    return logging.LogRecord("app.db", level, __file__, 42, msg, args, None)


async def send_then_close(sink: SMTPHandler, *records: logging.LogRecord) -> None:
    """Hand the sink each record, then close it (which waits for the mails), within 10 s."""
    with anyio.fail_after(10):
        for record in records:
            await sink.handle(record)
        await sink.aclose()


def without_date(content: bytes) -> bytes:
    return re.sub(rb"(?m)^Date: .*\r?\n", b"", content)


# -- certificates -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_trust(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


# -- servers ----------------------------------------------------------------------------------


@pytest.fixture
def plain_server() -> Iterator[SMTPServer]:
    with running_smtpd() as server:
        yield server


@pytest.fixture
def auth_plain_server() -> Iterator[SMTPServer]:
    """AUTH offered over clear text, no STARTTLS."""
    with running_smtpd(credentials=(USER, PASSWORD)) as server:
        yield server


@pytest.fixture
def tls_server(server_tls: ssl.SSLContext) -> Iterator[SMTPServer]:
    """STARTTLS offered; AUTH offered before and after it."""
    with running_smtpd(credentials=(USER, PASSWORD), tls_context=server_tls) as server:
        yield server


# -- the stdlib's mail -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "args", "subject", "toaddrs"),
    [
        pytest.param("disk %s is full", ("/var",), "Alert: app.db", TO, id="ascii"),
        pytest.param("naïve café: %s ✓", ("Zürich",), "Störung ✗", TO, id="utf8"),
        pytest.param("line one\nline two %s", ("x" * 1200,), "s", TO, id="long-multiline"),
        pytest.param("to %s", ("you",), "s", ["opé@exämple.com"], id="utf8-address"),
    ],
)
async def test_mail_is_the_stdlibs(
    plain_server: SMTPServer,
    msg: str,
    args: tuple[object, ...],
    subject: str,
    toaddrs: list[str],
) -> None:
    record = make_record(msg, *args)
    stdlib = logging.handlers.SMTPHandler(plain_server.mailhost, FROM, toaddrs, subject)
    sink = SMTPHandler(plain_server.mailhost, FROM, toaddrs, subject)
    with anyio.fail_after(10):
        await anyio.to_thread.run_sync(stdlib.handle, record)
        assert await sink.handle(record)
        await sink.aclose()
    assert sink.error_count == 0
    theirs, ours = plain_server.mails
    assert (ours.mail_from, ours.rcpt_tos) == (theirs.mail_from, theirs.rcpt_tos)
    assert ours.mail_from == "alerts@example.com"
    assert ours.rcpt_tos == tuple(toaddrs)
    assert without_date(ours.content) == without_date(theirs.content)
    message = ours.headers
    assert message["From"] == FROM
    assert [address.addr_spec for address in message["To"].addresses] == toaddrs
    assert message["Subject"] == subject
    sent = email.utils.parsedate_to_datetime(message["Date"])
    assert abs(sent.timestamp() - record.created) < 2
    assert sent.utcoffset() is not None
    assert ours.body == logging.Formatter().format(record) + "\n"
    assert not ours.tls


async def test_trio_needs_no_aiosmtplib(
    plain_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "aiosmtplib", None)
    monkeypatch.setitem(sys.modules, "aiosmtplib.email", None)
    if current_backend() == "asyncio":
        with pytest.raises(MissingExtraError, match=r"^SMTPHandler \(on asyncio\) needs the"):
            SMTPHandler(plain_server.mailhost, FROM, TO, "s")
        return
    sink = SMTPHandler(plain_server.mailhost, FROM, TO, "s")  # trio: the stdlib's smtplib
    await send_then_close(sink, make_record())
    assert sink.error_count == 0
    assert len(plain_server.mails) == 1


async def test_batch_from_queue_one_mail_per_record(plain_server: SMTPServer) -> None:
    sink = SMTPHandler(plain_server.mailhost, FROM, "ops@example.com", "batch")
    sink.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    with anyio.fail_after(10):
        async with loopsink.LogQueue(sink) as queue:
            for i in range(5):
                queue.put(make_record("event %d", i))
            await queue.flush()
            stats = queue.stats.sinks[0]
    assert (stats.emitted, stats.errors) == (5, 0)
    assert [m.body for m in plain_server.mails] == [f"ERROR event {i}\n" for i in range(5)]
    assert all(m.rcpt_tos == ("ops@example.com",) for m in plain_server.mails)


async def test_a_refused_mail_does_not_stop_the_batch(capsys: pytest.CaptureFixture[str]) -> None:
    async with serving_smtpd(reject_marker=b"SPAM") as server:
        sink = SMTPHandler(server.mailhost, FROM, TO, "batch")
        with anyio.fail_after(10):
            async with loopsink.LogQueue(sink) as queue:
                for text in ("one", "SPAM two", "three"):
                    queue.put(make_record(text))
                await queue.flush()
                stats = queue.stats.sinks[0]
    assert (stats.emitted, stats.errors) == (2, 1)
    assert [m.body for m in server.mails] == ["one\n", "three\n"]
    assert "SMTPDataError" in capsys.readouterr().err


async def test_get_subject_override(plain_server: SMTPServer) -> None:
    class PerLevel(SMTPHandler):
        def getSubject(self, record: logging.LogRecord) -> str:
            return f"[{record.levelname}] {record.name}"

    sink = PerLevel(plain_server.mailhost, FROM, TO, "unused")
    await send_then_close(sink, make_record(level=logging.CRITICAL))
    assert plain_server.mails[0].message["Subject"] == "[CRITICAL] app.db"


async def test_building_a_mail_lets_the_loop_take_the_gil_between_its_steps(
    plain_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mail is built on the sink's I/O thread by the email package: about a millisecond
    and a half of pure Python, every step of which holds the GIL. A loop that wanted the
    GIL back meanwhile (its lend ran out) waited for the whole mail; the build now lets it
    in after each header and after the body, so it waits for one step at most."""
    import loopsink.handlers._smtp as smtp_module

    steps: list[str] = []

    class Recorded(smtp_module.EmailMessage):
        def __setitem__(self, name: str, value: Any) -> None:
            super().__setitem__(name, value)
            if name in ("From", "To", "Subject", "Date"):  # not those set_content sets
                steps.append(name)

        def set_content(self, *args: Any, **kwargs: Any) -> None:
            super().set_content(*args, **kwargs)
            steps.append("body")

    monkeypatch.setattr(smtp_module, "EmailMessage", Recorded)
    monkeypatch.setattr(
        smtp_module, "let_the_loop_in", lambda: steps.append("let in"), raising=False
    )
    sink = SMTPHandler(plain_server.mailhost, FROM, TO, "Alert")
    await send_then_close(sink, make_record())
    assert sink.error_count == 0
    assert len(plain_server.mails) == 1
    built = steps[: steps.index("body") + 2]
    assert built == [
        *("From", "let in", "To", "let in", "Subject", "let in", "Date", "let in"),
        *("body", "let in"),
    ]
    if current_backend() == "asyncio":  # aiosmtplib: serialised by the sink, in the thread
        assert steps[len(built) :].count("let in") == 1


def test_attributes_match_stdlib() -> None:
    for args in (
        ("mail.example.com", FROM, "one@example.com", "s"),
        (("mail.example.com", 2525), FROM, TO, "s", (USER, PASSWORD), ()),
    ):
        ours, theirs = SMTPHandler(*args), logging.handlers.SMTPHandler(*args)
        for name in (
            "mailhost",
            "mailport",
            "fromaddr",
            "toaddrs",
            "subject",
            "username",
            "secure",
            "timeout",
        ):
            assert getattr(ours, name) == getattr(theirs, name), name
    assert SMTPHandler("h", FROM, TO, "s").getSubject(make_record()) == "s"


# -- safety: header injection ------------------------------------------------------------------


async def test_subject_from_record_cannot_inject_headers(plain_server: SMTPServer) -> None:
    class FromMessage(SMTPHandler):
        def getSubject(self, record: logging.LogRecord) -> str:
            return record.getMessage()

    sink = FromMessage(plain_server.mailhost, FROM, "ops@example.com", "unused")
    evil = (
        "login failed\r\nBcc: victim@evil.test\r\nX-Injected: yes\n\nfake body\u2028Cc: x@evil.test"
    )
    await send_then_close(sink, make_record("%s", evil))
    assert sink.error_count == 0
    (mail,) = plain_server.mails
    assert mail.rcpt_tos == ("ops@example.com",)
    message = mail.message
    for header in ("Bcc", "Cc", "X-Injected"):
        assert header not in message
    assert [subject.strip() for subject in message.get_all("Subject", [])] == [
        "login failed Bcc: victim@evil.test X-Injected: yes fake body Cc: x@evil.test"
    ]
    headers = mail.content.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"(?mi)^(bcc|cc|x-injected):", headers)


@pytest.mark.parametrize(
    ("fromaddr", "toaddrs", "bad"),
    [
        ("a@example.com\r\nBcc: victim@evil.test", TO, "fromaddr"),
        (FROM, ["ok@example.com", "b@example.com\nBcc: victim@evil.test"], "toaddrs"),
        (FROM, "c@example.com\u2028Cc: x@evil.test", "toaddrs"),
    ],
)
def test_addresses_with_line_breaks_are_refused(
    fromaddr: str, toaddrs: str | list[str], bad: str
) -> None:
    with pytest.raises(
        ValueError, match=rf"^SMTPHandler {bad} must not contain line breaks .* got '"
    ):
        SMTPHandler("localhost", fromaddr, toaddrs, "s")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"mailhost": ("h", "25")},
            ValueError,
            r"^SMTPHandler mailhost port must be an int from 1 to 65535, got '25'$",
        ),
        (
            {"mailhost": ["h"]},
            TypeError,
            r"^SMTPHandler mailhost must be a host name or a \(host, port\) pair",
        ),
        (
            {"toaddrs": []},
            ValueError,
            r"^SMTPHandler toaddrs must name at least one recipient, got \[\]$",
        ),
        (
            {"credentials": ("only-user",)},
            TypeError,
            r"^SMTPHandler credentials must be a \(username, password\) pair",
        ),
        (
            {"secure": ("key.pem",)},
            ValueError,
            r"^SMTPHandler secure=\(keyfile,\) has no certificate file",
        ),
        (
            {"secure": ("/nonexistent/key.pem", "/nonexistent/cert.pem")},
            FileNotFoundError,
            r"names a file that does not exist: '/nonexistent/key.pem'$",
        ),
        (
            {"timeout": 0},
            ValueError,
            r"^SMTPHandler timeout must be a positive number of seconds, got 0$",
        ),
        (
            {"ssl_context": "yes"},
            TypeError,
            r"^SMTPHandler ssl_context must be an ssl.SSLContext, got 'yes'$",
        ),
        (
            {"digest_interval": -1},
            ValueError,
            r"^SMTPHandler digest_interval must be a positive number of seconds",
        ),
        (
            {"digest_max_records": 0},
            ValueError,
            r"^SMTPHandler digest_max_records must be at least 1, got 0$",
        ),
    ],
)
def test_bad_arguments_fail_at_construction(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    args: dict[str, object] = {
        "mailhost": "localhost",
        "fromaddr": FROM,
        "toaddrs": TO,
        "subject": "s",
    }
    args.update(kwargs)
    with pytest.raises(error, match=message):
        SMTPHandler(**args)  # type: ignore[arg-type]


def test_missing_aiosmtplib_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiosmtplib", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'loopsink\[smtp\]'$"):
        SMTPHandler("localhost", FROM, TO, "s")


# -- AUTH, STARTTLS and certificate checks ---------------------------------------------------------


async def test_auth_over_verified_starttls(
    tls_server: SMTPServer, client_trust: ssl.SSLContext
) -> None:
    # secure is None: with credentials, STARTTLS is used because the server offers it.
    sink = SMTPHandler(
        tls_server.mailhost, FROM, TO, "tls", (USER, PASSWORD), ssl_context=client_trust
    )
    await send_then_close(sink, make_record(), make_record("second"))
    assert sink.error_count == 0
    assert [m.tls for m in tls_server.mails] == [True, True]
    assert [m.authenticated_as for m in tls_server.mails] == [USER, USER]
    assert tls_server.recorder.logins
    assert all(a.tls and a.password == PASSWORD for a in tls_server.recorder.logins)


@pytest.fixture
def client_cert_setup(
    ca: trustme.CA, tmp_path: Path
) -> tuple[ssl.SSLContext, ssl.SSLContext, Path, Path]:
    """A server that asks for a client certificate, and one for the client, in files.

    Built outside the event loop: trustme and ``ssl`` read and write files.
    """
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.configure_trust(server_context)
    server_context.verify_mode = ssl.CERT_OPTIONAL
    client_cert = ca.issue_cert("client.example.com")
    keyfile, certfile = tmp_path / "client.key", tmp_path / "client.pem"
    client_cert.private_key_pem.write_to_path(str(keyfile))
    client_cert.cert_chain_pems[0].write_to_path(str(certfile))
    trust = ssl.create_default_context()  # its own: the client certificate is loaded into it
    ca.configure_trust(trust)
    return server_context, trust, keyfile, certfile


async def test_starttls_with_secure_and_client_certificate(
    client_cert_setup: tuple[ssl.SSLContext, ssl.SSLContext, Path, Path],
) -> None:
    server_context, trust, keyfile, certfile = client_cert_setup
    async with serving_smtpd(credentials=(USER, PASSWORD), tls_context=server_context) as server:
        # The constructor checks that the files exist: a file system call, so off the loop.
        sink = await anyio.to_thread.run_sync(
            functools.partial(
                SMTPHandler,
                server.mailhost,
                FROM,
                TO,
                "cert",
                (USER, PASSWORD),
                (str(keyfile), str(certfile)),
                ssl_context=trust,
            )
        )
        await send_then_close(sink, make_record())
    assert sink.error_count == 0
    (mail,) = server.mails
    assert mail.tls
    assert mail.authenticated_as == USER
    assert mail.client_cert_names == ("client.example.com",)


async def test_unverified_certificate_is_refused_by_default(
    tls_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = SMTPHandler(tls_server.mailhost, FROM, TO, "tls", (USER, PASSWORD), secure=())
    await send_then_close(sink, make_record())
    assert sink.error_count == 1
    assert tls_server.mails == []
    assert tls_server.recorder.logins == []
    err = capsys.readouterr().err
    assert "--- Logging error ---" in err
    assert f"could not verify the TLS certificate of 127.0.0.1:{tls_server.port}" in err
    assert "pass ssl_context=ssl.create_default_context(cafile='ca.pem')" in err
    assert "SSLCertVerificationError" in err


@pytest.fixture
def wrong_name_tls(ca: trustme.CA) -> ssl.SSLContext:
    """A certificate from the trusted CA, but for another name than the one connected to."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mail.example.com").configure_cert(context)
    return context


async def test_host_name_is_checked(
    wrong_name_tls: ssl.SSLContext,
    client_trust: ssl.SSLContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with serving_smtpd(credentials=(USER, PASSWORD), tls_context=wrong_name_tls) as server:
        sink = SMTPHandler(
            server.mailhost, FROM, TO, "tls", (USER, PASSWORD), ssl_context=client_trust
        )
        await send_then_close(sink, make_record())
        assert (sink.error_count, server.mails, server.recorder.logins) == (1, [], [])
    err = capsys.readouterr().err
    assert "could not verify the TLS certificate" in err
    assert "IP address mismatch" in err or "doesn't match" in err


@pytest.fixture
def insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def test_explicitly_unverified_context_is_honoured(
    tls_server: SMTPServer, insecure: ssl.SSLContext
) -> None:
    sink = SMTPHandler(tls_server.mailhost, FROM, TO, "tls", (USER, PASSWORD), ssl_context=insecure)
    await send_then_close(sink, make_record())
    assert sink.error_count == 0
    assert [(m.tls, m.authenticated_as) for m in tls_server.mails] == [(True, USER)]


async def test_credentials_never_sent_in_clear_text(
    auth_plain_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = SMTPHandler(auth_plain_server.mailhost, FROM, TO, "auth", (USER, PASSWORD))
    await send_then_close(sink, make_record())
    assert sink.error_count == 1
    assert auth_plain_server.mails == []
    assert auth_plain_server.recorder.logins == []
    err = capsys.readouterr().err
    assert PASSWORD not in err
    where = f"127.0.0.1:{auth_plain_server.port}"
    assert (
        f"did not send the password of {USER!r}: the connection to {where} is not encrypted" in err
    )
    assert "pass allow_insecure_credentials=True" in err


async def test_clear_text_credentials_when_explicitly_allowed(
    auth_plain_server: SMTPServer,
) -> None:
    sink = SMTPHandler(
        auth_plain_server.mailhost,
        FROM,
        TO,
        "auth",
        (USER, PASSWORD),
        allow_insecure_credentials=True,
    )
    await send_then_close(sink, make_record())
    assert sink.error_count == 0
    assert [(m.tls, m.authenticated_as) for m in auth_plain_server.mails] == [(False, USER)]


async def test_secure_without_starttls_on_server(
    auth_plain_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = SMTPHandler(
        auth_plain_server.mailhost,
        FROM,
        TO,
        "auth",
        (USER, PASSWORD),
        secure=(),
        allow_insecure_credentials=True,  # secure=() asks for TLS: this does not override it
    )
    await send_then_close(sink, make_record())
    assert (sink.error_count, auth_plain_server.mails, auth_plain_server.recorder.logins) == (
        1,
        [],
        [],
    )
    assert "asked to use STARTTLS (secure=()) but 127.0.0.1" in capsys.readouterr().err


async def test_secure_without_credentials_is_ignored_as_in_the_stdlib(
    tls_server: SMTPServer,
) -> None:
    # The stdlib documents that secure is only used with credentials; nothing secret is sent.
    sink = SMTPHandler(tls_server.mailhost, FROM, TO, "plain", secure=())
    await send_then_close(sink, make_record())
    assert sink.error_count == 0
    assert [(m.tls, m.authenticated_as) for m in tls_server.mails] == [(False, None)]


async def test_wrong_password_is_reported(
    tls_server: SMTPServer, client_trust: ssl.SSLContext
) -> None:
    logging.raiseExceptions = False
    sink = SMTPHandler(
        tls_server.mailhost, FROM, TO, "auth", (USER, "wrong"), ssl_context=client_trust
    )
    await send_then_close(sink, make_record())
    assert sink.error_count == 1
    assert tls_server.mails == []
    assert "SMTPAuthenticationError" in (sink.last_error or "")


# -- failures: counted, app unharmed, sink recovers ------------------------------------------------


async def test_server_down_is_counted_and_the_sink_recovers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    sink = SMTPHandler(("127.0.0.1", port), FROM, TO, "down", timeout=2)
    logger = logging.getLogger("test.smtp.down")
    logger.propagate = False
    with anyio.fail_after(20):
        async with loopsink.install(sink, logger=logger) as queue:
            for i in range(3):
                logger.error("lost %d", i)  # the application carries on
            await queue.flush()
            stats = queue.stats.sinks[0]
            assert (stats.emitted, stats.errors) == (0, 3)
            assert re.search("connect", stats.last_error or "", re.IGNORECASE), stats.last_error
            assert (
                capsys.readouterr().err.count("--- Logging error ---") == 1
            )  # one report per batch
            async with serving_smtpd(port=port) as server:
                logger.error("delivered")
                await queue.flush()
                assert [m.body for m in server.mails] == ["delivered\n"]
                assert queue.stats.sinks[0].errors == 3


# -- digest mode -------------------------------------------------------------------------------


class ObservedSMTPHandler(SMTPHandler):
    """Lets a test wait until the queue's worker has handed the sink a number of records."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received = 0
        self._changed = anyio.Event()

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        await super().emit_batch(records)
        self.received += len(records)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_received(self, count: int) -> None:
        while self.received < count:
            await self._changed.wait()


async def test_digest_rate_limits_and_shutdown_sends_the_rest(plain_server: SMTPServer) -> None:
    interval = 0.4
    sink = ObservedSMTPHandler(plain_server.mailhost, FROM, TO, "Storm", digest_interval=interval)
    sink.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    recorder = plain_server.recorder
    with anyio.fail_after(20):
        async with loopsink.LogQueue(sink) as queue:
            before_first = time.monotonic()  # the first mail is sent after this
            queue.put(make_record("first"))
            (first,) = await recorder.wait_for_mails(1)
            for i in range(20):
                queue.put(make_record("storm %d", i))
            mails = await recorder.wait_for_mails(2)
            waited = time.monotonic() - before_first
            for i in range(5):
                queue.put(make_record("tail %d", i))
            # the tail waits for the next interval; nothing else may be sent meanwhile
            await sink.wait_received(26)
            assert len(plain_server.mails) == 2
        final = await recorder.wait_for_mails(3)
    assert len(final) == 3
    assert sink.error_count == 0
    # the first record alone: exactly the mail the stdlib sends
    assert first.message["Subject"] == "Storm"
    assert first.body == "ERROR first\n"
    # the storm: one mail, after the interval, with the count and every record
    storm = mails[1]
    assert waited >= interval
    assert storm.message["Subject"] == "Storm (20 records)"
    body = storm.body
    assert body.startswith("20 records were logged from ")
    assert [line for line in body.splitlines() if line.startswith("ERROR")] == [
        f"ERROR storm {i}" for i in range(20)
    ]
    # shutdown sent the pending tail
    tail = final[2]
    assert tail.message["Subject"] == "Storm (5 records)"
    assert "ERROR tail 4" in tail.body


async def test_digest_bounds_memory_but_counts_every_record(plain_server: SMTPServer) -> None:
    sink = ObservedSMTPHandler(
        plain_server.mailhost, FROM, TO, "Storm", digest_interval=60, digest_max_records=50
    )
    with anyio.fail_after(20):
        async with loopsink.LogQueue(sink, capacity=20_000) as queue:
            queue.put(make_record("first"))
            await plain_server.recorder.wait_for_mails(1)
            for i in range(10_000):
                queue.put(make_record("storm %d", i))
            await sink.wait_received(10_001)
            assert len(plain_server.mails) == 1  # the 10,000 records wait for the digest
            await queue.flush()  # an explicit flush sends the pending digest
            assert len(plain_server.mails) == 2
    assert len(plain_server.mails) == 2
    digest = plain_server.mails[1]
    assert digest.message["Subject"] == "Storm (10000 records)"
    body = digest.body
    assert "10000 records were logged from" in body
    assert "the first 50 are below, the last 9950 are not included (digest_max_records=50)" in body
    assert "storm 49" in body
    assert "storm 50" not in body


async def test_digest_to_a_dead_server_counts_every_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = SMTPHandler(
        ("127.0.0.1", free_port()), FROM, TO, "Storm", digest_interval=60, digest_max_records=10
    )
    with anyio.fail_after(20):
        async with loopsink.LogQueue(sink) as queue:
            for i in range(30):
                queue.put(make_record("storm %d", i))
            await queue.flush()
    assert sink.error_count == 30
    assert capsys.readouterr().err.count("--- Logging error ---") == 1
