"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, recording every mail it accepts.

aiosmtpd's ``Controller`` runs the server on its own event loop in a thread, and its start-up
self-check connects to the port it was given, so port 0 cannot be used: a free port is picked
first (and picking is retried if another process takes it meanwhile). AUTH is only offered
before STARTTLS when ``auth_require_tls=False``, which :func:`running_smtpd` sets when asked
for AUTH over clear text.
"""

from __future__ import annotations

import email
import email.message
import email.parser
import email.policy
import functools
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Mail:
    """One accepted mail: the envelope, the raw bytes, and how the session was secured."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    tls: bool
    authenticated_as: str | None
    #: the subjectAltName entries of the client certificate, when one was presented
    client_cert_names: tuple[str, ...] = ()

    @property
    def message(self) -> email.message.EmailMessage:
        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed

    @property
    def headers(self) -> email.message.EmailMessage:
        """The header block, read as UTF-8 text (SMTPUTF8 mails carry raw UTF-8 headers,
        which the bytes parser would turn into surrogates)."""
        head = self.content.split(b"\r\n\r\n", 1)[0].decode("utf-8")
        parsed = email.parser.HeaderParser(policy=email.policy.default).parsestr(head)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed

    @property
    def body(self) -> str:
        part = self.message.get_body()
        assert part is not None
        # the wire has CRLF line ends; give the text as the application logged it
        return str(part.get_content()).replace("\r\n", "\n")


@dataclass(frozen=True)
class AuthAttempt:
    mechanism: str
    login: str
    password: str
    tls: bool


@dataclass
class Recorder:
    """aiosmtpd handler and authenticator; waits are bounded and usable from async tests.

    Careful with names: aiosmtpd takes every handler attribute named ``auth_*`` for an AUTH
    mechanism.
    """

    credentials: tuple[str, str] | None = None
    #: a mail whose bytes contain this is refused with 554 (as a content filter would)
    reject_marker: bytes | None = None
    mails: list[Mail] = field(default_factory=list)
    logins: list[AuthAttempt] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reject_marker is not None and self.reject_marker in envelope.original_content:
            return "554 5.6.0 Message refused by the content filter"
        login = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode()
        mail = Mail(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            content=envelope.original_content,
            tls=session.ssl is not None,
            authenticated_as=login,
            client_cert_names=_client_cert_names(session.ssl),
        )
        with self._cond:
            self.mails.append(mail)
            self._cond.notify_all()
        return "250 Message accepted for delivery"

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        with self._cond:
            self.logins.append(AuthAttempt(mechanism, login, password, session.ssl is not None))
        ok = self.credentials is not None and (login, password) == self.credentials
        if not ok:  # handled=False: aiosmtpd answers 535 itself
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data)

    def wait_for_mails_blocking(self, count: int, timeout: float) -> list[Mail]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.mails) >= count, timeout):
                raise TimeoutError(
                    f"the SMTP server received {len(self.mails)} mails in {timeout} s, "
                    f"expected {count}"
                )
            return list(self.mails)

    async def wait_for_mails(self, count: int, timeout: float = 10.0) -> list[Mail]:
        """Wait (in a thread, without blocking the loop) until ``count`` mails arrived."""
        return await anyio.to_thread.run_sync(self.wait_for_mails_blocking, count, timeout)


def _client_cert_names(ssl_info: dict[str, Any] | None) -> tuple[str, ...]:
    peercert = (ssl_info or {}).get("peercert") or {}
    return tuple(value for _, value in peercert.get("subjectAltName", ()))


@dataclass
class SMTPServer:
    host: str
    port: int
    recorder: Recorder

    @property
    def mailhost(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def mails(self) -> list[Mail]:
        return self.recorder.mails


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago (aiosmtpd's Controller cannot be given port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_smtpd(
    *,
    credentials: tuple[str, str] | None = None,
    tls_context: ssl.SSLContext | None = None,
    port: int | None = None,
    reject_marker: bytes | None = None,
) -> tuple[SMTPServer, Controller]:
    """Start aiosmtpd on 127.0.0.1 (blocking: it waits for the server's thread).

    ``credentials`` turns AUTH on (offered before STARTTLS too, so that tests can check that
    the client refuses to use it); ``tls_context`` turns STARTTLS on; ``port`` picks the
    port (default: a free one); ``reject_marker`` refuses the mails that contain it.
    """
    recorder = Recorder(credentials=credentials, reject_marker=reject_marker)
    options: dict[str, Any] = {"server_hostname": "localhost"}
    if credentials is not None:
        options.update(authenticator=recorder, auth_require_tls=False)
    if tls_context is not None:
        options["tls_context"] = tls_context
    last_error: Exception | None = None
    for _ in range(1 if port is not None else 5):
        chosen = port if port is not None else free_port()
        controller = Controller(recorder, hostname=HOST, port=chosen, **options)
        try:
            controller.start()
        except Exception as exc:  # the port was taken between picking and binding
            last_error = exc
            continue
        return SMTPServer(HOST, chosen, recorder), controller
    raise RuntimeError(f"could not start aiosmtpd on {HOST}: {last_error!r}")


@contextmanager
def running_smtpd(**options: Any) -> Iterator[SMTPServer]:
    """Run aiosmtpd until the block ends; for sync fixtures (see :func:`start_smtpd`)."""
    server, controller = start_smtpd(**options)
    try:
        yield server
    finally:
        controller.stop()


@asynccontextmanager
async def serving_smtpd(**options: Any) -> AsyncIterator[SMTPServer]:
    """Run aiosmtpd until the block ends; inside async tests, starting and stopping it in a
    worker thread so the event loop never waits on the server's start-up."""
    server, controller = await anyio.to_thread.run_sync(functools.partial(start_smtpd, **options))
    try:
        yield server
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(controller.stop)
