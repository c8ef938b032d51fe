"""Steps the notification journeys repeat, all through the gateway of the test stack.

Organizers are stood in for by a token signed with the test stack's JWT secret: approving
organizers is auth_service's journey, not this one; these journeys are about the emails a
buyer receives and the ticket they download.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import httpx

from tests import support_events
from tests.conftest import Mailbox, unique_email
from ticketing_common.security import issue_token
from ticketing_common.settings import DEV_JWT_SECRET, DEV_TICKET_SIGNING_SECRET

PASSWORD = "Correct-Horse-9"
#: the secrets the test stack runs with (devstack passes none, so the development ones)
JWT_SECRET = os.environ.get("JWT_SECRET", DEV_JWT_SECRET)
TICKET_SIGNING_SECRET = os.environ.get("TICKET_SIGNING_SECRET", DEV_TICKET_SIGNING_SECRET)


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def code_in(message: EmailMessage, label: str) -> str:
    """The code on the ``<label>: <code>`` line of the email's plain-text part."""
    body = message.get_body(("plain",))
    assert body is not None, "the email has no plain-text part"
    text = body.get_content()
    match = re.search(rf"^{re.escape(label)}: (\S+)\s*$", text, re.MULTILINE)
    assert match is not None, f"no {label!r} line in {text!r}"
    return match.group(1)


def pdf_attachment(message: EmailMessage) -> tuple[str, bytes]:
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    content = attachment.get_content()
    assert isinstance(content, bytes)
    return str(attachment.get_filename()), content


async def register_verified(client: httpx.AsyncClient, mailbox: Mailbox, prefix: str) -> Account:
    """Register a buyer and verify the account with the code that arrived by email."""
    email = unique_email(prefix)
    response = await client.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "role": "user"}
    )
    assert response.status_code == 201, response.text
    [message] = await mailbox.wait_for(email, "Verify your email")
    verified = await client.post(
        "/api/auth/verify-email",
        json={"email": email, "code": code_in(message, "Your verification code")},
    )
    assert verified.status_code == 200, verified.text
    return Account(int(response.json()["user"]["id"]), email, verified.json()["access_token"])


def organizer() -> Account:
    user_id = uuid.uuid4().int % 10**9 + 10**9
    token, _ = issue_token(
        secret=JWT_SECRET,
        user_id=user_id,
        role="organizer",
        token_type="access",
        ttl=timedelta(minutes=15),
        email=f"organizer-{user_id}@example.com",
    )
    return Account(user_id, f"organizer-{user_id}@example.com", token)


async def create_event(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """An event (``tests.support_events.event_payload``) by a signed-in organizer."""
    return await support_events.create_event(client, headers=organizer().headers, **overrides)


async def book(
    client: httpx.AsyncClient, buyer: Account, event_id: int, seat_ids: list[str]
) -> dict[str, Any]:
    response = await client.post(
        "/api/bookings",
        json={"event_id": event_id, "seats": [{"id": seat} for seat in seat_ids]},
        headers=buyer.headers,
    )
    assert response.status_code == 201, response.text
    booking: dict[str, Any] = response.json()["booking"]
    return booking


async def pay(client: httpx.AsyncClient, buyer: Account, booking: dict[str, Any]) -> None:
    """Pay on the simulated provider's checkout page, as the buyer's browser would."""
    response = await client.post(
        "/api/payments/initialize", json={"booking_id": booking["id"]}, headers=buyer.headers
    )
    assert response.status_code == 200, response.text
    tx_ref = response.json()["tx_ref"]
    paid = await client.post(f"/api/payments/checkout/{tx_ref}/pay")
    assert paid.status_code in (200, 303), paid.text


async def notifications_of(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    response = await client.get("/api/notifications", headers=account.headers)
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()["notifications"]
    return listed


async def wait_for_notification(
    client: httpx.AsyncClient,
    account: Account,
    type_: str,
    *,
    timeout: float = 30.0,
    **expected: Any,
) -> dict[str, Any]:
    """Poll the account's notification log until one of ``type_`` matches ``expected``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for notification in await notifications_of(client, account):
            if notification["type"] == type_ and all(
                notification.get(k) == v for k, v in expected.items()
            ):
                return notification
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no {type_} notification with {expected} within {timeout}s")
        await asyncio.sleep(0.3)
