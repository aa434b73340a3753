"""SMTPHandler: the stdlib's mail handler as an async sink, safe by default, with a digest mode.

On asyncio the SMTP conversation runs on the loop through aiosmtplib. aiosmtplib has no trio
support, so on trio the same conversation runs through the stdlib's ``smtplib`` in a worker
thread (one thread hop per SMTP step, never a blocked loop). Both paths follow one policy:

* the mail is the stdlib's: an ``EmailMessage`` with From, To, Subject, Date and the
  formatted record as body, serialised and sent as ``send_message`` does (so the envelope
  is read from the headers, as ``smtplib`` does); it is built in the sink's I/O thread,
  because the email package is too slow to run on the loop (docs/performance.md);
* STARTTLS verifies the server's certificate and host name (the stdlib does not check
  them); ``ssl_context=`` gives a private CA or, explicitly, no verification;
* with credentials, STARTTLS is used whenever the server offers it, and the password is
  never sent over a connection that is still clear text unless
  ``allow_insecure_credentials=True``.

A batch of records from the queue is sent as one mail per record over one connection.
"""

from __future__ import annotations

import datetime
import functools
import logging
import os
import ssl
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from typing import TYPE_CHECKING, Protocol

import anyio

from .._compat import current_backend, spawn_detached
from .._exceptions import require
from .._executor import executor_of
from .._handler import AsyncHandler
from .._turns import formatting
from .._writer import let_the_loop_in

if TYPE_CHECKING:
    import smtplib

    import aiosmtplib

__all__ = ["SMTPHandler"]

#: The stdlib's default SMTP port (``smtplib.SMTP_PORT``), used when ``mailhost`` has none.
SMTP_PORT = 25

#: Characters that end a line for ``str.splitlines`` (and so for some mail software). A
#: subject built from a record is collapsed onto one line so none of them can start a header.
_LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _one_line(text: str) -> str:
    """Collapse every line break in ``text`` to a space: one header value stays one header.

    A subject without line breaks is left exactly as given, as the stdlib sends it.
    """
    if not any(ch in _LINE_BREAKS for ch in text):
        return text
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _check_address(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"SMTPHandler {what} must be a str mail address, got {value!r}")
    if not value.strip():
        raise ValueError(f"SMTPHandler {what} must not be empty, got {value!r}")
    if any(ch in _LINE_BREAKS or ord(ch) < 32 for ch in value):
        raise ValueError(
            f"SMTPHandler {what} must not contain line breaks or control characters "
            f"(they would let the address inject mail headers), got {value!r}"
        )
    return value


def _verify_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate-verification failure behind ``exc``, if that is what it is."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


#: Builds one mail; called by the session, in a worker thread.
_Build = Callable[[], EmailMessage]


class _Session(Protocol):
    """One SMTP connection: open (connect, TLS, login), send mails, quit."""

    @property
    def connected(self) -> bool: ...

    async def open(self) -> None: ...

    async def send(self, build: _Build) -> None: ...

    async def quit(self) -> None: ...

    def abort(self) -> None: ...


