"""Payment outcomes and event changes arriving the real way: as envelopes on the RabbitMQ
exchange."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractExchange
from sqlalchemy import select

from booking_service.models import Booking
from booking_service.tests.conftest import Stack
from ticketing_common.messaging.config import MessagingSettings
from ticketing_common.messaging.contracts import (
    EventChanged,
    Payload,
    PaymentFailed,
    PaymentSucceeded,
)
from ticketing_common.messaging.envelope import CONTENT_TYPE, draft_envelope, encode_envelope
from ticketing_common.messaging.topology import connect_publisher


@pytest.fixture
async def exchange(stack: Stack) -> AsyncIterator[AbstractExchange]:
    connection, exchange = await connect_publisher(
        stack.settings, MessagingSettings(), "test-payment-service"
    )
    try:
        yield exchange
    finally:
        await connection.close()


async def _send(exchange: AbstractExchange, routing_key: str, payload: Payload) -> str:
    """Publish as payment_service's relay would; returns the message id."""
    stored = draft_envelope(routing_key, payload)
    await _send_stored(exchange, routing_key, stored)
    return str(stored["message_id"])


async def _send_stored(exchange: AbstractExchange, routing_key: str, stored: Any) -> None:
    await exchange.publish(
        aio_pika.Message(
            encode_envelope(stored, "payment_service"),
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=stored["message_id"],
            type=routing_key,
        ),
        routing_key,
    )


async def _status_becomes(stack: Stack, booking_id: int, status: str) -> dict[str, Any]:
    for _ in range(150):
        booking = await stack.booking(booking_id)
        if booking["status"] == status:
            return booking
        await asyncio.sleep(0.1)
    raise AssertionError(f"booking {booking_id} is {booking['status']}, never {status}")


def _success(booking: dict[str, Any], tx_ref: str) -> PaymentSucceeded:
    return PaymentSucceeded(
        payment_id=booking["id"],
        booking_id=booking["id"],
        user_id=booking["user_id"],
        tx_ref=tx_ref,
        amount=Decimal(str(booking["total_amount"])),
        currency=booking["currency"],
        provider="simulated",
        paid_at=datetime.now(UTC),
    )


async def test_payment_success_on_the_broker_confirms_the_booking(
    stack: Stack, exchange: AbstractExchange
) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])

    await _send(exchange, "payment_success", _success(booking, f"tx-mq-{uuid.uuid4().hex}"))

    await _status_becomes(stack, booking["id"], "confirmed")
    assert (await stack.seat_statuses(event_id))["vip-1-1"] == "sold"


async def test_redelivered_payment_success_is_handled_once(
    stack: Stack, exchange: AbstractExchange
) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    stored = draft_envelope("payment_success", _success(booking, f"tx-mq-{uuid.uuid4().hex}"))

    await _send_stored(exchange, "payment_success", stored)
    await _status_becomes(stack, booking["id"], "confirmed")
    await _send_stored(exchange, "payment_success", stored)
    await asyncio.sleep(0.5)

    assert len(await stack.outbox("booking_confirmed", booking_id=booking["id"])) == 1
    assert await stack.outbox("refund_requested", booking_id=booking["id"]) == []


async def test_payment_failed_on_the_broker_frees_the_seats(
    stack: Stack, exchange: AbstractExchange
) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])

    await _send(
        exchange,
        "payment_failed",
        PaymentFailed(
            payment_id=booking["id"],
            booking_id=booking["id"],
            user_id=booking["user_id"],
            tx_ref=f"tx-mq-{uuid.uuid4().hex}",
            reason="declined",
        ),
    )

    await _status_becomes(stack, booking["id"], "failed")
    assert (await stack.seat_statuses(event_id))["vip-1-1"] == "available"


async def _stored_start_and_venue(
    stack: Stack, booking_id: int
) -> tuple[datetime | None, str | None]:
    async with stack.app.state.sessionmaker() as session:
        row = (
            await session.execute(
                select(Booking.event_starts_at, Booking.venue).where(Booking.id == booking_id)
            )
        ).one()
    return row[0], row[1]


async def test_an_event_change_moves_its_active_bookings_and_tells_each_holder_once(
    stack: Stack, exchange: AbstractExchange
) -> None:
    event_id = await stack.create_event()
    pending = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    confirmed = await stack.booked(stack.actor(), event_id, ["vip-1-2"])
    await stack.settle(confirmed)
    await _status_becomes(stack, confirmed["id"], "confirmed")
    cancelled = await stack.booked(stack.actor(), event_id, ["vip-1-3"])
    await stack.fail(cancelled)
    await _status_becomes(stack, cancelled["id"], "failed")
    old_date, old_venue = await _stored_start_and_venue(stack, pending["id"])
    assert old_date is not None
    assert old_venue is not None
    new_date = old_date + timedelta(days=7)
    change = EventChanged(
        event_id=event_id,
        organizer_id=1,  # not read by booking_service
        title="Moved Concert",
        old_date=old_date,
        new_date=new_date,
        old_venue=old_venue,
        new_venue="The Bigger Hall",
        changed_at=datetime.now(UTC),
    )
    stored = draft_envelope("event_changed", change)

    await _send_stored(exchange, "event_changed", stored)
    for _ in range(100):
        told = await stack.outbox("booking_event_changed", event_id=event_id)
        if len(told) == 2:
            break
        await asyncio.sleep(0.1)
    await _send_stored(exchange, "event_changed", stored)  # redelivered: nothing twice
    await asyncio.sleep(0.5)

    told = await stack.outbox("booking_event_changed", event_id=event_id)
    assert sorted((m["booking_id"], m["status"]) for m in told) == [
        (pending["id"], "pending"),
        (confirmed["id"], "confirmed"),
    ]
    assert {m["new_venue"] for m in told} == {"The Bigger Hall"}
    for booking in (pending, confirmed):
        starts_at, venue = await _stored_start_and_venue(stack, booking["id"])
        assert (starts_at, venue) == (new_date, "The Bigger Hall")
    assert await _stored_start_and_venue(stack, cancelled["id"]) == (old_date, old_venue)
