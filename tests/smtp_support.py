"""
A real SMTP server on loopback for the email tests: aiosmtpd, started per test.

``SMTPServer.refuse_once`` makes the server answer ``451`` to the first RCPT
for an address, as a busy mail server does, so retries are tested against a
real failure on the wire.
"""

from __future__ import annotations

import email
import email.policy
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.backends.redis_support import free_port

__all__ = ["SMTPServer"]


class _Handler:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.server.lock:
            if address in self.server.refuse:
                self.server.refuse.discard(address)
                return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.server.lock:
            self.server.received.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


class SMTPServer:
    """Collect what arrives in ``received`` as ``(recipients, EmailMessage)`` pairs."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def refuse_once(self, address: str) -> None:
        with self.lock:
            self.refuse.add(address)

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
