"""The on-sale's waiting room through the gateway (issue 20): join, admitted, book with
the pass; refused without it or with another buyer's; the organizer's view."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Mailbox
from tests.support_booking import Buyer, new_buyer, post_booking, wait_for_booking_status
from tests.support_events import create_event, signed_headers
from tests.support_payment import pay_booking

pytestmark = pytest.mark.stack


async def _place(client: httpx.AsyncClient, buyer: Buyer, event_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/events/{event_id}/queue/me", headers=buyer.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _pass_of(client: httpx.AsyncClient, buyer: Buyer, event_id: int) -> str:
    """Poll as a client would (``poll_after_s``, capped for the test) until admitted."""
    deadline = time.monotonic() + 30
    while True:
        place = await _place(client, buyer, event_id)
        if place["status"] == "admitted":
            return str(place["pass"])
        assert place["status"] in ("waiting", "queued"), place
        assert time.monotonic() < deadline, place
        await asyncio.sleep(min(place["poll_after_s"], 0.5))


async def test_an_admitted_buyer_books_and_pays_with_its_pass_and_nobody_without_one(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    organizer = signed_headers()
    event = await create_event(
        client,
        headers=organizer,
        queue_enabled=True,
        onsale_at=(datetime.now(UTC) + timedelta(seconds=2)).isoformat(),
        queue_admit_per_minute=6000,
    )
    first, second = await new_buyer(client, mailbox), await new_buyer(client, mailbox)

    joined = await client.post(f"/api/events/{event['id']}/queue", headers=first.headers)
    again = await client.post(f"/api/events/{event['id']}/queue", headers=first.headers)
    assert joined.status_code == 201, joined.text
    assert joined.json()["status"] == "waiting"
    assert joined.json()["estimated_wait_s"] > 0
    assert again.status_code == 200
    assert (
        await client.post(f"/api/events/{event['id']}/queue", headers=second.headers)
    ).status_code == 201

    early = await post_booking(client, first, event["id"], ["vip-1-1"])
    assert early.status_code == 428, early.text
    assert early.json()["code"] == "queue_pass_required"

    first_pass = await _pass_of(client, first, event["id"])
    second_pass = await _pass_of(client, second, event["id"])

    borrowed = await client.post(
        "/api/bookings",
        json={"event_id": event["id"], "seats": [{"id": "vip-1-1"}]},
        headers={**second.headers, "X-Queue-Pass": first_pass},
    )
    assert borrowed.status_code == 403, borrowed.text
    assert borrowed.json()["code"] == "queue_pass_invalid"

    booked = await client.post(
        "/api/bookings",
        json={"event_id": event["id"], "seats": [{"id": "vip-1-1"}, {"id": "vip-1-2"}]},
        headers={**first.headers, "X-Queue-Pass": first_pass},
    )
    assert booked.status_code == 201, booked.text
    booking = booked.json()["booking"]
    await pay_booking(client, booking["id"], headers=first.headers)
    await wait_for_booking_status(client, first, booking["id"], "confirmed")

    # the refusals held nothing: the second buyer's own pass still gets a seat
    other = await client.post(
        "/api/bookings",
        json={"event_id": event["id"], "seats": [{"id": "vip-1-3"}]},
        headers={**second.headers, "X-Queue-Pass": second_pass},
    )
    assert other.status_code == 201, other.text

    stats = await client.get(f"/api/events/{event['id']}/queue", headers=organizer)
    assert stats.status_code == 200, stats.text
    assert stats.json()["length"] == 2
    assert stats.json()["admitted"] == 2
    assert stats.json()["status"] == "open"
    stranger = await client.get(f"/api/events/{event['id']}/queue", headers=first.headers)
    assert stranger.status_code == 403


async def test_an_event_without_a_room_sells_as_before(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    buyer = await new_buyer(client, mailbox)
    event = await create_event(client, headers=signed_headers())

    joined = await client.post(f"/api/events/{event['id']}/queue", headers=buyer.headers)
    booked = await post_booking(client, buyer, event["id"], ["vip-1-1"])

    assert joined.status_code == 409
    assert joined.json()["code"] == "queue_not_enabled"
    assert booked.status_code == 201, booked.text
