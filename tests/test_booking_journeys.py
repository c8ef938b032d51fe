"""Booking journeys through the gateway on the running test stack (HOLD_TTL_SECONDS=30)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Mailbox
from tests.support_auth import approved_organizer, bearer
from tests.support_booking import (
    booking_database,
    get_booking,
    new_buyer,
    post_booking,
    taken_seats,
    wait_for_booking_status,
)
from tests.support_events import create_event, seat_statuses, signed_headers, wait_for_seat_status
from tests.support_payment import (
    complete_checkout,
    initialize_payment,
    pay_booking,
    verify_payment,
    wait_for_payment_status,
)

pytestmark = pytest.mark.stack

HOLD_TTL_SECONDS = 30


async def test_retried_post_with_the_same_idempotency_key_returns_the_same_booking(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    buyer = await new_buyer(client, mailbox)
    event = await create_event(client, headers=signed_headers())
    key = str(uuid.uuid4())

    first = await post_booking(client, buyer, event["id"], ["vip-1-1", "vip-1-2"], key=key)
    retry = await post_booking(client, buyer, event["id"], ["vip-1-1", "vip-1-2"], key=key)

    assert first.status_code == 201, first.text
    assert retry.status_code == 201, retry.text
    assert retry.json()["booking"]["id"] == first.json()["booking"]["id"]
    mine = await client.get("/api/bookings/user?status=pending", headers=buyer.headers)
    assert mine.headers["X-Total-Count"] == "1"


async def test_two_posts_without_a_key_for_the_same_seats_give_one_booking_and_one_409(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    buyer = await new_buyer(client, mailbox)
    event = await create_event(client, headers=signed_headers())

    first = await post_booking(client, buyer, event["id"], ["vvip-1-1"])
    second = await post_booking(client, buyer, event["id"], ["vvip-1-1"])

    assert first.status_code == 201, first.text
    assert second.status_code == 409, second.text
    mine = await client.get("/api/bookings/user?status=all", headers=buyer.headers)
    assert mine.headers["X-Total-Count"] == "1"


async def test_booking_is_priced_by_the_server_per_seat_class(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    buyer = await new_buyer(client, mailbox)
    event = await create_event(
        client, headers=signed_headers(), price_normal="150.00", price_vip="400.00"
    )

    sent_cheap = await post_booking(client, buyer, event["id"], ["vip-1-1", "normal-1-1"], amount=1)
    honest = await post_booking(client, buyer, event["id"], ["vip-1-1", "normal-1-1"], amount=550)

    assert sent_cheap.status_code == 409, sent_cheap.text
    assert sent_cheap.json()["code"] == "amount_mismatch"
    assert honest.status_code == 201, honest.text
    assert honest.json()["booking"]["total_amount"] == 550


async def test_booked_then_paid_booking_is_confirmed_sold_and_ticketed(
    client: httpx.AsyncClient, new_client: Callable[[], httpx.AsyncClient], mailbox: Mailbox
) -> None:
    buyer = await new_buyer(client, mailbox)
    async with new_client() as organizer_client, new_client() as admin_client:
        organizer = await approved_organizer(organizer_client, mailbox, admin_client)
        event = await create_event(
            organizer_client, headers=bearer(organizer["access_token"]), seats_vip=4
        )
        created = await post_booking(client, buyer, event["id"], ["vip-1-1", "normal-1-2"])
        assert created.status_code == 201, created.text
        booking = created.json()["booking"]
        assert booking["status"] == "pending"
        assert booking["total_amount"] == 550
        assert (await taken_seats(client, buyer.headers, event["id"])) == {
            "vip-1-1": "locked",
            "normal-1-2": "locked",
        }

        await pay_booking(client, booking["id"], headers=buyer.headers)

        confirmed = await wait_for_booking_status(client, buyer, booking["id"], "confirmed")
        assert confirmed["confirmed_at"] is not None
        await wait_for_seat_status(client, event["id"], "vip-1-1", "sold")
        await wait_for_seat_status(client, event["id"], "normal-1-2", "sold")
        assert (await taken_seats(client, buyer.headers, event["id"])) == {
            "vip-1-1": "sold",
            "normal-1-2": "sold",
        }
        [ticket] = await mailbox.wait_for(buyer.email, "Your ticket", timeout=60)
        assert [a.get_content_type() for a in ticket.iter_attachments()] == ["application/pdf"]
        # The organizer sees the sale; the booking is theirs to read.
        sales = await organizer_client.get(
            f"/api/bookings/organizer/sales/{event['id']}",
            headers=bearer(organizer["access_token"]),
        )
        assert [s["id"] for s in sales.json()["sales"]] == [booking["id"]]


async def test_hold_expiring_before_payment_expires_the_booking_and_refunds_the_late_payment(
    client: httpx.AsyncClient, new_client: Callable[[], httpx.AsyncClient], mailbox: Mailbox
) -> None:
    late_payer = await new_buyer(client, mailbox)
    event = await create_event(client, headers=signed_headers())
    created = await post_booking(client, late_payer, event["id"], ["vip-1-1"])
    assert created.status_code == 201, created.text
    booking = created.json()["booking"]
    checkout = await initialize_payment(client, booking["id"], headers=late_payer.headers)

    await wait_for_booking_status(
        client, late_payer, booking["id"], "expired", timeout=HOLD_TTL_SECONDS + 15
    )
    assert (await seat_statuses(client, event["id"]))["vip-1-1"] == "available"
    async with new_client() as other_client:
        other = await new_buyer(other_client, mailbox)
        taken_over = await post_booking(other_client, other, event["id"], ["vip-1-1"])
        assert taken_over.status_code == 201, taken_over.text

        # The late payer finally presses Pay on the checkout opened before the expiry.
        await complete_checkout(client, checkout["checkout_url"])
        payment = await verify_payment(client, checkout["tx_ref"], headers=late_payer.headers)
        assert payment["status"] in ("success", "refunded")

        await wait_for_payment_status(
            client, checkout["tx_ref"], "refunded", headers=late_payer.headers, timeout=30
        )
        assert (await get_booking(client, late_payer.headers, booking["id"]))["status"] == "expired"
        async with booking_database() as db:
            reason = await db.fetchval(
                "SELECT reason FROM booking_refunds WHERE tx_ref = $1", checkout["tx_ref"]
            )
        assert reason == "booking_not_pending"
        # The seat is the other buyer's, held for them, not sold to the late payer.
        assert (await seat_statuses(client, event["id"]))["vip-1-1"] == "held"
        other_booking = await get_booking(
            other_client, other.headers, taken_over.json()["booking"]["id"]
        )
        assert other_booking["status"] == "pending"


async def test_cancelling_a_pending_booking_frees_its_seats_at_once(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    buyer = await new_buyer(client, mailbox)
    event = await create_event(client, headers=signed_headers())
    booking = (await post_booking(client, buyer, event["id"], ["vip-1-5"])).json()["booking"]

    response = await client.post(f"/api/bookings/{booking['id']}/cancel", headers=buyer.headers)

    assert response.status_code == 200, response.text
    assert response.json()["booking"]["status"] == "cancelled"
    assert (await seat_statuses(client, event["id"]))["vip-1-5"] == "available"
    assert await taken_seats(client, buyer.headers, event["id"]) == {}


async def test_an_organizer_cannot_read_another_organizers_sales(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    owner, rival = signed_headers(), signed_headers()
    event = await create_event(client, headers=owner)
    buyer = await new_buyer(client, mailbox)
    booking = (await post_booking(client, buyer, event["id"], ["vip-1-1"])).json()["booking"]

    sales = await client.get(f"/api/bookings/organizer/sales/{event['id']}", headers=rival)
    read = await client.get(f"/api/bookings/{booking['id']}", headers=rival)
    own = await client.get(f"/api/bookings/{booking['id']}", headers=owner)

    assert sales.status_code == 403
    assert read.status_code == 403
    assert own.status_code == 200
