"""The Go original's booking requests and answers (ORIGINAL_API.md), beside the port's."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import update

from booking_service.models import Booking
from booking_service.tests.conftest import Stack


async def _post(stack: Stack, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return await stack.client.post("/api/bookings", json=body, headers=headers)


def _front_end_seats(*seats: tuple[str, int, int, float]) -> list[dict[str, Any]]:
    """Seats as the original's front end sends them: ``{id, row, number, price}``."""
    return [{"id": i, "row": r, "number": n, "price": p} for i, r, n, p in seats]


async def test_the_front_ends_body_books_its_seats_and_answers_the_originals_fields(
    stack: Stack,
) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    seats = _front_end_seats(("vip-1-2", 1, 2, 250), ("normal-1-1", 1, 1, 100))

    response = await _post(
        stack,
        {"event_id": event_id, "seat_count": 2, "amount": 350, "seats": seats},
        buyer.headers,
    )

    assert response.status_code == 201, response.text
    booking = response.json()["booking"]
    assert booking["ID"] == booking["id"]
    assert isinstance(booking["CreatedAt"], str)
    assert isinstance(booking["UpdatedAt"], str)
    assert booking["DeletedAt"] is None
    assert (booking["user_id"], booking["event_id"]) == (buyer.user_id, event_id)
    assert booking["seat_count"] == 2
    assert booking["status"] == "pending"
    assert booking["total_amount"] == 350
    # ``seats`` is a string the front end JSON.parse()s: its seats, in its order.
    assert json.loads(booking["seats"]) == seats
    assert [s["seat_id"] for s in booking["seat_list"]] == ["normal-1-1", "vip-1-2"]


async def test_the_seats_string_carries_the_servers_prices_not_the_clients(
    stack: Stack,
) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    sent = _front_end_seats(("vip-1-1", 1, 1, 1.5))

    response = await _post(stack, {"event_id": event_id, "seats": sent}, buyer.headers)

    assert response.status_code == 201, response.text
    booking = response.json()["booking"]
    assert json.loads(booking["seats"]) == [{"id": "vip-1-1", "row": 1, "number": 1, "price": 250}]
    stored = await stack.client.get(f"/api/bookings/{booking['id']}", headers=buyer.headers)
    assert stored.json()["booking"]["seats"] == booking["seats"]


async def test_a_count_without_a_class_books_normal_seats_and_lists_them_as_its_seats(
    stack: Stack,
) -> None:
    """The Postman collection's body: ``{event_id, seat_count, amount}``."""
    event_id = await stack.create_event()
    buyer = stack.actor()

    response = await _post(
        stack, {"event_id": event_id, "seat_count": 2, "amount": 200}, buyer.headers
    )

    assert response.status_code == 201, response.text
    booking = response.json()["booking"]
    assert booking["seat_count"] == 2
    assert booking["total_amount"] == 200
    assert {s["ticket_class"] for s in booking["seat_list"]} == {"normal"}
    assert json.loads(booking["seats"]) == [
        {"id": s["seat_id"], "row": s["row"], "number": s["number"], "price": 100}
        for s in booking["seat_list"]
    ]


async def test_an_amount_other_than_the_price_is_409_and_books_nothing(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    seats = _front_end_seats(("vip-1-1", 1, 1, 1))

    cheap = await _post(
        stack, {"event_id": event_id, "seat_count": 1, "amount": 1, "seats": seats}, buyer.headers
    )
    count = await _post(
        stack, {"event_id": event_id, "seat_count": 1, "amount": 99.5}, buyer.headers
    )

    for refused in (cheap, count):
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "amount_mismatch"
        assert "error" in refused.json()
    assert cheap.json()["details"] == {"amount": 1, "total_amount": 250}
    assert (await stack.seat_statuses(event_id))["vip-1-1"] == "available"
    mine = await stack.client.get(
        "/api/bookings/user", params={"status": "all"}, headers=buyer.headers
    )
    assert mine.json()["bookings"] == []


async def test_an_amount_summed_in_floating_point_is_the_price_to_the_cent(stack: Stack) -> None:
    """A JavaScript front end adds 100.1 and 200.2 to 300.29999999999995."""
    event_id = await stack.create_event(price_normal="100.10", price_vip="200.20")
    seats = _front_end_seats(("normal-1-1", 1, 1, 100.1), ("vip-1-1", 1, 1, 200.2))

    response = await _post(
        stack,
        {"event_id": event_id, "seat_count": 2, "amount": 100.1 + 200.2, "seats": seats},
        stack.actor().headers,
    )

    assert response.status_code == 201, response.text
    assert response.json()["booking"]["total_amount"] == 300.3


async def test_a_ticket_class_names_the_class_of_a_count(stack: Stack) -> None:
    event_id = await stack.create_event()

    response = await _post(
        stack,
        {"event_id": event_id, "seat_count": 1, "ticket_class": "vvip", "amount": 500},
        stack.actor().headers,
    )

    assert response.status_code == 201, response.text
    assert response.json()["booking"]["seat_list"][0]["seat_id"] == "vvip-1-1"


async def test_every_answer_carries_the_originals_booking_fields(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    booking = await stack.booked(buyer, event_id, ["vip-1-1"])
    await stack.settle(booking)
    other = await stack.booked(buyer, event_id, ["vip-1-2"])

    answers = [
        (await stack.client.get(f"/api/bookings/{booking['id']}", headers=buyer.headers)).json()[
            "booking"
        ],
        *(await stack.client.get("/api/bookings/user", headers=buyer.headers)).json()["bookings"],
        *(
            await stack.client.get(
                "/api/bookings/all", params={"event_id": event_id}, headers=stack.admin.headers
            )
        ).json()["bookings"],
        (
            await stack.client.post(f"/api/bookings/{other['id']}/cancel", headers=buyer.headers)
        ).json()["booking"],
    ]

    for answer in answers:
        assert answer["ID"] == answer["id"]
        assert answer["DeletedAt"] is None
        assert isinstance(answer["total_amount"], int | float)
        assert isinstance(answer["seats"], str)
        assert answer["seat_count"] == len(json.loads(answer["seats"])) == 1


async def test_a_booking_stored_without_its_seats_string_answers_one_from_its_seats(
    stack: Stack,
) -> None:
    """Rows older than the column (the migration fills them) still answer a string."""
    event_id = await stack.create_event()
    buyer = stack.actor()
    booking = await stack.booked(buyer, event_id, ["vip-1-1", "normal-1-1"])
    async with stack.app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Booking).where(Booking.id == booking["id"]).values(client_seats=None)
        )

    response = await stack.client.get(f"/api/bookings/{booking['id']}", headers=buyer.headers)

    assert json.loads(response.json()["booking"]["seats"]) == [
        {"id": "normal-1-1", "row": 1, "number": 1, "price": 100},
        {"id": "vip-1-1", "row": 1, "number": 1, "price": 250},
    ]
