"""payment_service's own record of the bookings it may charge, kept from booking_service's
messages: initialize asks no other service, and no connection waits on one that it asks."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from cachetools import TTLCache
from fastapi import FastAPI
from sqlalchemy import text

from payment_service import payable_bookings
from payment_service.providers import CheckoutRequest, CheckoutSession
from payment_service.tests.conftest import (
    BOOKING_HOST,
    EVENT_HOST,
    Payments,
    PaymentsFactory,
)
from ticketing_common.db import utcnow
from ticketing_common.messaging import publish
from ticketing_common.messaging.contracts import BookedSeat, BookingCancelled, BookingCreated
from ticketing_common.testing import InProcessNetwork, route_internal_calls


async def _lookups(payments: Payments, source: str) -> float:
    metrics = (await payments.client.get("/metrics")).text
    prefix = f'payment_booking_lookups_total{{source="{source}"}} '
    values = [
        float(line[len(prefix) :]) for line in metrics.splitlines() if line.startswith(prefix)
    ]
    return values[0] if values else 0.0


async def _ledger_title(payments: Payments, tx_ref: str) -> str:
    async with payments.payment_engine.connect() as conn:
        title = await conn.scalar(
            text("SELECT title FROM simulated_provider_transactions WHERE tx_ref = :t"),
            {"t": tx_ref},
        )
    return str(title)


async def test_initialize_of_an_announced_booking_asks_no_other_service(
    payments: Payments,
) -> None:
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer)
    before = await _lookups(payments, "record")

    first = await payments.initialize(buyer, booking_id)
    again = await payments.initialize(buyer, booking_id)

    assert first.status_code == again.status_code == 200
    assert payments.network.sent == []
    assert await _lookups(payments, "record") - before == 2


async def test_the_record_keeps_what_the_checkout_needs(simulated: Payments) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer, prices=("150.00", "250.50"), currency="USD")

    record = await simulated.payable_booking(booking_id)

    assert record is not None
    assert record.status == "pending"
    assert record.user_id == buyer.user_id
    assert record.amount == Decimal("400.50")
    assert record.currency == "USD"
    assert record.event_title == "Tizita Night"
    assert record.buyer_email == buyer.email
    assert record.description == (
        f"Booking #{booking_id}: 2 tickets (VIP row 1 seat 1, VIP row 1 seat 2)"
    )


async def test_a_booking_not_yet_announced_is_asked_of_booking_service_once_and_kept(
    payments: Payments,
) -> None:
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer, announced=False)
    before = await _lookups(payments, "fetched")

    first = await payments.initialize(buyer, booking_id)
    await payments.announce(booking_id)  # the message arrives after all
    again = await payments.initialize(buyer, booking_id)

    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert payments.network.sent == [f"GET /internal/bookings/{booking_id}"]
    assert await _lookups(payments, "fetched") - before == 1
    record = await payments.payable_booking(booking_id)
    assert record is not None
    assert record.status == "pending"
    assert record.amount == Decimal("400.50")
    assert record.event_title == "Tizita Night"


async def test_a_booking_fetched_when_no_longer_pending_is_kept_closed(simulated: Payments) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer, status="cancelled")

    first = await simulated.initialize(buyer, booking_id)
    again = await simulated.initialize(buyer, booking_id)

    assert first.status_code == again.status_code == 409
    assert again.json()["code"] == "booking_not_payable"
    assert simulated.network.sent == [f"GET /internal/bookings/{booking_id}"]


async def test_a_booking_cancelled_after_it_was_created_cannot_be_paid(simulated: Payments) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer)

    await simulated.cancel_booking(booking_id, reason="expired")
    response = await simulated.initialize(buyer, booking_id)

    assert response.status_code == 409
    assert response.json()["code"] == "booking_not_payable"
    assert simulated.network.sent == []
    assert await simulated.count("payments") == 0


async def test_a_cancellation_that_overtakes_its_creation_still_closes_the_booking(
    simulated: Payments,
) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer, announced=False)

    await simulated.cancel_booking(booking_id)
    await simulated.announce(booking_id)
    response = await simulated.initialize(buyer, booking_id)

    assert response.status_code == 409
    assert response.json()["code"] == "booking_not_payable"
    assert simulated.network.sent == []
    record = await simulated.payable_booking(booking_id)
    assert record is not None
    assert record.status == "closed"


async def test_a_booking_cancelled_with_its_checkout_open_cannot_be_paid_again(
    simulated: Payments,
) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer)
    assert (await simulated.initialize(buyer, booking_id)).status_code == 200

    await simulated.cancel_booking(booking_id, reason="payment_failed")
    response = await simulated.initialize(buyer, booking_id)

    assert response.status_code == 409
    assert response.json()["code"] == "booking_not_payable"


async def test_a_booking_fetched_then_cancelled_is_closed(simulated: Payments) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer, announced=False)
    assert (await simulated.initialize(buyer, booking_id)).status_code == 200

    await simulated.cancel_booking(booking_id)

    record = await simulated.payable_booking(booking_id)
    assert record is not None
    assert record.status == "closed"


async def test_cancelling_a_confirmed_booking_leaves_its_record_alone(simulated: Payments) -> None:
    """Its money goes back through ``refund_requested``; the record has nothing to add."""
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer)

    await simulated.cancel_booking(
        booking_id, previous_status="confirmed", reason="cancelled", refund_requested=True
    )

    record = await simulated.payable_booking(booking_id)
    assert record is not None
    assert record.status == "pending"


async def test_a_second_booking_created_for_a_booking_changes_nothing(simulated: Payments) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer, prices=("100.00",))
    async with simulated.booking_engine.begin() as conn:  # a copy with another amount
        await conn.execute(
            text("UPDATE bookings SET total_amount = 1 WHERE id = :id"), {"id": booking_id}
        )

    await simulated.announce(booking_id)

    record = await simulated.payable_booking(booking_id)
    assert record is not None
    assert record.amount == Decimal("100.00")


def _event_service(titles: dict[int, str]) -> FastAPI:
    """event_service's ``GET /internal/events/{id}``, for the titles given."""
    app = FastAPI()

    @app.get("/internal/events/{event_id}")
    async def event(event_id: int) -> dict[str, Any]:
        now = utcnow().isoformat()
        return {
            "id": event_id,
            "organizer_id": 99,
            "title": titles[event_id],
            "description": "",
            "date": now,
            "location": "Addis Ababa",
            "currency": "ETB",
            "seats_per_row": 10,
            **{f"price_{c}": "100.00" for c in ("normal", "vip", "vvip")},
            **{f"{k}_{c}": 10 for k in ("seats", "available") for c in ("normal", "vip", "vvip")},
            "created_at": now,
            "updated_at": now,
        }

    return app


