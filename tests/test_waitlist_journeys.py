"""Waiting lists of sold-out classes through the gateway (issue 19): two seats freed at
once go to the first two entries as offers, nobody else can take them meanwhile, a paid
offer is booked, a cancelled or unpaid one passes to the next entry, and once the list is
empty the class is on sale again."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from tests.conftest import Mailbox, gateway_client
from tests.support_booking import (
    Buyer,
    get_booking,
    new_buyer,
    post_booking,
    wait_for_booking_status,
)
from tests.support_events import create_event, signed_headers
from tests.support_payment import pay_booking

pytestmark = pytest.mark.stack

#: the test stack's WAITLIST_OFFER_TTL_SECONDS (devstack/config.py)
OFFER_TTL_SECONDS = 30


async def _entry(client: httpx.AsyncClient, buyer: Buyer, event_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/events/{event_id}/waitlist/me", headers=buyer.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _wait_for_entry(
    client: httpx.AsyncClient, buyer: Buyer, event_id: int, status: str, timeout: float = 20.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        entry = await _entry(client, buyer, event_id)
        if entry["status"] == status:
            return entry
        assert time.monotonic() < deadline, f"entry still {entry}, not {status}"
        await asyncio.sleep(0.5)


async def _buyer(mailbox: Mailbox) -> Buyer:
    """A buyer signed up from an address of its own (sign-ups are limited per address)."""
    async with gateway_client() as own:
        return await new_buyer(own, mailbox)


async def _join(
    client: httpx.AsyncClient, buyer: Buyer, event_id: int, ticket_class: str = "vvip"
) -> httpx.Response:
    return await client.post(
        f"/api/events/{event_id}/waitlist",
        json={"ticket_class": ticket_class, "seat_count": 1},
        headers=buyer.headers,
    )


async def test_freed_seats_go_to_the_waiting_list_in_order_and_nobody_else(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    organizer = signed_headers()
    event = await create_event(client, headers=organizer, seats_vvip=2)
    event_id = event["id"]
    holder, newcomer = await _buyer(mailbox), await _buyer(mailbox)
    first, second, third, fourth = [await _buyer(mailbox) for _ in range(4)]

    early = await _join(client, first, event_id)
    assert early.status_code == 409, early.text
    assert early.json()["code"] == "class_not_sold_out"

    held = await post_booking(client, holder, event_id, ["vvip-1-1", "vvip-1-2"])
    assert held.status_code == 201, held.text
    holder_booking = held.json()["booking"]["id"]

    for position, buyer in enumerate((first, second, third, fourth), start=1):
        joined = await _join(client, buyer, event_id)
        assert joined.status_code == 201, joined.text
        assert joined.json()["status"] == "waiting"
        assert joined.json()["position"] == position
    again = await _join(client, first, event_id)
    assert again.status_code == 200
    assert again.json()["id"] == (await _entry(client, first, event_id))["id"]

    # Two seats freed at once (one cancellation) go to two different people, in order.
    cancelled = await client.post(f"/api/bookings/{holder_booking}/cancel", headers=holder.headers)
    assert cancelled.status_code == 200, cancelled.text
    offer_1 = await _wait_for_entry(client, first, event_id, "offered")
    offer_2 = await _wait_for_entry(client, second, event_id, "offered")
    assert offer_1["booking_id"] != offer_2["booking_id"]
    # (``seats`` is the original's string of JSON seats)
    seats_1 = json.loads((await get_booking(client, first.headers, offer_1["booking_id"]))["seats"])
    seats_2 = json.loads(
        (await get_booking(client, second.headers, offer_2["booking_id"]))["seats"]
    )
    assert sorted(s["id"] for s in seats_1 + seats_2) == ["vvip-1-1", "vvip-1-2"]
    assert (await _entry(client, third, event_id))["position"] == 1
    assert (await _entry(client, third, event_id))["status"] == "waiting"

    # Nobody else can take them while they are offered, by seat or by count.
    for attempt in (
        await post_booking(client, newcomer, event_id, ["vvip-1-1"]),
        await post_booking(client, newcomer, event_id, seat_count=1, ticket_class="vvip"),
    ):
        assert attempt.status_code == 409, attempt.text
    email = await mailbox.wait_for(first.email, "are yours until")
    assert f"/api/bookings/{offer_1['booking_id']}" in str(email[0])

    # A paid offer is booked.
    await pay_booking(client, offer_1["booking_id"], headers=first.headers)
    await wait_for_booking_status(client, first, offer_1["booking_id"], "confirmed")
    await _wait_for_entry(client, first, event_id, "booked")

    # A cancelled offer passes to the next entry, and an unpaid one when it lapses.
    gave_up = await client.post(
        f"/api/bookings/{offer_2['booking_id']}/cancel", headers=second.headers
    )
    assert gave_up.status_code == 200, gave_up.text
    await _wait_for_entry(client, second, event_id, "lapsed")
    offer_3 = await _wait_for_entry(client, third, event_id, "offered")
    assert (await _entry(client, fourth, event_id))["position"] == 1
    await _wait_for_entry(client, third, event_id, "lapsed", timeout=OFFER_TTL_SECONDS + 20)
    await wait_for_booking_status(client, third, offer_3["booking_id"], "expired")
    offer_4 = await _wait_for_entry(client, fourth, event_id, "offered")

    # An entry being offered can't leave (its booking can be cancelled); the list empty,
    # the class is on sale again.
    leave = await client.delete(f"/api/events/{event_id}/waitlist/me", headers=fourth.headers)
    assert leave.status_code == 409, leave.text
    assert leave.json()["code"] == "offer_in_progress"
    assert (
        await client.post(f"/api/bookings/{offer_4['booking_id']}/cancel", headers=fourth.headers)
    ).status_code == 200
    await _wait_for_entry(client, fourth, event_id, "lapsed")
    deadline = time.monotonic() + 20
    while True:
        bought = await post_booking(client, newcomer, event_id, seat_count=1, ticket_class="vvip")
        if bought.status_code == 201:
            break
        assert bought.status_code == 409, bought.text
        assert time.monotonic() < deadline, bought.text
        await asyncio.sleep(0.5)

    stats = await client.get(f"/api/events/{event_id}/waitlist", headers=organizer)
    assert stats.status_code == 200, stats.text
    vvip = next(c for c in stats.json()["classes"] if c["ticket_class"] == "vvip")
    assert vvip == {"ticket_class": "vvip", "waiting": 0, "offered": 0, "booked": 1, "lapsed": 3}
    stranger = await client.get(f"/api/events/{event_id}/waitlist", headers=first.headers)
    assert stranger.status_code == 403


async def test_joining_leaving_and_bad_input(client: httpx.AsyncClient, mailbox: Mailbox) -> None:
    event = await create_event(client, headers=signed_headers(), seats_vvip=1)
    event_id = event["id"]
    holder, buyer = await _buyer(mailbox), await _buyer(mailbox)
    assert (await post_booking(client, holder, event_id, ["vvip-1-1"])).status_code == 201

    async with gateway_client() as anonymous:
        unauthenticated = await anonymous.post(
            f"/api/events/{event_id}/waitlist", json={"ticket_class": "vvip"}
        )
    assert unauthenticated.status_code == 401
    for body in (
        {"ticket_class": "gold"},
        {"ticket_class": "vvip", "seat_count": 0},
        {"ticket_class": "vvip", "seat_count": "two"},
        {},
    ):
        bad = await client.post(
            f"/api/events/{event_id}/waitlist", json=body, headers=buyer.headers
        )
        assert bad.status_code == 400, (body, bad.text)
        assert bad.json()["code"] == "validation_error"
    too_many = await client.post(
        f"/api/events/{event_id}/waitlist",
        json={"ticket_class": "vvip", "seat_count": 2},
        headers=buyer.headers,
    )
    assert too_many.status_code == 400, too_many.text
    missing = await client.post(
        "/api/events/999999999/waitlist", json={"ticket_class": "vvip"}, headers=buyer.headers
    )
    assert missing.status_code == 404

    assert (await _join(client, buyer, event_id)).status_code == 201
    left = await client.delete(f"/api/events/{event_id}/waitlist/me", headers=buyer.headers)
    assert left.status_code == 204
    assert (await _entry(client, buyer, event_id))["status"] == "left"
    gone = await client.delete(f"/api/events/{event_id}/waitlist/me", headers=buyer.headers)
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_on_waitlist"
    # joining again puts the buyer at the end, as a new entry
    rejoined = await _join(client, buyer, event_id)
    assert rejoined.status_code == 201
    assert rejoined.json()["position"] == 1
