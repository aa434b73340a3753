"""An error storm mailed as a few digests instead of one mail per error.

The example starts its own SMTP server (aiosmtpd on 127.0.0.1, in a thread) that prints a
summary of every mail it accepts. The app then logs one ERROR, then 300 more in a burst,
then a few stragglers, through ``loopsink.SMTPHandler(..., digest_interval=1.0)``: at most
one mail per second leaves, each giving the number of records it carries, and leaving
``install`` (the queue's shutdown) sends the digest still pending. With the stdlib's
``SMTPHandler`` the same run sends 304 mails, each one holding the event loop for a full
SMTP conversation.

Run it with ``python examples/smtp_digest.py``; it takes about two seconds.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import logging
import socket
import threading
import time
from typing import Any

import anyio
from aiosmtpd.controller import Controller

import loopsink


class Mailbox:
    """aiosmtpd handler: keeps and prints each mail it accepts."""

    def __init__(self) -> None:
        self.mails: list[email.message.EmailMessage] = []
        self.arrived = threading.Condition()
        self.started = time.monotonic()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        body = message.get_body()
        first_line = str(body.get_content()).splitlines()[0] if body is not None else ""
        print(
            f"  +{time.monotonic() - self.started:4.1f}s  mail to {envelope.rcpt_tos}: "
            f"{message['Subject']!r}\n           {first_line}"
        )
        with self.arrived:
            self.mails.append(message)
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.mails) >= count, timeout):
                raise TimeoutError(f"only {len(self.mails)} mails arrived, expected {count}")


def free_port() -> int:
    """aiosmtpd's Controller checks its port by connecting to it, so it cannot take port 0."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def main(mailbox: Mailbox, port: int) -> None:
    alerts = loopsink.SMTPHandler(
        ("127.0.0.1", port),
        "payments@example.com",
        ["oncall@example.com"],
        "payments: errors",
        digest_interval=1.0,  # at most one mail per second
    )
    alerts.setLevel(logging.ERROR)
    alerts.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("payments")
    log.propagate = False

    async with loopsink.install(alerts, logger=log):
        log.error("upstream timeout for order 1")  # goes out at once, as a normal mail
        await anyio.to_thread.run_sync(mailbox.wait_for, 1)
        for order in range(2, 302):  # the storm: held, then sent as one digest
            log.error("upstream timeout for order %d", order)
        await anyio.to_thread.run_sync(mailbox.wait_for, 2)
        for order in range(302, 305):  # stragglers: sent when install() shuts down
            log.error("upstream timeout for order %d", order)
    print(f"{len(mailbox.mails)} mails for 304 errors")


if __name__ == "__main__":
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, server_hostname="localhost")
    controller.start()
    try:
        anyio.run(main, mailbox, port)
    finally:
        controller.stop()