class SMTPHandler(AsyncHandler):
    """Sends each record as a mail, as ``logging.handlers.SMTPHandler`` does.

    The mail is the one the stdlib builds: headers From, To (the addresses joined with
    ``,``), Subject (:meth:`getSubject`) and Date (when the record was created), and the
    formatted record as a ``text/plain`` body. Differences from the stdlib, for safety:

    * STARTTLS checks the server's certificate and host name against the system's CAs.
      Pass ``ssl_context`` to trust a private CA (``ssl.create_default_context(cafile=…)``)
      or, knowingly, to turn the check off. A failed check is reported via
      :meth:`handleError` with a message saying how to pass ``ssl_context``.
    * With ``credentials``, STARTTLS is used whenever the server offers it (the stdlib
      only uses it when ``secure`` is given), and the password is not sent over a
      connection that is still not encrypted unless ``allow_insecure_credentials=True``.
    * A subject returned by :meth:`getSubject` is collapsed onto one line, so text from a
      record cannot inject headers; addresses with line breaks are refused at construction.

    Args:
        mailhost: the SMTP server, a host name or a ``(host, port)`` pair (port 25 by
            default).
        fromaddr: the sender address (``From`` header, and the envelope sender).
        toaddrs: one recipient address or a list of them.
        subject: the subject line; override :meth:`getSubject` to derive it from a record.
        credentials: ``(username, password)`` to log in with.
        secure: as in the stdlib, only used with ``credentials``: ``()`` requires STARTTLS;
            ``(keyfile, certfile)`` also presents that client certificate.
        timeout: seconds allowed for each step of the SMTP conversation.
        ssl_context: keyword-only; the ``ssl.SSLContext`` used for STARTTLS instead of the
            default verifying one. A client certificate from ``secure`` is loaded into it.
        allow_insecure_credentials: keyword-only; send the password even when the
            connection is not encrypted (the server offers no STARTTLS).
        digest_interval: keyword-only; when set (seconds), at most one mail is sent per
            interval: the first record goes out at once, and every record logged in the
            following interval waits and goes out in one digest mail that gives their
            count. :meth:`flush` and :meth:`close` (so the queue's shutdown) send a
            pending digest at once.
        digest_max_records: keyword-only; the most records a digest mail shows; records
            beyond it are still counted in the mail, so memory stays bounded in a storm.
    """

    def __init__(
        self,
        mailhost: str | tuple[str, int],
        fromaddr: str,
        toaddrs: str | Sequence[str],
        subject: str,
        credentials: tuple[str, str] | None = None,
        secure: tuple[()] | tuple[str] | tuple[str, str] | None = None,
        timeout: float = 5.0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        allow_insecure_credentials: bool = False,
        digest_interval: float | None = None,
        digest_max_records: int = 10_000,
    ) -> None:
        super().__init__()
        self.mailhost, self.mailport = _parse_mailhost(mailhost)
        self.fromaddr = _check_address(fromaddr, "fromaddr")
        if isinstance(toaddrs, str):
            toaddrs = [toaddrs]
        elif not isinstance(toaddrs, (list, tuple)):
            raise TypeError(f"SMTPHandler toaddrs must be a str or a list of str, got {toaddrs!r}")
        if not toaddrs:
            raise ValueError("SMTPHandler toaddrs must name at least one recipient, got []")
        self.toaddrs = [_check_address(addr, "toaddrs") for addr in toaddrs]
        if not isinstance(subject, str):
            raise TypeError(f"SMTPHandler subject must be a str, got {subject!r}")
        self.subject = subject
        self.username: str | None = None
        self.password: str | None = None
        if credentials is not None:
            if not (
                isinstance(credentials, (list, tuple))
                and len(credentials) == 2
                and all(isinstance(part, str) for part in credentials)
            ):
                raise TypeError(
                    "SMTPHandler credentials must be a (username, password) pair of str, "
                    f"got {type(credentials).__name__} of length "
                    f"{len(credentials) if isinstance(credentials, (list, tuple)) else 'n/a'}"
                )
            self.username, self.password = credentials
        self.secure = _check_secure(secure)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(
                f"SMTPHandler timeout must be a positive number of seconds, got {timeout!r}"
            )
        self.timeout = float(timeout)
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError(
                f"SMTPHandler ssl_context must be an ssl.SSLContext, got {ssl_context!r}"
            )
        self.ssl_context = ssl_context
        self.allow_insecure_credentials = bool(allow_insecure_credentials)
        if digest_interval is not None and (
            isinstance(digest_interval, bool)
            or not isinstance(digest_interval, (int, float))
            or digest_interval <= 0
        ):
            raise ValueError(
                "SMTPHandler digest_interval must be a positive number of seconds "
                f"(or None for one mail per record), got {digest_interval!r}"
            )
        self.digest_interval = None if digest_interval is None else float(digest_interval)
        if isinstance(digest_max_records, bool) or not isinstance(digest_max_records, int):
            raise TypeError(
                f"SMTPHandler digest_max_records must be an int, got {digest_max_records!r}"
            )
        if digest_max_records < 1:
            raise ValueError(
                f"SMTPHandler digest_max_records must be at least 1, got {digest_max_records}"
            )
        self.digest_max_records = digest_max_records
        # aiosmtplib is needed on asyncio only; on trio the stdlib's smtplib does the work.
        if _running_backend() != "trio":
            require("aiosmtplib", what="SMTPHandler (on asyncio)", extra="smtp")
        self._tls: ssl.SSLContext | None = None
        # digest state
        self._pending: list[tuple[logging.LogRecord, str]] = []
        self._pending_omitted = 0
        self._last_mail_at: float | None = None
        self._timer_scope: anyio.CancelScope | None = None

    # -- the stdlib's surface ----------------------------------------------------------------

    def getSubject(self, record: logging.LogRecord) -> str:
        """The subject for ``record``'s mail; override it for a record-dependent subject."""
        return self.subject

    # -- building mails ----------------------------------------------------------------------

    def _message(self, subject: str, body: str, when: datetime.datetime) -> EmailMessage:
        # Runs on the sink's I/O thread. Each header the email package parses, and the
        # body it wraps, is pure Python that holds the GIL; between them the loop's thread,
        # if it waits for the GIL (a lend that ran out, a pass of the loop), takes it, and
        # waits for one step rather than for the whole mail.
        message = EmailMessage()
        for name, value in (
            ("From", self.fromaddr),
            ("To", ",".join(self.toaddrs)),
            ("Subject", _one_line(subject)),
            ("Date", when),
        ):
            message[name] = value
            let_the_loop_in()
        message.set_content(body)
        let_the_loop_in()
        return message

    def _record_message(self, record: logging.LogRecord) -> EmailMessage:
        return self._message(
            self.getSubject(record), self.format(record), _local_time(record.created)
        )

    def digest_subject(self, first: logging.LogRecord, count: int) -> str:
        """The subject of a digest mail of ``count`` records; override to change it."""
        return f"{self.getSubject(first)} ({count} records)"

    def _digest_message(
        self, pending: list[tuple[logging.LogRecord, str]], omitted: int, sent_at: float
    ) -> EmailMessage:
        records = [record for record, _ in pending]
        first = records[0]
        if len(pending) == 1 and not omitted:
            # A lone record: exactly the mail the stdlib would send for it.
            return self._message(self.getSubject(first), pending[0][1], _local_time(first.created))
        count = len(pending) + omitted
        start = _local_time(first.created).strftime("%Y-%m-%d %H:%M:%S %z")
        end = _local_time(records[-1].created).strftime("%Y-%m-%d %H:%M:%S %z")
        head = f"{count} records were logged from {start} to {end}"
        if omitted:
            head += (
                f"; the first {len(pending)} are below, the last {omitted} are not included "
                f"(digest_max_records={self.digest_max_records})"
            )
        body = head + ".\n\n" + "\n".join(text for _, text in pending) + "\n"
        return self._message(self.digest_subject(first, count), body, _local_time(sent_at))

    # -- the async surface -------------------------------------------------------------------

    async def emit(self, record: logging.LogRecord) -> None:
        """Send ``record`` (or add it to the digest); failures go to :meth:`handleError`."""
        await self.emit_batch([record])

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        """Send one mail per record over one connection, or add the records to the digest."""
        if self.digest_interval is not None:
            await self._add_to_digest(records)
            return
        await self._deliver(
            [([record], functools.partial(self._record_message, record)) for record in records]
        )

    async def flush(self) -> None:
        """Send the pending digest now, if there is one."""
        if self._pending or self._pending_omitted:
            await self._send_digest()

    async def close(self) -> None:
        """Send the pending digest, stop the digest timer, and close the sink."""
        try:
            await self.flush()
        finally:
            self._cancel_timer()
            await super().close()

    # -- the digest ---------------------------------------------------------------------------

    async def _add_to_digest(self, records: Sequence[logging.LogRecord]) -> None:
        turns = formatting(records)
        for record in records:
            if turns.due():
                await turns.pause()
            if len(self._pending) >= self.digest_max_records:
                self._pending_omitted += 1
                continue
            try:
                self._pending.append((record, self.format(record)))
            except Exception:
                self.handleError(record)
        if not self._pending:
            return
        assert self.digest_interval is not None
        now = time.monotonic()
        if self._last_mail_at is None or now - self._last_mail_at >= self.digest_interval:
            await self._send_digest()
        elif self._timer_scope is None:
            self._start_timer(self._last_mail_at + self.digest_interval - now)

    async def _send_digest(self) -> None:
        self._last_mail_at = time.monotonic()
        self._cancel_timer()
        pending, omitted = self._pending, self._pending_omitted
        self._pending, self._pending_omitted = [], 0
        records = [record for record, _ in pending]
        # The omitted records are not kept, but a failure counts them too.
        counted = records + records[:1] * omitted
        build = functools.partial(self._digest_message, pending, omitted, time.time())
        await self._deliver([(counted, build)])

    def _start_timer(self, delay: float) -> None:
        """Send the digest after ``delay`` s from a task of its own, outside any worker.

        The sink has no task group of its own, so the timer is a detached task: an asyncio
        task, or a trio system task. It takes the sink's I/O lock like the queue's worker.
        """

        async def fire() -> None:
            try:
                await anyio.sleep(max(delay, 0.0))
                async with self.io_lock():
                    if self._timer_scope is scope:
                        self._timer_scope = None
                    if (self._pending or self._pending_omitted) and not self._closed:
                        await self._send_digest()
            except Exception:
                self.report_error("sending the digest mail from its timer")

        scope = spawn_detached(fire, name=f"{self!r} digest timer")
        self._timer_scope = scope

    def _cancel_timer(self) -> None:
        scope, self._timer_scope = self._timer_scope, None
        if scope is not None:
            scope.cancel()

    # -- delivery -----------------------------------------------------------------------------

    def _session(self) -> _Session:
        if current_backend() == "asyncio":
            return _AsyncioSession(self)
        return _ThreadSession(self)

    async def _deliver(self, mails: Sequence[tuple[list[logging.LogRecord], _Build]]) -> None:
        """Send ``mails`` over one connection; report every failure, raise nothing.

        Each mail is built (formatted, then serialised) by its session in a worker thread:
        the email package needs about a millisecond for a small mail and tens for a large
        digest, which is loop time the application would feel.
        """
        session: _Session | None = None
        try:
            for index, (records, build) in enumerate(mails):
                if session is None:
                    session = self._session()
                    try:
                        await session.open()
                    except Exception:
                        session.abort()
                        self.report_batch_failure([r for rs, _ in mails[index:] for r in rs])
                        return
                try:
                    await session.send(build)
                except Exception:
                    self.report_batch_failure(records)
                    if not session.connected:
                        session.abort()
                        session = None
            if session is not None:
                await session.quit()
        finally:
            if session is not None:
                session.abort()

    async def _tls_context(self) -> ssl.SSLContext:
        """The context for STARTTLS: the user's, or a verifying one built once (in a thread)."""
        if self._tls is None:
            self._tls = await executor_of(self).run(self._build_tls_context)
        return self._tls

    def _build_tls_context(self) -> ssl.SSLContext:
        context = self.ssl_context or ssl.create_default_context()
        if self.secure and len(self.secure) == 2:
            keyfile, certfile = self.secure
            context.load_cert_chain(certfile, keyfile)
        return context

    # -- messages for the failures the policy refuses --------------------------------------------

    def _where(self) -> str:
        return f"{self.mailhost}:{self.mailport or SMTP_PORT}"

    def _verify_failed(self, exc: ssl.SSLCertVerificationError) -> ConnectionError:
        return ConnectionError(
            f"SMTPHandler could not verify the TLS certificate of {self._where()} "
            f"({exc.verify_message or exc}); nothing was sent. If the server uses a private CA, "
            "pass ssl_context=ssl.create_default_context(cafile='ca.pem'); to skip the check "
            "(insecure), pass an ssl.SSLContext with check_hostname=False and "
            "verify_mode=ssl.CERT_NONE"
        )

    def _no_starttls(self) -> ConnectionError:
        return ConnectionError(
            f"SMTPHandler was asked to use STARTTLS (secure={self.secure!r}) but {self._where()} "
            "does not offer it; nothing was sent. Use a server that offers STARTTLS"
        )

    def _refuse_clear_text(self) -> PermissionError:
        return PermissionError(
            f"SMTPHandler did not send the password of {self.username!r}: the connection to "
            f"{self._where()} is not encrypted (the server does not offer STARTTLS); nothing "
            "was sent. Use a server that offers STARTTLS, or pass "
            "allow_insecure_credentials=True to send the password in clear text anyway"
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self._where()} to {','.join(self.toaddrs)} "
            f"({logging.getLevelName(self.level)})>"
        )


