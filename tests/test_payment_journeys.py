"""Payments through the gateway of the running test stack, with every service real.

Where a test must see "exactly one" of something, it reads the outbox of the service that
wrote it: an event exists once its producer's transaction committed it there.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import TEST_STACK, Mailbox, gateway_client
from tests.support_auth import approved_organizer, bearer
from tests.support_booking import Buyer, new_buyer, post_booking, wait_for_booking_status
from tests.support_events import create_event
from tests.support_payment import (
    initialize_payment,
    pay_booking,
    signed_callback,
    wait_for_payment_status,
)

pytestmark = pytest.mark.stack

_seat_numbers = itertools.count(1)


def _database_url(service: str) -> str:
    return f"postgresql+asyncpg://ticketing:ticketing@127.0.0.1:5432/{TEST_STACK.database(service)}"


@pytest.fixture(scope="module")
async def databases() -> AsyncIterator[dict[str, AsyncEngine]]:
    engines = {
        name: create_async_engine(_database_url(name), pool_size=2)
        for name in ("payment_service", "booking_service")
    }
    yield engines
    for engine in engines.values():
        await engine.dispose()


@pytest.fixture(scope="module")
async def event(mailbox: Mailbox) -> dict[str, Any]:
    async with gateway_client() as client, gateway_client() as admin_client:
        organizer = await approved_organizer(client, mailbox, admin_client)
        return await create_event(
            client, headers=bearer(organizer["access_token"]), price_vip="450.50"
        )


@pytest.fixture
async def buyer(client: httpx.AsyncClient, mailbox: Mailbox) -> Buyer:
    """A signed-up buyer whose token the ``client`` carries from now on."""
    account = await new_buyer(client, mailbox)
    client.headers.update(account.headers)
    return account


async def _pending_booking(
    client: httpx.AsyncClient, buyer: Buyer, event: dict[str, Any]
) -> dict[str, Any]:
    """A pending booking of one normal and one VIP seat: 150.00 + 450.50."""
    seat = next(_seat_numbers)
    row, number = divmod(seat - 1, 10)
    seats = [f"normal-{row + 1}-{number + 1}", f"vip-1-{seat}"]
    response = await post_booking(client, buyer, event["id"], seats)
    assert response.status_code == 201, response.text
    booking: dict[str, Any] = response.json()["booking"]
    return booking


async def _outbox_count(engine: AsyncEngine, routing_key: str, field: str, value: object) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            text(
                "SELECT count(*) FROM outbox_messages WHERE routing_key = :key "
                "AND envelope -> 'payload' ->> :field = :value"
            ),
            {"key": routing_key, "field": field, "value": str(value)},
        )
    return int(count or 0)


async def _provider_marks_paid(engine: AsyncEngine, tx_ref: str) -> None:
    """The buyer paid at the provider; its callback has not reached payment_service yet."""
    async with engine.begin() as conn:
        updated = await conn.execute(
            text(
                "UPDATE simulated_provider_transactions SET status = 'success', "
                "completed_at = now() WHERE tx_ref = :tx_ref AND status = 'pending'"
            ),
            {"tx_ref": tx_ref},
        )
    assert updated.rowcount == 1


async def _payment_status(engine: AsyncEngine, tx_ref: str) -> str:
    async with engine.connect() as conn:
        status = await conn.scalar(
            text("SELECT status FROM payments WHERE tx_ref = :t"), {"t": tx_ref}
        )
    return str(status)


async def test_paying_on_the_hosted_checkout_confirms_the_booking(
    client: httpx.AsyncClient, buyer: Buyer, event: dict[str, Any]
) -> None:
    booking = await _pending_booking(client, buyer, event)

    payment = await pay_booking(client, booking["id"])

    assert Decimal(payment["amount"]) == Decimal(booking["total_amount"]) == Decimal("600.50")
    confirmed = await wait_for_booking_status(client, buyer, booking["id"], "confirmed")
    assert confirmed["confirmed_at"] is not None


async def test_five_verifies_and_the_webhook_confirm_the_booking_exactly_once(
    client: httpx.AsyncClient,
    buyer: Buyer,
    event: dict[str, Any],
    databases: dict[str, AsyncEngine],
) -> None:
    booking = await _pending_booking(client, buyer, event)
    checkout = await initialize_payment(client, booking["id"])
    tx_ref = checkout["tx_ref"]
    await _provider_marks_paid(databases["payment_service"], tx_ref)
    body, headers = signed_callback(tx_ref)

    responses = await asyncio.gather(
        *(client.get(f"/api/payments/verify/{tx_ref}") for _ in range(5)),
        client.post("/api/payments/callback", content=body, headers=headers),
    )

    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    assert {r.json()["payment"]["status"] for r in responses[:5]} == {"success"}
    assert responses[5].json()["status"] == "success"
    await wait_for_booking_status(client, buyer, booking["id"], "confirmed")
    payments_db, bookings_db = databases["payment_service"], databases["booking_service"]
    assert await _outbox_count(payments_db, "payment_success", "tx_ref", tx_ref) == 1
    assert await _outbox_count(bookings_db, "booking_confirmed", "booking_id", booking["id"]) == 1
    assert await _outbox_count(bookings_db, "refund_requested", "booking_id", booking["id"]) == 0


async def test_a_forged_or_stale_callback_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
    buyer: Buyer,
    event: dict[str, Any],
    databases: dict[str, AsyncEngine],
) -> None:
    booking = await _pending_booking(client, buyer, event)
    tx_ref = (await initialize_payment(client, booking["id"]))["tx_ref"]
    await _provider_marks_paid(databases["payment_service"], tx_ref)
    forged_body, forged = signed_callback(tx_ref, secret="guessed-secret")
    stale_body, stale = signed_callback(tx_ref, timestamp=int(time.time()) - 3600)

    bad_signature = await client.post("/api/payments/callback", content=forged_body, headers=forged)
    old_timestamp = await client.post("/api/payments/callback", content=stale_body, headers=stale)

    assert bad_signature.status_code == 401
    assert old_timestamp.status_code == 401
    assert await _payment_status(databases["payment_service"], tx_ref) == "pending"
    assert (
        await _outbox_count(databases["payment_service"], "payment_success", "tx_ref", tx_ref) == 0
    )
    still = await client.get(f"/api/bookings/{booking['id']}")
    assert still.json()["booking"]["status"] == "pending"


async def test_nobody_pays_for_or_verifies_someone_elses_booking(
    client: httpx.AsyncClient,
    buyer: Buyer,
    event: dict[str, Any],
    mailbox: Mailbox,
) -> None:
    booking = await _pending_booking(client, buyer, event)
    async with gateway_client() as other:
        stranger = await new_buyer(other, mailbox)
        refused = await other.post(
            "/api/payments/initialize",
            json={"booking_id": booking["id"]},
            headers=stranger.headers,
        )
        underpaid = await client.post(
            "/api/payments/initialize", json={"booking_id": booking["id"], "amount": 0.01}
        )
        opened = await client.post("/api/payments/initialize", json={"booking_id": booking["id"]})
        peeked = await other.get(
            f"/api/payments/verify/{opened.json()['tx_ref']}", headers=stranger.headers
        )

    assert refused.status_code == 403
    assert underpaid.status_code == 409
    assert underpaid.json()["code"] == "amount_mismatch"
    assert peeked.status_code == 403
    assert opened.status_code == 200
    mine = await client.get(f"/api/payments/verify/{opened.json()['tx_ref']}")
    assert Decimal(mine.json()["payment"]["amount"]) == Decimal(booking["total_amount"])


async def test_declining_on_the_checkout_fails_the_booking(
    client: httpx.AsyncClient, buyer: Buyer, event: dict[str, Any]
) -> None:
    booking = await _pending_booking(client, buyer, event)

    payment = await pay_booking(client, booking["id"], outcome="failed")

    assert payment["status"] == "failed"
    await wait_for_booking_status(client, buyer, booking["id"], "failed")


async def test_cancelling_a_paid_booking_refunds_the_payment(
    client: httpx.AsyncClient, buyer: Buyer, event: dict[str, Any]
) -> None:
    booking = await _pending_booking(client, buyer, event)
    payment = await pay_booking(client, booking["id"])
    await wait_for_booking_status(client, buyer, booking["id"], "confirmed")

    cancelled = await client.post(f"/api/bookings/{booking['id']}/cancel")

    assert cancelled.status_code == 200, cancelled.text
    refunded = await wait_for_payment_status(client, payment["tx_ref"], "refunded")
    assert refunded["refunded_at"] is not None
    assert refunded["refund_reference"]
