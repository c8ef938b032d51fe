"""An approved organizer publishes and edits an event; anyone reads it through the gateway."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Mailbox
from tests.support_auth import approved_organizer, bearer, register_user
from tests.support_events import create_event, get_event, seat_statuses, signed_headers

pytestmark = pytest.mark.stack


async def test_approved_organizer_publishes_and_edits_an_event(
    client: httpx.AsyncClient,
    mailbox: Mailbox,
    new_client: Callable[[], httpx.AsyncClient],
) -> None:
    async with new_client() as admin_client, new_client() as reader:
        organizer = bearer(
            (await approved_organizer(client, mailbox, admin_client))["access_token"]
        )
        event = await create_event(client, headers=organizer, title="Gateway Gala", seats_vip=6)

        assert event["currency"] == "ETB"
        listed = await reader.get("/api/events", params={"q": "Gateway Gala", "limit": 5})
        assert listed.status_code == 200
        assert int(listed.headers["X-Total-Count"]) >= 1
        assert event["id"] in [e["id"] for e in listed.json()]
        detail = await get_event(reader, event["id"])
        assert (detail["seats_vip"], detail["available_vip"], detail["price_vip"]) == (
            6,
            6,
            400.0,  # a JSON number, as the original's
        )
        statuses = await seat_statuses(reader, event["id"])
        assert len(statuses) == 20 + 6 + 4
        assert set(statuses.values()) == {"available"}

        edited = await client.put(
            f"/api/events/{event['id']}",
            json={"title": "Gateway Gala (moved)", "location": "Hawassa"},
            headers=organizer,
        )
        assert edited.status_code == 200, edited.text
        after = await get_event(reader, event["id"])
        assert (after["title"], after["location"]) == ("Gateway Gala (moved)", "Hawassa")

        mine = await client.get("/api/events/my", headers=organizer)
        assert [e["id"] for e in mine.json()] == [event["id"]]


async def test_other_people_cannot_create_or_edit_an_organizers_event(
    client: httpx.AsyncClient,
    mailbox: Mailbox,
    new_client: Callable[[], httpx.AsyncClient],
) -> None:
    event = await create_event(client, headers=signed_headers())
    async with new_client() as buyer_client:
        _, _, tokens = await register_user(buyer_client, mailbox)
        buyer = bearer(tokens["access_token"])

        created = await buyer_client.post("/api/events", json={"title": "x"}, headers=buyer)
        edited = await buyer_client.put(
            f"/api/events/{event['id']}", json={"title": "Mine now"}, headers=buyer
        )
        other_organizer = await buyer_client.put(
            f"/api/events/{event['id']}", json={"title": "Mine now"}, headers=signed_headers()
        )
        anonymous = await buyer_client.post("/api/events", json={"title": "x"})

    assert created.status_code == 403
    assert edited.status_code == 403
    assert other_organizer.status_code == 403
    assert anonymous.status_code == 401
    assert (await get_event(client, event["id"]))["title"] == event["title"]