class _AsyncioSession:
    """The SMTP conversation through aiosmtplib, on the asyncio loop."""

    def __init__(self, handler: SMTPHandler) -> None:
        self._handler = handler
        self._smtp: aiosmtplib.SMTP | None = None

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected

    async def open(self) -> None:
        import aiosmtplib

        h = self._handler
        smtp = aiosmtplib.SMTP(
            hostname=h.mailhost,
            port=h.mailport or SMTP_PORT,
            timeout=h.timeout,
            start_tls=False,  # aiosmtplib would upgrade on its own; the policy decides
        )
        self._smtp = smtp
        await smtp.connect()
        await smtp.ehlo()
        if h.username is None:
            return
        if smtp.supports_extension("starttls"):
            context = await h._tls_context()
            try:
                await smtp.starttls(tls_context=context)
            except Exception as exc:
                verify = _verify_error(exc)
                if verify is not None:
                    raise h._verify_failed(verify) from exc
                raise
            await smtp.ehlo()
        elif h.secure is not None:
            raise h._no_starttls()
        if smtp.get_transport_info("sslcontext") is None and not h.allow_insecure_credentials:
            raise h._refuse_clear_text()
        assert h.password is not None
        await smtp.login(h.username, h.password)

    async def send(self, build: _Build) -> None:
        """What ``aiosmtplib.SMTP.send_message`` does, with the mail built in a thread."""
        smtp = self._smtp
        assert smtp is not None
        eight_bit = smtp.supports_extension("8bitmime")
        sender, recipients, data, utf8 = await executor_of(self._handler).run(
            _render, build, eight_bit
        )
        options = ["BODY=8BITMIME"] if eight_bit else []
        if utf8:  # sendmail refuses it when the server lacks SMTPUTF8
            options.append("SMTPUTF8")
        await smtp.sendmail(sender, recipients, data, mail_options=options)

    async def quit(self) -> None:
        if self._smtp is not None and self._smtp.is_connected:
            try:
                await self._smtp.quit()
            except Exception:  # the mails are sent; a rude goodbye is not an error
                pass

    def abort(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None


class _ThreadSession:
    """The same conversation through the stdlib's smtplib, each step in a worker thread."""

    def __init__(self, handler: SMTPHandler) -> None:
        self._handler = handler
        self._smtp: smtplib.SMTP | None = None

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.sock is not None

    async def open(self) -> None:
        h = self._handler
        context = await h._tls_context() if h.username is not None else None
        await executor_of(self._handler).run(self._open_blocking, context)

    def _open_blocking(self, context: ssl.SSLContext | None) -> None:
        import smtplib

        h = self._handler
        # Connecting in the constructor also records the host name that TLS checks.
        smtp = smtplib.SMTP(h.mailhost, h.mailport or SMTP_PORT, timeout=h.timeout)
        self._smtp = smtp
        if h.username is None:
            return
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            try:
                smtp.starttls(context=context)
            except Exception as exc:
                verify = _verify_error(exc)
                if verify is not None:
                    raise h._verify_failed(verify) from exc
                raise
            smtp.ehlo()
        elif h.secure is not None:
            raise h._no_starttls()
        if not isinstance(smtp.sock, ssl.SSLSocket) and not h.allow_insecure_credentials:
            raise h._refuse_clear_text()
        assert h.password is not None
        smtp.login(h.username, h.password)

    async def send(self, build: _Build) -> None:
        await executor_of(self._handler).run(self._send_blocking, build)

    def _send_blocking(self, build: _Build) -> None:
        assert self._smtp is not None
        self._smtp.send_message(build())

    async def quit(self) -> None:
        if self.connected:
            await executor_of(self._handler).run(self._quit_blocking)

    def _quit_blocking(self) -> None:
        try:
            assert self._smtp is not None
            self._smtp.quit()
        except Exception:  # the mails are sent; a rude goodbye is not an error
            pass

    def abort(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


# -- helpers -----------------------------------------------------------------------------------


def _parse_mailhost(mailhost: object) -> tuple[str, int | None]:
    if isinstance(mailhost, str):
        host: object = mailhost
        port: object = None
    elif isinstance(mailhost, (list, tuple)) and len(mailhost) == 2:
        host, port = mailhost
    else:
        raise TypeError(
            f"SMTPHandler mailhost must be a host name or a (host, port) pair, got {mailhost!r}"
        )
    if not isinstance(host, str) or not host:
        raise ValueError(f"SMTPHandler mailhost needs a host name, got {host!r}")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536
    ):
        raise ValueError(f"SMTPHandler mailhost port must be an int from 1 to 65535, got {port!r}")
    return host, port


def _check_secure(secure: object) -> tuple[()] | tuple[str] | tuple[str, str] | None:
    if secure is None:
        return None
    if not isinstance(secure, (list, tuple)) or len(secure) > 2:
        raise TypeError(
            f"SMTPHandler secure must be None, (), or (keyfile, certfile), got {secure!r}"
        )
    for part in secure:
        if not isinstance(part, (str, os.PathLike)):
            raise TypeError(f"SMTPHandler secure must hold file paths, got {secure!r}")
    if len(secure) == 1:
        raise ValueError(
            f"SMTPHandler secure=(keyfile,) has no certificate file, got {secure!r}: pass "
            "secure=(keyfile, certfile) for a client certificate, or secure=() for STARTTLS "
            "alone (the stdlib fails on every mail with this value)"
        )
    if len(secure) == 2:
        keyfile, certfile = (os.fspath(part) for part in secure)
        for path in (keyfile, certfile):
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"SMTPHandler secure=(keyfile, certfile) names a file that does not exist: "
                    f"{path!r}"
                )
        return (str(keyfile), str(certfile))
    return ()


def _render(build: _Build, eight_bit: bool) -> tuple[str, list[str], bytes, bool]:
    """Build a mail and serialise it as aiosmtplib's ``send_message`` would (worker thread)."""
    from aiosmtplib.email import extract_recipients, extract_sender, flatten_message

    message = build()
    sender = extract_sender(message)
    recipients = extract_recipients(message)
    if sender is None or not recipients:
        raise ValueError(f"the mail has no sender or no recipient: {sender!r}, {recipients!r}")
    utf8 = not (sender + "".join(recipients)).isascii()
    let_the_loop_in()  # between reading the envelope and serialising (see _message)
    data = flatten_message(message, utf8=utf8, cte_type="8bit" if eight_bit else "7bit")
    return sender, recipients, data, utf8


def _local_time(timestamp: float) -> datetime.datetime:
    """``timestamp`` as an aware local datetime, the form ``email.utils.localtime`` returns."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).astimezone()


def _running_backend() -> str | None:
    try:
        return current_backend()
    except Exception:  # not inside an event loop (e.g. built by dictConfig at start-up)
        return None
