"""ORIGINAL_API.md, bookings (``/api/bookings``): the original's requests, replayed
through the gateway of the test stack, answered with its fields and JSON types.

One sale sets the scene (module fixture): an approved organizer's event, a buyer who books
two seats the way the original's front end does (``{event_id, seat_count, amount, seats}``
with ``seats`` as ``[{id, row, number, price}]``) and pays for them, then books one more
seat the way the original's Postman collection does (``{event_id, seat_count, amount}``)
and leaves it unpaid. Each test then reads one row of the table. Tokens go without the
``Bearer`` prefix where the original's clients send them bare.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Mailbox, gateway_client
from tests.contract.shapes import NUMBER, assert_shape
from tests.support_auth import admin_token, approved_organizer, bare, bearer
from tests.support_booking import Buyer, new_buyer, wait_for_booking_status
from tests.support_events import create_event
from tests.support_payment import pay_booking

pytestmark = pytest.mark.stack

#: Booking = {ID, CreatedAt, UpdatedAt, DeletedAt, user_id, event_id, seat_count, seats,
#: status, total_amount}; ``seats`` a string holding JSON
BOOKING = {
    "ID": int,
    "CreatedAt": str,
    "UpdatedAt": str,
    "DeletedAt": None,
    "user_id": int,
    "event_id": int,
    "seat_count": int,
    "seats": str,
    "status": str,
    "total_amount": NUMBER,
}
#: what ``JSON.parse(booking.seats)`` gives the front end
FRONT_END_SEAT = {"id": str, "row": int, "number": int, "price": NUMBER}
#: a taken seat: as the client sent it, plus ``status``
TAKEN_SEAT = {**FRONT_END_SEAT, "status": str}
ERROR = {"error": str}
BOOKING_STATUSES = {"pending", "confirmed", "failed", "cancelled"}

PRICE_NORMAL, PRICE_VIP = 150, 400
#: the original front end's seats: its own ids, rows and numbers, and the price it showed
FRONT_END_SEATS = [
    {"id": "vip-1-1", "row": 1, "number": 1, "price": PRICE_VIP},
    {"id": "normal-1-1", "row": 1, "number": 1, "price": PRICE_NORMAL},
]


@dataclass
class Sale:
    event_id: int
    organizer: dict[str, str]
    admin: dict[str, str]
    buyer: Buyer
    #: POST /bookings with the front end's body, then paid
    seats_answer: httpx.Response
    #: POST /bookings with the collection's body, left unpaid
    count_answer: httpx.Response

    @property
    def paid(self) -> dict[str, Any]:
        booking: dict[str, Any] = self.seats_answer.json()["booking"]
        return booking

    @property
    def unpaid(self) -> dict[str, Any]:
        booking: dict[str, Any] = self.count_answer.json()["booking"]
        return booking


@pytest.fixture(scope="module")
async def sale(mailbox: Mailbox) -> Sale:
    async with gateway_client() as organizer_client, gateway_client() as admin_client:
        organizer = await approved_organizer(organizer_client, mailbox, admin_client)
        event = await create_event(
            organizer_client,
            headers=bearer(organizer["access_token"]),
            price_normal=PRICE_NORMAL,
            price_vip=PRICE_VIP,
            price_vvip=900,
        )
        admin = bearer(await admin_token(admin_client))
    async with gateway_client() as client:
        buyer = await new_buyer(client, mailbox)
        seats_answer = await client.post(
            "/api/bookings",
            json={
                "event_id": event["id"],
                "seat_count": 2,
                "amount": PRICE_VIP + PRICE_NORMAL,
                "seats": FRONT_END_SEATS,
            },
            headers=bare(buyer.access_token),
        )
        assert seats_answer.status_code == 201, seats_answer.text
        booking_id = seats_answer.json()["booking"]["ID"]
        await pay_booking(client, booking_id, headers=buyer.headers)
        await wait_for_booking_status(client, buyer, booking_id, "confirmed")
        count_answer = await client.post(
            "/api/bookings",
            json={"event_id": event["id"], "seat_count": 1, "amount": PRICE_NORMAL},
            headers=bare(buyer.access_token),
        )
        assert count_answer.status_code == 201, count_answer.text
    return Sale(
        event_id=event["id"],
        organizer=bearer(organizer["access_token"]),
        admin=admin,
        buyer=buyer,
        seats_answer=seats_answer,
        count_answer=count_answer,
    )


# POST /bookings


def test_post_bookings_with_the_front_ends_seats_answers_201_message_and_booking(
    sale: Sale,
) -> None:
    body = sale.seats_answer.json()
    assert sale.seats_answer.status_code == 201
    assert_shape(body, {"message": str, "booking": BOOKING})
    booking = body["booking"]
    assert (booking["user_id"], booking["event_id"]) == (sale.buyer.user_id, sale.event_id)
    assert booking["seat_count"] == 2
    assert booking["total_amount"] == PRICE_VIP + PRICE_NORMAL
    assert booking["status"] == "pending"
    # The front end calls JSON.parse(booking.seats) and finds the seats it sent.
    assert json.loads(booking["seats"]) == FRONT_END_SEATS


def test_post_bookings_with_the_collections_count_books_normal_seats(sale: Sale) -> None:
    body = sale.count_answer.json()
    assert_shape(body, {"message": str, "booking": BOOKING})
    booking = body["booking"]
    assert booking["seat_count"] == 1
    assert booking["total_amount"] == PRICE_NORMAL
    [seat] = json.loads(booking["seats"])
    assert_shape(seat, FRONT_END_SEAT)
    assert seat["id"].startswith("normal-")
    assert seat["price"] == PRICE_NORMAL


async def test_post_bookings_with_a_vip_seat_id_prices_the_vip_class(
    sale: Sale, client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    buyer = await new_buyer(client, mailbox)
    seats = [{"id": "vip-1-5", "row": 1, "number": 5, "price": PRICE_VIP}]

    response = await client.post(
        "/api/bookings",
        json={"event_id": sale.event_id, "seat_count": 1, "amount": PRICE_VIP, "seats": seats},
        headers=bare(buyer.access_token),
    )

    assert response.status_code == 201, response.text
    assert response.json()["booking"]["total_amount"] == PRICE_VIP


async def test_post_bookings_with_another_amount_is_409_not_a_charge_at_the_clients_sum(
    sale: Sale, client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    """Fixes that stay: the client's ``amount`` is checked, never trusted."""
    buyer = await new_buyer(client, mailbox)
    seats = [{"id": "vip-1-9", "row": 1, "number": 9, "price": 1}]

    response = await client.post(
        "/api/bookings",
        json={"event_id": sale.event_id, "seat_count": 1, "amount": 1, "seats": seats},
        headers=buyer.headers,
    )

    assert response.status_code == 409, response.text
    assert_shape(response.json(), ERROR)
    assert response.json()["code"] == "amount_mismatch"


