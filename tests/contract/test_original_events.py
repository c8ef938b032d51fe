"""ORIGINAL_API.md, events (``/api/events``): the original's requests, replayed through the
gateway of the test stack, answered with its fields and JSON types.

An approved organizer creates an event with the original's body (prices as JSON numbers,
no ``seats_per_row``), and each test reads one row of the table. Tokens go without the
``Bearer`` prefix where the original's clients send them bare.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Mailbox, gateway_client
from tests.contract.shapes import NUMBER, assert_shape
from tests.support_auth import approved_organizer, bare
from tests.support_booking import new_buyer

pytestmark = pytest.mark.stack

#: Event = {ID, CreatedAt, UpdatedAt, DeletedAt, title, description, date, location,
#: total_seats, available_seats, organizer_id, price_*, seats_*, available_*}
EVENT = {
    "ID": int,
    "CreatedAt": str,
    "UpdatedAt": str,
    "DeletedAt": None,
    "title": str,
    "description": str,
    "date": str,
    "location": str,
    "total_seats": int,
    "available_seats": int,
    "organizer_id": int,
    "price_normal": NUMBER,
    "price_vip": NUMBER,
    "price_vvip": NUMBER,
    "seats_normal": int,
    "seats_vip": int,
    "seats_vvip": int,
    "available_normal": int,
    "available_vip": int,
    "available_vvip": int,
}
#: the original's POST /events body: prices and seat counts as JSON numbers
ORIGINAL_BODY: dict[str, Any] = {
    "description": "As the original's front end creates it",
    "location": "Millennium Hall",
    "price_normal": 150,
    "price_vip": 400.5,
    "price_vvip": 900,
    "seats_normal": 20,
    "seats_vip": 6,
    "seats_vvip": 4,
}


@dataclass
class Scene:
    organizer_token: str
    organizer_id: int
    created: httpx.Response

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = self.created.json()["event"]
        return event


@pytest.fixture(scope="module")
async def scene(mailbox: Mailbox) -> Scene:
    async with gateway_client() as organizer_client, gateway_client() as admin_client:
        organizer = await approved_organizer(organizer_client, mailbox, admin_client)
        date = (datetime.now(UTC) + timedelta(days=40)).replace(microsecond=0)
        created = await organizer_client.post(
            "/api/events",
            json={**ORIGINAL_BODY, "title": "Original Night", "date": date.isoformat()},
            headers=bare(organizer["access_token"]),
        )
    assert created.status_code == 201, created.text
    return Scene(organizer["access_token"], int(created.json()["event"]["organizer_id"]), created)


# POST /events


def test_post_events_with_the_originals_body_answers_201_message_and_event(scene: Scene) -> None:
    assert scene.created.status_code == 201
    assert_shape(scene.created.json(), {"message": str, "event": EVENT})
    event = scene.event
    assert (event["total_seats"], event["available_seats"]) == (30, 30)
    assert (event["price_normal"], event["price_vip"], event["price_vvip"]) == (150, 400.5, 900)


# GET /events, GET /events/:id, GET /events/my


async def test_get_events_answers_a_bare_array_of_events(scene: Scene) -> None:
    async with gateway_client() as client:
        response = await client.get("/api/events")

    assert response.status_code == 200
    listed = response.json()
    assert isinstance(listed, list)
    assert_shape(listed, [EVENT])
    assert scene.event["ID"] in [e["ID"] for e in listed]


async def test_get_event_answers_the_bare_event(scene: Scene) -> None:
    async with gateway_client() as client:
        response = await client.get(f"/api/events/{scene.event['ID']}")

    assert response.status_code == 200
    assert_shape(response.json(), EVENT)
    assert response.json()["organizer_id"] == scene.organizer_id


async def test_get_events_my_answers_a_bare_array_of_the_organizers_events(scene: Scene) -> None:
    async with gateway_client() as client:
        response = await client.get("/api/events/my", headers=bare(scene.organizer_token))

    assert response.status_code == 200
    assert_shape(response.json(), [EVENT])
    assert [e["ID"] for e in response.json()] == [scene.event["ID"]]


async def test_a_missing_event_is_a_404_error(scene: Scene) -> None:
    async with gateway_client() as client:
        response = await client.get("/api/events/999999999")

    assert response.status_code == 404
    assert_shape(response.json(), {"error": str})


# PUT /events/:id


async def test_put_total_seats_changes_the_capacity(scene: Scene, mailbox: Mailbox) -> None:
    async with gateway_client() as client:
        buyer = await new_buyer(client, mailbox)
        held = await client.post(
            "/api/bookings",
            json={"event_id": scene.event["ID"], "seat_count": 2},
            headers=buyer.headers,
        )
        assert held.status_code == 201, held.text
        grown = await client.put(
            f"/api/events/{scene.event['ID']}",
            json={"total_seats": 40, "title": "Original Night, bigger"},
            headers=bare(scene.organizer_token),
        )
        below_booked = await client.put(
            f"/api/events/{scene.event['ID']}",
            json={"total_seats": 11},
            headers=bare(scene.organizer_token),
        )
        detail = (await client.get(f"/api/events/{scene.event['ID']}")).json()

    assert grown.status_code == 200, grown.text
    assert_shape(grown.json(), {"message": str, "event": EVENT})
    assert grown.json()["event"]["total_seats"] == 40
    assert below_booked.status_code == 409
    assert_shape(below_booked.json(), {"error": str})
    assert (detail["total_seats"], detail["available_seats"]) == (40, 38)
    assert detail["title"] == "Original Night, bigger"


async def test_an_updated_event_reads_back_through_the_list(scene: Scene) -> None:
    async with gateway_client() as client:
        mine = (await client.get("/api/events/my", headers=bare(scene.organizer_token))).json()

    assert mine[0]["total_seats"] == mine[0]["seats_normal"] + 10
