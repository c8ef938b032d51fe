"""Redis loses the seat gate (FLUSHDB on this suite's own Redis db): no buyer loses a seat.

The gate is rebuilt from PostgreSQL: sales from event_db, and the live holds of pending
bookings from booking_db (through booking_service's internal API), so a buyer who was
paying keeps the seats and the payment confirms instead of being refunded.
"""

from __future__ import annotations

from booking_service.tests.conftest import Stack


async def test_a_pending_booking_keeps_its_seats_after_redis_is_wiped(stack: Stack) -> None:
    event_id = await stack.create_event()
    paying = await stack.booked(stack.actor(), event_id, ["vip-1-1", "vip-1-2"])

    await stack.event_app.state.redis.flushdb()

    statuses = await stack.seat_statuses(event_id)
    assert (statuses["vip-1-1"], statuses["vip-1-2"], statuses["vip-1-3"]) == (
        "held",
        "held",
        "available",
    )
    latecomer = await stack.book(stack.actor(), event_id, ["vip-1-2"])
    assert latecomer.status_code == 409, latecomer.text
    assert await stack.settle(paying) == "confirmed"
    assert (await stack.seat_statuses(event_id))["vip-1-1"] == "sold"


async def test_a_general_admission_hold_is_restored_with_its_own_seats(stack: Stack) -> None:
    event_id = await stack.create_event(seats_vvip=4)
    paying = await stack.book(stack.actor(), event_id, seat_count=3, ticket_class="vvip")
    assert paying.status_code == 201, paying.text

    await stack.event_app.state.redis.flushdb()

    rest = await stack.book(stack.actor(), event_id, seat_count=2, ticket_class="vvip")
    assert rest.status_code == 409, rest.text
    assert await stack.settle(paying.json()["booking"]) == "confirmed"


async def test_holds_that_ran_out_or_ended_are_not_restored(stack: Stack) -> None:
    event_id = await stack.create_event()
    cancelled = await stack.booked(buyer := stack.actor(), event_id, ["vip-1-1"])
    response = await stack.client.post(
        f"/api/bookings/{cancelled['id']}/cancel", headers=buyer.headers
    )
    assert response.status_code == 200, response.text

    await stack.event_app.state.redis.flushdb()

    assert (await stack.seat_statuses(event_id))["vip-1-1"] == "available"
    again = await stack.book(stack.actor(), event_id, ["vip-1-1"])
    assert again.status_code == 201, again.text