async def test_post_bookings_for_a_taken_seat_is_409_where_the_original_answered_500(
    sale: Sale, client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    buyer = await new_buyer(client, mailbox)

    response = await client.post(
        "/api/bookings",
        json={
            "event_id": sale.event_id,
            "seat_count": 1,
            "amount": PRICE_VIP,
            "seats": FRONT_END_SEATS[:1],
        },
        headers=buyer.headers,
    )

    assert response.status_code == 409, response.text
    assert_shape(response.json(), ERROR)


# GET /bookings/:id


async def test_get_booking_answers_the_booking_wrapped(
    sale: Sale, client: httpx.AsyncClient
) -> None:
    response = await client.get(
        f"/api/bookings/{sale.paid['ID']}", headers=bare(sale.buyer.access_token)
    )

    assert response.status_code == 200, response.text
    assert_shape(response.json(), {"booking": BOOKING})
    booking = response.json()["booking"]
    assert booking["status"] == "confirmed"
    assert json.loads(booking["seats"]) == FRONT_END_SEATS


async def test_get_booking_of_someone_else_is_403(
    sale: Sale, client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    """Fixes that stay: only the owner (the event's organizer, an admin) reads a booking."""
    stranger = await new_buyer(client, mailbox)

    response = await client.get(f"/api/bookings/{sale.paid['ID']}", headers=stranger.headers)

    assert response.status_code == 403
    assert_shape(response.json(), ERROR)


# GET /bookings/event/:eventId/seats


async def test_event_seats_are_the_taken_seats_locked_or_sold(
    sale: Sale, client: httpx.AsyncClient
) -> None:
    response = await client.get(
        f"/api/bookings/event/{sale.event_id}/seats", headers=bare(sale.buyer.access_token)
    )

    assert response.status_code == 200, response.text
    assert_shape(response.json(), {"seats": [TAKEN_SEAT]})
    statuses = {seat["id"]: seat["status"] for seat in response.json()["seats"]}
    [unpaid_seat] = json.loads(sale.unpaid["seats"])
    assert statuses["vip-1-1"] == statuses["normal-1-1"] == "sold"
    assert statuses[unpaid_seat["id"]] == "locked"
    assert set(statuses.values()) <= {"locked", "sold"}
    seat = next(s for s in response.json()["seats"] if s["id"] == "vip-1-1")
    assert (seat["row"], seat["number"], seat["price"]) == (1, 1, PRICE_VIP)


# GET /bookings/user


async def test_user_bookings_are_the_callers_confirmed_bookings(
    sale: Sale, client: httpx.AsyncClient
) -> None:
    response = await client.get("/api/bookings/user", headers=bare(sale.buyer.access_token))

    assert response.status_code == 200, response.text
    assert_shape(response.json(), {"bookings": [BOOKING]})
    bookings = response.json()["bookings"]
    assert [b["ID"] for b in bookings] == [sale.paid["ID"]]  # not the unpaid one
    assert {b["status"] for b in bookings} == {"confirmed"}


# GET /bookings/organizer/sales, /organizer/sales/:eventId


async def test_organizer_sales_are_the_paid_bookings_of_their_events(
    sale: Sale, client: httpx.AsyncClient
) -> None:
    everything = await client.get("/api/bookings/organizer/sales", headers=sale.organizer)
    one_event = await client.get(
        f"/api/bookings/organizer/sales/{sale.event_id}", headers=sale.organizer
    )

    for response in (everything, one_event):
        assert response.status_code == 200, response.text
        assert_shape(response.json(), {"sales": [BOOKING]})
        assert [b["ID"] for b in response.json()["sales"]] == [sale.paid["ID"]]


async def test_organizer_sales_need_an_organizer(sale: Sale, client: httpx.AsyncClient) -> None:
    response = await client.get("/api/bookings/organizer/sales", headers=sale.buyer.headers)

    assert response.status_code == 403
    assert_shape(response.json(), ERROR)


# GET /bookings/all


async def test_all_bookings_are_every_booking_for_an_admin(
    sale: Sale, client: httpx.AsyncClient
) -> None:
    response = await client.get("/api/bookings/all", headers=sale.admin)

    assert response.status_code == 200, response.text
    assert_shape(response.json(), {"bookings": [BOOKING]})
    bookings = response.json()["bookings"]
    ids = {b["ID"] for b in bookings}
    assert {sale.paid["ID"], sale.unpaid["ID"]} <= ids
    assert {b["status"] for b in bookings} <= BOOKING_STATUSES | {"expired"}
    assert int(response.headers["X-Total-Count"]) >= len(bookings)


# GET /notifications/tickets/:bookingID/pdf


async def test_the_ticket_of_a_paid_booking_is_a_pdf(sale: Sale, client: httpx.AsyncClient) -> None:
    response = await client.get(
        f"/api/notifications/tickets/{sale.paid['ID']}/pdf", headers=bare(sale.buyer.access_token)
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
