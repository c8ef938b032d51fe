"""Fixtures for journeys through the gateway of the running test stack.

`scripts/test` starts the stack (``python -m devstack up --stack test``) before pytest.
Each simulated buyer gets its own loopback source address, as real buyers come from many
addresses and the gateway's per-IP rate limit (10 r/s, burst 20) stays on.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from devstack.config import TEST_SMTP_PORT, stack_named

TEST_STACK = stack_named("test")
GATEWAY_URL = os.environ.get("TEST_GATEWAY_URL", TEST_STACK.gateway_url)
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Admin-Password-1"

_address_counter = itertools.count(1)


def next_loopback_address() -> str:
    """A fresh 127.x.y.z source address, one per simulated client (x in 10..250)."""
    n = next(_address_counter) + (os.getpid() % 50) * 10_000
    return f"127.{10 + (n // 65_025) % 240}.{(n // 255) % 255}.{1 + n % 254}"


def gateway_client(address: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address or next_loopback_address())
    return httpx.AsyncClient(
        base_url=GATEWAY_URL, transport=transport, timeout=kwargs.pop("timeout", 30.0), **kwargs
    )


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A gateway client with its own source address."""
    async with gateway_client() as c:
        yield c


@pytest.fixture
def new_client() -> Any:
    """Factory for more clients, each from its own loopback address."""
    return gateway_client


@pytest.fixture(scope="session")
def service_urls() -> dict[str, str]:
    return {
        name: TEST_STACK.service_url(name)
        for name in (
            "auth_service",
            "booking_service",
            "event_service",
            "payment_service",
            "notification_service",
        )
    }


@dataclass
class Mailbox:
    """Everything the stack's notification_service sends over SMTP during the session."""

    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    down: bool = False

    def matching(self, to: str, subject_contains: str = "") -> list[EmailMessage]:
        with self.lock:
            return [
                m
                for m in self.messages
                if to.lower() in str(m.get("To", "")).lower()
                and subject_contains.lower() in str(m.get("Subject", "")).lower()
            ]

    async def wait_for(
        self, to: str, subject_contains: str = "", timeout: float = 30.0, count: int = 1
    ) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(to, subject_contains)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no email to {to!r} with {subject_contains!r} within {timeout}s "
                    f"(have {len(found)})"
                )
            await asyncio.sleep(0.2)


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.mailbox.down:
            return "421 service not available, try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.mailbox.lock:
            self.mailbox.messages.append(message)
        return "250 OK"


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on the port the test stack sends to."""
    box = Mailbox()
    controller = Controller(_Handler(box), hostname="127.0.0.1", port=TEST_SMTP_PORT)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture(scope="session", autouse=True)
def _smtp_for_the_stack(mailbox: Mailbox) -> Mailbox:
    """Always listening, so the stack's mail never piles up in retries during tests."""
    return mailbox