async def test_an_old_booking_takes_its_title_from_event_service_once_a_minute(
    simulated: Payments, booking_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bookings made before bookings kept their event's title."""
    monkeypatch.setattr(payable_bookings, "_TITLES", TTLCache(maxsize=16, ttl=60))
    network = InProcessNetwork(
        {BOOKING_HOST: booking_app, EVENT_HOST: _event_service({424242: "የሙዚቃ ኮንሰርት"})},
        raise_app_exceptions=True,
    )
    await route_internal_calls(simulated.app, network)
    buyer = simulated.buyer()
    old = [
        await simulated.booking(buyer, event_id=424242, row=row, event_title=None, announced=False)
        for row in (1, 2)
    ]

    tx_refs = [await simulated.open_checkout(buyer, booking_id) for booking_id in old]

    assert [await _ledger_title(simulated, t) for t in tx_refs] == ["የሙዚቃ ኮንሰርት"] * 2
    assert network.sent.count("GET /internal/events/424242") == 1


async def test_an_old_booking_opens_its_checkout_without_event_service(
    simulated: Payments,
) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer, event_id=5150, event_title=None, announced=False)

    tx_ref = await simulated.open_checkout(buyer, booking_id)

    assert await _ledger_title(simulated, tx_ref) == "Event #5150"


# No pooled connection waits on another system


