"""The saga after the hold: payment outcomes, expiry and cancellation."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from booking_service.expiry import expire_once, expiry_lifecycle
from booking_service.models import Booking, RefundRequest
from booking_service.tests.conftest import Stack
from event_service.models import Event
from ticketing_common.db import utcnow
from ticketing_common.messaging import PermanentFailure


async def _lapse(stack: Stack, booking_id: int) -> None:
    """Move the booking's expiry into the past (its hold in the gate is left as it is)."""
    async with stack.app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Booking)
            .where(Booking.id == booking_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


async def _refunds(stack: Stack, booking_id: int) -> int:
    async with stack.app.state.sessionmaker() as session:
        total = await session.scalar(
            select(func.count())
            .select_from(RefundRequest)
            .where(RefundRequest.booking_id == booking_id)
        )
    return int(total or 0)


# --- payment_success -----------------------------------------------------------------


async def test_payment_confirms_a_pending_booking_and_sells_its_seats(stack: Stack) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1", "normal-1-1"])

    tx_ref = "tx-happy-1" + str(booking["id"])
    outcome = await stack.settle(booking, tx_ref=tx_ref)

    assert outcome == "confirmed"
    confirmed = await stack.booking(booking["id"])
    assert confirmed["status"] == "confirmed"
    assert confirmed["confirmed_at"] is not None
    assert confirmed["payment_tx_ref"] == tx_ref
    statuses = await stack.seat_statuses(event_id)
    assert statuses["vip-1-1"] == "sold"
    assert statuses["normal-1-1"] == "sold"
    [message] = await stack.outbox("booking_confirmed", booking_id=booking["id"])
    assert message["total_amount"] == "350.00"
    assert message["hold_token"] == confirmed["hold_token"]
    assert {s["seat_id"] for s in message["seats"]} == {"vip-1-1", "normal-1-1"}
    # what the ticket and its email print travels with the message (issue 22)
    assert message["tx_ref"] == tx_ref
    assert {(s["seat_id"], s["row"], s["number"], s["price"]) for s in message["seats"]} == {
        ("vip-1-1", 1, 1, "250.00"),
        ("normal-1-1", 1, 1, "100.00"),
    }
    assert message["event_title"]
    assert message["buyer_email"]
    assert message["venue"]
    assert message["event_starts_at"] is not None


async def test_duplicate_payment_success_changes_nothing(stack: Stack) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    tx_ref = f"tx-dup-{booking['id']}"
    await stack.settle(booking, tx_ref=tx_ref)

    outcome = await stack.settle(booking, tx_ref=tx_ref)

    assert outcome == "already_confirmed"
    assert len(await stack.outbox("booking_confirmed", booking_id=booking["id"])) == 1
    assert await _refunds(stack, booking["id"]) == 0


async def test_second_payment_for_a_confirmed_booking_is_refunded(stack: Stack) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    await stack.settle(booking, tx_ref=f"tx-first-{booking['id']}")

    outcome = await stack.settle(booking, tx_ref=f"tx-second-{booking['id']}")

    assert outcome == "refund_requested"
    [refund] = await stack.outbox("refund_requested", booking_id=booking["id"])
    assert refund["tx_ref"] == f"tx-second-{booking['id']}"
    assert refund["reason"] == "booking_not_pending"
    assert (await stack.booking(booking["id"]))["payment_tx_ref"] == f"tx-first-{booking['id']}"


async def test_late_payment_for_an_expired_booking_is_refunded_not_confirmed(
    stack: Stack,
) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    await _lapse(stack, booking["id"])
    await expire_once(stack.app)
    assert (await stack.booking(booking["id"]))["status"] == "expired"

    outcome = await stack.settle(booking, tx_ref=f"tx-late-{booking['id']}")

    assert outcome == "refund_requested"
    assert (await stack.booking(booking["id"]))["status"] == "expired"
    assert await stack.outbox("booking_confirmed", booking_id=booking["id"]) == []
    [refund] = await stack.outbox("refund_requested", booking_id=booking["id"])
    assert Decimal(refund["amount"]) == Decimal(str(booking["total_amount"]))
    assert (await stack.seat_statuses(event_id))["vip-1-1"] == "available"


async def test_payment_after_the_hold_ran_out_is_refunded_and_the_seat_stays_free(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hold lapsed and someone else took the seat: never confirm over them."""
    event_id = await stack.create_event()
    monkeypatch.setattr(stack.settings, "hold_ttl_seconds", 1)
    late = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    await asyncio.sleep(1.3)
    monkeypatch.setattr(stack.settings, "hold_ttl_seconds", 30)
    other = await stack.booked(stack.actor(), event_id, ["vip-1-1"])

    outcome = await stack.settle(late, tx_ref=f"tx-lapsed-{late['id']}")

    assert outcome == "refund_requested"
    assert (await stack.booking(late["id"]))["status"] == "expired"
    assert (await stack.booking(other["id"]))["status"] == "pending"
    assert await stack.outbox("refund_requested", booking_id=late["id"])
    assert (await stack.seat_statuses(event_id))["vip-1-1"] == "held"


async def test_payment_for_a_hold_that_lapsed_unnoticed_expires_the_booking(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = await stack.create_event()
    monkeypatch.setattr(stack.settings, "hold_ttl_seconds", 1)
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    await asyncio.sleep(1.3)

    outcome = await stack.settle(booking)

    assert outcome == "refund_requested"
    assert (await stack.booking(booking["id"]))["status"] == "expired"
    [cancelled] = await stack.outbox("booking_cancelled", booking_id=booking["id"])
    assert cancelled["reason"] == "expired"


async def test_payment_with_another_amount_is_dead_lettered(stack: Stack) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])

    with pytest.raises(PermanentFailure):
        await stack.settle(booking, amount="1.00")

    assert (await stack.booking(booking["id"]))["status"] == "pending"


async def test_payment_for_an_unknown_booking_is_refunded(stack: Stack) -> None:
    ghost = {"id": 9_000_000_001, "user_id": 7, "total_amount": "10.00", "currency": "ETB"}

    outcome = await stack.settle(ghost, tx_ref="tx-ghost-9000000001")

    assert outcome == "refund_requested"
    assert await stack.outbox("refund_requested", booking_id=ghost["id"])


# --- payment_failed ------------------------------------------------------------------


async def test_failed_payment_fails_the_booking_and_frees_its_seats(stack: Stack) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1", "vip-1-2"])

    outcome = await stack.fail(booking)

    assert outcome == "failed"
    assert (await stack.booking(booking["id"]))["status"] == "failed"
    statuses = await stack.seat_statuses(event_id)
    assert statuses["vip-1-1"] == statuses["vip-1-2"] == "available"
    [cancelled] = await stack.outbox("booking_cancelled", booking_id=booking["id"])
    assert cancelled["reason"] == "payment_failed"
    assert (await stack.book(stack.actor(), event_id, ["vip-1-1"])).status_code == 201


async def test_failed_payment_for_a_confirmed_booking_is_ignored(stack: Stack) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    await stack.settle(booking)

    assert await stack.fail(booking) == "ignored"
    assert (await stack.booking(booking["id"]))["status"] == "confirmed"


# --- expiry ----------------------------------------------------------------------------


async def test_expiry_loop_expires_lapsed_bookings_and_announces_them(stack: Stack) -> None:
    event_id = await stack.create_event()
    lapsed = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    fresh = await stack.booked(stack.actor(), event_id, ["vip-1-2"])
    await _lapse(stack, lapsed["id"])

    await expire_once(stack.app)

    assert (await stack.booking(lapsed["id"]))["status"] == "expired"
    assert (await stack.booking(fresh["id"]))["status"] == "pending"
    [message] = await stack.outbox("booking_cancelled", booking_id=lapsed["id"])
    assert message["reason"] == "expired"
    assert message["previous_status"] == "pending"
    assert message["seat_ids"] == ["vip-1-1"]
    statuses = await stack.seat_statuses(event_id)
    assert statuses["vip-1-1"] == "available"
    assert statuses["vip-1-2"] == "held"


async def test_expiry_in_several_replicas_expires_each_booking_once(stack: Stack) -> None:
    event_id = await stack.create_event(seats_normal=20)
    buyers = [stack.actor() for _ in range(12)]
    bookings = [
        await stack.booked(buyer, event_id, [f"normal-1-{n}"])
        for n, buyer in enumerate(buyers[:10], start=1)
    ]
    for booking in bookings:
        await _lapse(stack, booking["id"])
    stack.settings.expiry_batch_size, batch = 3, stack.settings.expiry_batch_size
    try:
        counts = await asyncio.gather(*(expire_once(stack.app) for _ in range(6)))
        while await expire_once(stack.app):
            pass
    finally:
        stack.settings.expiry_batch_size = batch

    assert sum(counts) <= 10
    for booking in bookings:
        assert (await stack.booking(booking["id"]))["status"] == "expired"
        assert len(await stack.outbox("booking_cancelled", booking_id=booking["id"])) == 1


async def test_expiry_runs_by_itself_in_the_background(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    await _lapse(stack, booking["id"])
    monkeypatch.setattr(stack.settings, "expiry_interval_seconds", 0.05)

    async with expiry_lifecycle(stack.app):  # as the app runs it
        for _ in range(100):
            if (await stack.booking(booking["id"]))["status"] == "expired":
                break
            await asyncio.sleep(0.05)

    assert (await stack.booking(booking["id"]))["status"] == "expired"


# --- cancellation ------------------------------------------------------------------------


async def test_cancelling_a_pending_booking_frees_its_seats_at_once(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    booking = await stack.booked(buyer, event_id, ["vip-1-1"])

    response = await stack.client.post(
        f"/api/bookings/{booking['id']}/cancel", headers=buyer.headers
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["booking"]["status"] == "cancelled"
    assert body["booking"]["cancelled_at"] is not None
    assert body["refund_requested"] is False
    assert (await stack.seat_statuses(event_id))["vip-1-1"] == "available"
    [message] = await stack.outbox("booking_cancelled", booking_id=booking["id"])
    assert message["reason"] == "cancelled"
    assert await stack.outbox(
        "audit_logs", action="booking_cancelled", target_id=str(booking["id"])
    )
    assert (await stack.book(stack.actor(), event_id, ["vip-1-1"])).status_code == 201


async def test_cancelling_a_confirmed_booking_requests_a_refund(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    booking = await stack.booked(buyer, event_id, ["vip-1-1"])
    await stack.settle(booking, tx_ref=f"tx-cancel-{booking['id']}")

    response = await stack.client.post(
        f"/api/bookings/{booking['id']}/cancel", headers=buyer.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["refund_requested"] is True
    assert (await stack.booking(booking["id"]))["status"] == "cancelled"
    [refund] = await stack.outbox("refund_requested", booking_id=booking["id"])
    assert refund["reason"] == "cancelled_by_user"
    assert refund["tx_ref"] == f"tx-cancel-{booking['id']}"
    assert refund["amount"] == "250.00"
    [message] = await stack.outbox("booking_cancelled", booking_id=booking["id"])
    assert message["previous_status"] == "confirmed"
    assert message["refund_requested"] is True


async def test_payment_arriving_after_cancellation_is_refunded(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    booking = await stack.booked(buyer, event_id, ["vip-1-1"])
    await stack.client.post(f"/api/bookings/{booking['id']}/cancel", headers=buyer.headers)

    outcome = await stack.settle(booking)

    assert outcome == "refund_requested"
    assert (await stack.booking(booking["id"]))["status"] == "cancelled"
    assert await stack.outbox("booking_confirmed", booking_id=booking["id"]) == []


async def test_cancelling_twice_is_409(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    booking = await stack.booked(buyer, event_id, ["vip-1-1"])
    url = f"/api/bookings/{booking['id']}/cancel"
    await stack.client.post(url, headers=buyer.headers)

    response = await stack.client.post(url, headers=buyer.headers)

    assert response.status_code == 409
    assert response.json()["code"] == "booking_not_cancellable"


async def test_only_the_owner_cancels_a_booking(stack: Stack) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])

    response = await stack.client.post(
        f"/api/bookings/{booking['id']}/cancel", headers=stack.actor().headers
    )

    assert response.status_code == 403
    assert (await stack.booking(booking["id"]))["status"] == "pending"


async def test_cancelling_an_unknown_booking_is_404(stack: Stack) -> None:
    response = await stack.client.post(
        "/api/bookings/987654321/cancel", headers=stack.actor().headers
    )

    assert response.status_code == 404


async def test_an_admin_may_cancel_a_paid_booking_and_the_refund_says_so(stack: Stack) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    await stack.settle(booking)

    response = await stack.client.post(
        f"/api/bookings/{booking['id']}/cancel", headers=stack.admin.headers
    )

    assert response.status_code == 200, response.text
    [refund] = await stack.outbox("refund_requested", booking_id=booking["id"])
    assert refund["reason"] == "cancelled_by_admin"


async def _event_has_started(stack: Stack, event_id: int) -> None:
    async with stack.event_app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Event).where(Event.id == event_id).values(date=utcnow() - timedelta(hours=1))
        )
    await stack.event_app.state.redis.flushdb()  # drop event_service's cached copy


async def test_a_ticket_cannot_be_cancelled_once_the_event_has_started(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    booking = await stack.booked(buyer, event_id, ["vip-1-1"])
    await stack.settle(booking)
    await _event_has_started(stack, event_id)

    response = await stack.client.post(
        f"/api/bookings/{booking['id']}/cancel", headers=buyer.headers
    )

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "event_started"
    assert (await stack.booking(booking["id"]))["status"] == "confirmed"
    assert await stack.outbox("refund_requested", booking_id=booking["id"]) == []


async def test_a_payment_after_the_event_started_is_refunded_not_confirmed(stack: Stack) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    async with stack.app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Booking)
            .where(Booking.id == booking["id"])
            .values(event_starts_at=utcnow() - timedelta(minutes=1))
        )

    assert await stack.settle(booking) == "refund_requested"

    assert (await stack.booking(booking["id"]))["status"] == "expired"
    [refund] = await stack.outbox("refund_requested", booking_id=booking["id"])
    assert refund["reason"] == "booking_not_pending"
    assert (await stack.seat_statuses(event_id))["vip-1-1"] == "available"


async def test_a_stranger_learns_nothing_of_a_started_events_booking(stack: Stack) -> None:
    """403 before 409: whether the booking is paid, or its event begun, stays private."""
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    await stack.settle(booking)
    await _event_has_started(stack, event_id)

    response = await stack.client.post(
        f"/api/bookings/{booking['id']}/cancel", headers=stack.actor().headers
    )

    assert response.status_code == 403, response.text


async def test_an_admin_may_still_cancel_after_the_start_when_an_event_is_called_off(
    stack: Stack,
) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    await stack.settle(booking)
    await _event_has_started(stack, event_id)

    response = await stack.client.post(
        f"/api/bookings/{booking['id']}/cancel", headers=stack.admin.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["refund_requested"] is True


async def test_an_unpaid_booking_can_still_be_let_go_after_the_start(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    booking = await stack.booked(buyer, event_id, ["vip-1-1"])
    await _event_has_started(stack, event_id)

    response = await stack.client.post(
        f"/api/bookings/{booking['id']}/cancel", headers=buyer.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["refund_requested"] is False
