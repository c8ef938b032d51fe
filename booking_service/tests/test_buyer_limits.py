"""Per-buyer limits: nobody hoards an event (issue 17).

One account may hold at most MAX_HELD_SEATS_PER_BUYER seats of an event at once (10) in at
most MAX_PENDING_BOOKINGS_PER_BUYER unpaid bookings (3), and never more tickets (pending
and paid) than the organizer's ``max_tickets_per_buyer``. A refused booking keeps no hold.
"""

from __future__ import annotations

import asyncio

from booking_service.tests.conftest import Actor, Stack


async def _seats_held_by(stack: Stack, event_id: int) -> set[str]:
    return {s for s, status in (await stack.seat_statuses(event_id)).items() if status == "held"}


async def test_a_buyer_cannot_hold_more_seats_of_an_event_than_the_limit(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    await stack.booked(buyer, event_id, [f"normal-1-{n}" for n in range(1, 5)])
    await stack.booked(buyer, event_id, [f"normal-1-{n}" for n in range(5, 9)])

    response = await stack.book(buyer, event_id, ["vip-1-1", "vip-1-2", "vip-1-3"])

    assert response.status_code == 409, response.text
    body = response.json()
    assert body["code"] == "too_many_held_seats"
    assert body["details"] == {"limit": 10, "held": 8, "requested": 3}
    assert "vip-1-1" not in await _seats_held_by(stack, event_id)  # the hold was given back
    # Someone else is not held back by this buyer's limit.
    assert (await stack.book(stack.actor(), event_id, ["vip-1-1"])).status_code == 201


async def test_a_buyer_cannot_have_more_unpaid_bookings_of_an_event_than_the_limit(
    stack: Stack,
) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    for seat in ("vip-1-1", "vip-1-2", "vip-1-3"):
        await stack.booked(buyer, event_id, [seat])

    response = await stack.book(buyer, event_id, ["vip-1-4"])

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "too_many_pending_bookings"
    # Another event is another allowance.
    other_event = await stack.create_event()
    assert (await stack.book(buyer, other_event, ["vip-1-4"])).status_code == 201


async def test_paying_or_cancelling_gives_the_room_back(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    bookings = [await stack.booked(buyer, event_id, [seat]) for seat in ("vip-1-1", "vip-1-2")]
    third = await stack.booked(buyer, event_id, ["vip-1-3"])
    assert (await stack.book(buyer, event_id, ["vip-1-4"])).status_code == 409

    assert await stack.settle(bookings[0]) == "confirmed"
    assert (await stack.book(buyer, event_id, ["vip-1-4"])).status_code == 201
    cancelled = await stack.client.post(
        f"/api/bookings/{third['id']}/cancel", headers=buyer.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (await stack.book(buyer, event_id, ["vip-1-5"])).status_code == 201


async def test_the_organizers_cap_counts_paid_and_unpaid_tickets(stack: Stack) -> None:
    event_id = await stack.create_event(max_tickets_per_buyer=4)
    buyer = stack.actor()
    paid = await stack.booked(buyer, event_id, ["vip-1-1", "vip-1-2"])
    assert await stack.settle(paid) == "confirmed"
    unpaid = await stack.booked(buyer, event_id, ["vip-1-3"])

    over = await stack.book(buyer, event_id, ["vip-1-4", "vip-1-5"])

    assert over.status_code == 409, over.text
    assert over.json()["code"] == "ticket_limit_reached"
    assert over.json()["details"] == {"limit": 4, "tickets": 3, "requested": 2}
    assert (await stack.book(buyer, event_id, ["vip-1-4"])).status_code == 201  # the 4th
    # An unpaid booking that expires gives its ticket back.
    assert await stack.fail(unpaid) == "failed"
    assert (await stack.book(buyer, event_id, ["vip-1-5"])).status_code == 201


async def test_a_count_booking_beyond_the_cap_is_refused_whole(stack: Stack) -> None:
    event_id = await stack.create_event(max_tickets_per_buyer=2)

    response = await stack.book(stack.actor(), event_id, seat_count=3, ticket_class="normal")

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "ticket_limit_reached"
    assert await _seats_held_by(stack, event_id) == set()


async def test_one_buyers_concurrent_bookings_never_pass_the_limit(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer: Actor = stack.actor()

    responses = await asyncio.gather(
        *(stack.book(buyer, event_id, [f"normal-2-{n}"]) for n in range(1, 11))
    )

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 3 + [409] * 7
    assert len(await _seats_held_by(stack, event_id)) == 3