async def test_no_pooled_connection_waits_while_the_provider_opens_a_checkout(
    payments_factory: PaymentsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with payments_factory(db_pool_size=1, db_max_overflow=0) as p:
        buyer = p.buyer()
        open_booking = await p.booking(buyer)
        opened = await p.open_checkout(buyer, open_booking)
        slow_booking = await p.booking(buyer, row=2)
        provider = p.app.state.payment_provider
        asked, answer = asyncio.Event(), asyncio.Event()
        initialize = provider.initialize

        async def slow_provider(request: CheckoutRequest) -> CheckoutSession:
            asked.set()
            await answer.wait()
            checkout: CheckoutSession = await initialize(request)
            return checkout

        monkeypatch.setattr(provider, "initialize", slow_provider)
        waiting = asyncio.create_task(p.initialize(buyer, slow_booking))
        await asyncio.wait_for(asked.wait(), 10)

        # The only connection of each pool is free while the provider thinks.
        async with asyncio.timeout(10):
            again = await p.initialize(buyer, open_booking)
            verified = await p.verify(buyer, opened)
        answer.set()
        assert again.json()["tx_ref"] == opened
        assert verified.status_code == 200
        assert (await waiting).status_code == 200


async def test_no_pooled_connection_waits_while_booking_service_answers(
    payments_factory: PaymentsFactory, booking_app: FastAPI
) -> None:
    async with payments_factory(db_pool_size=1, db_max_overflow=0) as p:
        buyer = p.buyer()
        open_booking = await p.booking(buyer)
        opened = await p.open_checkout(buyer, open_booking)
        late_booking = await p.booking(buyer, row=2, announced=False)
        held = asyncio.Event()
        network = InProcessNetwork({BOOKING_HOST: booking_app}, held, raise_app_exceptions=True)
        await route_internal_calls(p.app, network)
        waiting = asyncio.create_task(p.initialize(buyer, late_booking))
        async with asyncio.timeout(10):
            while network.held_now == 0:
                await asyncio.sleep(0.01)

        async with asyncio.timeout(10):
            again = await p.initialize(buyer, open_booking)
            verified = await p.verify(buyer, opened)
        held.set()
        assert again.json()["tx_ref"] == opened
        assert verified.status_code == 200
        assert (await waiting).status_code == 200


# The record is written with the message's inbox row, in one statement


def _created(booking_id: int, **changes: object) -> BookingCreated:
    now = utcnow()
    seat = BookedSeat(seat_id="vip-1-1", ticket_class="vip", row=1, number=1, price=Decimal(10))
    fields: dict[str, object] = {
        "booking_id": booking_id,
        "user_id": 1,
        "event_id": 7,
        "organizer_id": 99,
        "event_title": "Tizita Night",
        "event_starts_at": now,
        "venue": "Millennium Hall",
        "seats": [seat],
        "total_amount": Decimal(10),
        "currency": "ETB",
        "expires_at": now,
        "created_at": now,
    }
    return BookingCreated.model_validate({**fields, **changes})


async def _retried(payments: Payments) -> float:
    metrics = (await payments.client.get("/metrics")).text
    for line in metrics.splitlines():
        if line.startswith("messages_consumed_total{") and all(
            part in line for part in ('outcome="retried"', "booking_created")
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _inbox_rows(payments: Payments) -> int:
    async with payments.payment_engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM inbox_messages")) or 0)


async def test_a_record_that_cannot_be_written_leaves_no_inbox_row(simulated: Payments) -> None:
    # An amount past the column's precision fails the statement: the inbox row goes with
    # it, so the message is retried (and, failing again, parked), never skipped as handled.
    inbox_before, retried_before = await _inbox_rows(simulated), await _retried(simulated)
    async with simulated.app.state.sessionmaker() as session, session.begin():
        await publish(session, "booking_created", _created(4242, total_amount=Decimal("1e20")))
    async with asyncio.timeout(15):
        while await _retried(simulated) == retried_before:
            await asyncio.sleep(0.05)
    await simulated.send("booking_created", _created(4243))

    assert await simulated.payable_booking(4242) is None
    record = await simulated.payable_booking(4243)
    assert record is not None
    assert record.status == "pending"
    assert record.description == "Booking #4243: 1 ticket (VIP row 1 seat 1)"
    assert await _inbox_rows(simulated) == inbox_before + 1


async def test_a_cancellation_of_a_confirmed_booking_writes_no_tombstone(
    simulated: Payments,
) -> None:
    # (its money goes back through refund_requested; nothing here may close or create)
    await simulated.send(
        "booking_cancelled",
        BookingCancelled(
            booking_id=4244,
            user_id=1,
            event_id=7,
            hold_token="h-4244",
            seat_ids=["vip-1-1"],
            previous_status="confirmed",
            reason="cancelled",
        ),
    )
    assert await simulated.payable_booking(4244) is None
