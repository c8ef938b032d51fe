"""A real SMTP server (aiosmtpd) for the tests, which can also play down or refusing."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal

from aiosmtpd.controller import Controller

Mode = Literal["accept", "down", "reject", "hang_up_at_mail"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class SmtpSink:
    """What arrived, and how the server answers the next message.

    ``down`` answers DATA with 421 (try again later), ``reject`` with 550 (never);
    ``hang_up_at_mail`` answers the next MAIL FROM with 421 (as a server closing an idle
    connection does), then accepts again.
    """

    port: int
    mode: Mode = "accept"
    messages: list[EmailMessage] = field(default_factory=list)
    over_tls: list[bool] = field(default_factory=list)
    #: the client's address and port of each accepted message: one per connection
    peers: list[tuple[str, int]] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, recipient: str, subject_contains: str = "") -> list[EmailMessage]:
        with self.lock:
            return [
                m
                for m in self.messages
                if recipient.lower() in str(m["To"]).lower()
                and subject_contains.lower() in str(m["Subject"]).lower()
            ]

    async def wait_for(
        self, recipient: str, subject_contains: str = "", *, count: int = 1, timeout: float = 20
    ) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.to(recipient, subject_contains)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(found)} email(s) to {recipient!r} about {subject_contains!r}, "
                    f"wanted {count}"
                )
            await asyncio.sleep(0.05)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.sink.mode == "hang_up_at_mail":
            self.sink.mode = "accept"
            return "421 4.4.2 idle too long, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.sink.mode != "accept":
            with self.sink.lock:
                self.sink.refused += 1
            if self.sink.mode == "down":
                return "421 4.3.0 service not available, try again later"
            return "550 5.1.1 mailbox unavailable"
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.sink.lock:
            self.sink.messages.append(message)
            self.sink.over_tls.append(session.ssl is not None)
            self.sink.peers.append(session.peer)
        return "250 OK"


@contextlib.contextmanager
def smtp_sink(
    tls_context: ssl.SSLContext | None = None, port: int | None = None
) -> Iterator[SmtpSink]:
    """Run an SMTP server on a loopback port (a free one unless given); with
    ``tls_context`` it offers STARTTLS and refuses mail without it."""
    sink = SmtpSink(port=port or free_port())
    extra: dict[str, Any] = {}
    if tls_context is not None:
        extra = {"tls_context": tls_context, "require_starttls": True}
    controller = Controller(_Handler(sink), hostname="127.0.0.1", port=sink.port, **extra)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
