"""booking_confirmed and booking_cancelled as event_service consumes them."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aio_pika
import pytest
from sqlalchemy import text

from event_service.consumers import on_booking_cancelled, on_booking_confirmed
from event_service.tests.conftest import Service
from ticketing_common.messaging import Envelope, MessageContext, PermanentFailure
from ticketing_common.messaging.contracts import (
    BookedSeat,
    BookingCancelled,
    BookingConfirmed,
    Payload,
)
from ticketing_common.messaging.envelope import draft_envelope, encode_envelope


def confirmed(event_id: int, booking_id: int, token: str, *seat_ids: str) -> BookingConfirmed:
    seats = []
    for seat_id in seat_ids:
        ticket_class, row, number = seat_id.split("-")
        seats.append(
            BookedSeat(
                seat_id=seat_id,
                ticket_class=ticket_class,
                row=int(row),
                number=int(number),
                price=Decimal("400.00"),
            )
        )
    return BookingConfirmed(
        booking_id=booking_id,
        user_id=9,
        event_id=event_id,
        hold_token=token,
        seats=seats,
        total_amount=Decimal("400.00") * len(seats),
        currency="ETB",
        confirmed_at=datetime.now(UTC),
    )


def cancelled(
    event_id: int, booking_id: int, token: str, previous: str, *seat_ids: str
) -> BookingCancelled:
    return BookingCancelled(
        booking_id=booking_id,
        user_id=9,
        event_id=event_id,
        hold_token=token,
        seat_ids=list(seat_ids),
        previous_status=previous,
        reason="cancelled",
    )


async def deliver(service: Service, handler: Any, routing_key: str, payload: Payload) -> None:
    """Run a handler as the consumer does: in one transaction, committed when it returns."""
    envelope = Envelope(
        message_id=uuid.uuid4(),
        type=routing_key,
        occurred_at=datetime.now(UTC),
        producer="booking_service",
        payload=payload.model_dump(mode="json"),
    )
    async with service.app.state.sessionmaker() as session, session.begin():
        context = MessageContext(
            session=session,
            envelope=envelope,
            app=service.app,
            queue=f"event_service.{routing_key}",
            attempt=1,
        )
        await handler(context, payload)


async def sold_counters(service: Service) -> dict[str, int]:
    response = await service.client.get("/api/events/my", headers=service.organizer())
    event = response.json()[0]
    return {c: event[f"sold_{c}"] for c in ("normal", "vip", "vvip")}


async def test_booking_confirmed_marks_seats_sold_once_even_when_redelivered(
    gate: Service,
) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="tok", seat_ids=["vip-1-1", "vip-1-2"])
    message = confirmed(event["id"], 31, "tok", "vip-1-1", "vip-1-2")

    await deliver(gate, on_booking_confirmed, "booking_confirmed", message)
    await deliver(gate, on_booking_confirmed, "booking_confirmed", message)

    assert await sold_counters(gate) == {"normal": 0, "vip": 2, "vvip": 0}
    statuses = await gate.seat_statuses(event["id"])
    assert statuses["vip-1-1"] == statuses["vip-1-2"] == "sold"
    confirm = await gate.confirm(event["id"], "tok", booking_id=31)
    assert confirm.status_code == 200  # the token counts as confirmed


async def test_booking_confirmed_after_the_confirm_call_changes_nothing(gate: Service) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="tok", seat_ids=["vip-1-1"])
    await gate.confirm(event["id"], "tok", booking_id=32)

    await deliver(
        gate,
        on_booking_confirmed,
        "booking_confirmed",
        confirmed(event["id"], 32, "tok", "vip-1-1"),
    )

    assert await sold_counters(gate) == {"normal": 0, "vip": 1, "vvip": 0}


async def test_booking_confirmed_takes_seats_back_from_an_expired_hold(gate: Service) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="gone", seat_ids=["vvip-1-1"], ttl_seconds=1)
    await asyncio.sleep(1.1)
    await gate.hold(event["id"], token="newcomer", seat_ids=["vvip-1-1"])

    await deliver(
        gate,
        on_booking_confirmed,
        "booking_confirmed",
        confirmed(event["id"], 33, "gone", "vvip-1-1"),
    )

    assert (await gate.seat_statuses(event["id"]))["vvip-1-1"] == "sold"
    assert (await gate.confirm(event["id"], "newcomer", booking_id=34)).status_code == 409


async def test_booking_confirmed_for_a_seat_sold_to_another_booking_is_dead_lettered(
    gate: Service,
) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="first", seat_ids=["vip-1-1"])
    await gate.confirm(event["id"], "first", booking_id=35)

    with pytest.raises(PermanentFailure):
        await deliver(
            gate,
            on_booking_confirmed,
            "booking_confirmed",
            confirmed(event["id"], 36, "second", "vip-1-1"),
        )

    assert await sold_counters(gate) == {"normal": 0, "vip": 1, "vvip": 0}


async def test_booking_cancelled_while_pending_releases_the_hold(gate: Service) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="tok", ticket_class="vip", count=3)

    await deliver(
        gate,
        on_booking_cancelled,
        "booking_cancelled",
        cancelled(event["id"], 37, "tok", "pending"),
    )

    assert (await gate.event(event["id"]))["available_vip"] == 10


async def test_booking_cancelled_after_confirmation_puts_the_seats_back_on_sale(
    gate: Service,
) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="tok", seat_ids=["vip-1-1", "vip-1-2"])
    await gate.confirm(event["id"], "tok", booking_id=38)
    late_confirmation = confirmed(event["id"], 38, "tok", "vip-1-1", "vip-1-2")

    message = cancelled(event["id"], 38, "tok", "confirmed", "vip-1-1", "vip-1-2")
    await deliver(gate, on_booking_cancelled, "booking_cancelled", message)
    await deliver(gate, on_booking_cancelled, "booking_cancelled", message)
    await deliver(gate, on_booking_confirmed, "booking_confirmed", late_confirmation)

    assert await sold_counters(gate) == {"normal": 0, "vip": 0, "vvip": 0}
    assert (await gate.event(event["id"]))["available_vip"] == 10
    assert (await gate.hold(event["id"], token="next", seat_ids=["vip-1-1"])).status_code == 201
    assert (await gate.confirm(event["id"], "tok", booking_id=38)).status_code == 409


async def test_a_released_booking_cannot_buy_seats_again_under_a_new_hold(
    gate: Service,
) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="tok-a", seat_ids=["vip-1-1"])
    await gate.confirm(event["id"], "tok-a", booking_id=40)
    message = cancelled(event["id"], 40, "tok-a", "confirmed", "vip-1-1")
    await deliver(gate, on_booking_cancelled, "booking_cancelled", message)
    await gate.hold(event["id"], token="tok-b", seat_ids=["vip-1-1"])

    refused = await gate.confirm(event["id"], "tok-b", booking_id=40)

    assert refused.status_code == 409
    assert refused.json()["code"] == "booking_released"
    assert await sold_counters(gate) == {"normal": 0, "vip": 0, "vvip": 0}
    assert (await gate.seat_statuses(event["id"]))["vip-1-1"] == "held"


async def test_a_sale_beyond_a_class_capacity_is_refused_whole(gate: Service) -> None:
    event = await gate.create_event(seats_vip=2)
    await gate.hold(event["id"], token="tok", seat_ids=["vip-1-1", "vip-1-2"])
    # The counters say the class is sold out (a sale the gate does not know of).
    async with gate.app.state.sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE events SET sold_vip = 1 WHERE id = :id"), {"id": event["id"]}
        )

    refused = await gate.confirm(event["id"], "tok", booking_id=41)

    assert refused.status_code == 409
    assert refused.json()["code"] == "seats_unavailable"
    assert await sold_counters(gate) == {"normal": 0, "vip": 1, "vvip": 0}
    statuses = await gate.seat_statuses(event["id"])
    assert statuses["vip-1-1"] == statuses["vip-1-2"] == "held"


async def test_a_sale_the_gate_made_but_postgres_never_recorded_is_undone_on_release(
    gate: Service,
) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="tok", seat_ids=["vip-1-1"])
    # The gate confirms, then the transaction that records the sale fails to commit.
    await gate.app.state.event_resources.gate.confirm(event["id"], "tok")
    assert (await gate.seat_statuses(event["id"]))["vip-1-1"] == "sold"

    assert (await gate.release(event["id"], "tok")).status_code == 204

    assert (await gate.seat_statuses(event["id"]))["vip-1-1"] == "available"


async def test_a_cancellation_published_on_rabbitmq_reaches_the_seat_gate(
    gate: Service,
) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="tok", seat_ids=["vip-1-1"])
    await gate.confirm(event["id"], "tok", booking_id=39)
    message = cancelled(event["id"], 39, "tok", "confirmed", "vip-1-1")
    body = encode_envelope(draft_envelope("booking_cancelled", message), "booking_service")

    connection = await aio_pika.connect(gate.settings.rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(gate.settings.rabbitmq_exchange)
        await exchange.publish(
            aio_pika.Message(body, content_type="application/json"),
            routing_key="booking_cancelled",
        )

    deadline = time.monotonic() + 20
    while (await gate.seat_statuses(event["id"]))["vip-1-1"] != "available":
        assert time.monotonic() < deadline, "the cancellation never reached event_service"
        await asyncio.sleep(0.1)
    assert await sold_counters(gate) == {"normal": 0, "vip": 0, "vvip": 0}


async def _publish(service: Service, routing_key: str, payload: Payload) -> uuid.UUID:
    envelope = draft_envelope(routing_key, payload)
    body = encode_envelope(envelope, "booking_service")
    connection = await aio_pika.connect(service.settings.rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(service.settings.rabbitmq_exchange)
        await exchange.publish(
            aio_pika.Message(body, content_type="application/json"), routing_key=routing_key
        )
    return uuid.UUID(str(envelope["message_id"]))


async def _wait_recorded(service: Service, message_id: uuid.UUID) -> None:
    deadline = time.monotonic() + 20
    while True:
        async with service.app.state.sessionmaker() as session:
            found = await session.scalar(
                text("SELECT count(*) FROM inbox_messages WHERE message_id = :id"),
                {"id": message_id},
            )
        if found:
            return
        assert time.monotonic() < deadline, "the message never reached event_service"
        await asyncio.sleep(0.1)


async def test_a_confirmation_on_rabbitmq_is_checked_in_one_statement_or_repaired(
    gate: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the real consumer: after the confirm call the message finds the sale
    recorded (one statement: no repair); without it, the repair sells the seats."""
    event = await gate.create_event()
    await gate.hold(event["id"], token="tok-a", seat_ids=["vip-1-1"])
    await gate.confirm(event["id"], "tok-a", booking_id=51)
    await gate.hold(event["id"], token="tok-b", seat_ids=["vip-1-2", "vip-1-3"])

    recorded = await _publish(
        gate, "booking_confirmed", confirmed(event["id"], 51, "tok-a", "vip-1-1")
    )
    await _wait_recorded(gate, recorded)
    assert "selling now" not in caplog.text

    unrecorded = await _publish(
        gate, "booking_confirmed", confirmed(event["id"], 52, "tok-b", "vip-1-2", "vip-1-3")
    )
    await _wait_recorded(gate, unrecorded)
    assert "selling now" in caplog.text
    statuses = await gate.seat_statuses(event["id"])
    assert statuses["vip-1-1"] == statuses["vip-1-2"] == statuses["vip-1-3"] == "sold"
    assert await sold_counters(gate) == {"normal": 0, "vip": 3, "vvip": 0}
