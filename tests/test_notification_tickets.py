"""Downloading the PDF ticket through the gateway: the owner may, another user may not."""

from __future__ import annotations

import httpx

from notification_service.tests.pdf import pdf_text
from tests.conftest import Mailbox
from tests.support_notification import book, create_event, pay, register_verified


async def test_only_the_owner_downloads_the_ticket_and_another_user_gets_403(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    owner = await register_verified(client, mailbox, "owner")
    stranger = await register_verified(client, mailbox, "stranger")
    event = await create_event(client, title="Sunset Sessions")
    booking = await book(client, owner, event["id"], ["normal-1-7"])
    await pay(client, owner, booking)
    await mailbox.wait_for(owner.email, "Your ticket", timeout=60)
    url = f"/api/notifications/tickets/{booking['id']}/pdf"

    mine = await client.get(url, headers=owner.headers)
    theirs = await client.get(url, headers=stranger.headers)
    anonymous = await client.get(url)

    assert mine.status_code == 200
    assert mine.headers["content-type"] == "application/pdf"
    assert "Sunset Sessions" in pdf_text(mine.content)
    assert theirs.status_code == 403
    assert "error" in theirs.json()
    assert anonymous.status_code == 401


async def test_a_ticket_for_an_unknown_or_unpaid_booking_is_refused(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    buyer = await register_verified(client, mailbox, "unpaid")
    event = await create_event(client)
    booking = await book(client, buyer, event["id"], ["vip-1-2"])

    unpaid = await client.get(
        f"/api/notifications/tickets/{booking['id']}/pdf", headers=buyer.headers
    )
    unknown = await client.get("/api/notifications/tickets/987654321/pdf", headers=buyer.headers)

    assert unpaid.status_code == 409
    assert unknown.status_code == 404
