"""The public and organizer event API (``/api/events``)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy.event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from event_service.tests.conftest import Service, bearer, event_body
from ticketing_common.revocation import revoke_access_token, revoke_user_tokens
from ticketing_common.security import issue_token


def _days(n: int) -> str:
    return (datetime.now(UTC) + timedelta(days=n)).isoformat()


async def _retitle_behind_the_cache(events: Service, event_id: int, title: str) -> None:
    engine = create_async_engine(events.settings.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE events SET title = :title WHERE id = :id"),
                {"title": title, "id": event_id},
            )
    finally:
        await engine.dispose()


# -- creating ---------------------------------------------------------------------------


async def test_organizer_creates_an_event_with_three_classes(events: Service) -> None:
    response = await events.client.post(
        "/api/events",
        json=event_body(organizer_id=999, price_vip="400.5"),
        headers=events.organizer(user_id=7),
    )

    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "event created"
    event = body["event"]
    assert event["organizer_id"] == 7  # from the token, never from the body
    assert event["currency"] == "ETB"
    assert (event["price_normal"], event["price_vip"], event["price_vvip"]) == (150, 400.5, 900)
    assert (event["seats_normal"], event["available_normal"], event["sold_normal"]) == (20, 20, 0)
    assert event["seats_per_row"] == 10
    public = await events.event(event["id"])
    assert public["organizer_id"] == 7  # the original's clients read it
    assert public["available_vvip"] == 4


async def test_a_class_without_seats_needs_no_price(events: Service) -> None:
    event = await events.create_event(
        seats_vip=0, seats_vvip=0, price_vip=None, price_vvip=None, seats_per_row=8
    )

    assert (event["price_vip"], event["price_vvip"]) == (0, 0)
    assert event["seats_per_row"] == 8


async def test_admins_may_create_events_too(events: Service) -> None:
    response = await events.client.post(
        "/api/events", json=event_body(), headers=events.organizer(1, role="admin")
    )
    assert response.status_code == 201


async def test_only_organizers_and_admins_create_events(events: Service) -> None:
    as_user = await events.client.post(
        "/api/events", json=event_body(), headers=events.organizer(role="user")
    )
    anonymous = await events.client.post("/api/events", json=event_body())
    forged = await events.client.post(
        "/api/events", json=event_body(), headers={"Authorization": "Bearer not-a-token"}
    )

    assert as_user.status_code == 403
    assert anonymous.status_code == 401
    assert forged.status_code == 401
    assert (await events.client.get("/api/events")).json() == []


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"date": _days(-1)}, "date"),
        ({"date": _days(6 * 366)}, "date"),
        ({"date": "next friday"}, "date"),
        ({"price_normal": "-1"}, "price_normal"),
        ({"price_vip": "10.005"}, "price_vip"),
        ({"price_vvip": "1000000.01"}, "price_vvip"),
        ({"price_normal": None}, "body"),
        ({"seats_normal": 0, "seats_vip": 0, "seats_vvip": 0}, "body"),
        ({"seats_normal": -5}, "seats_normal"),
        ({"seats_normal": 100_000, "seats_vip": 1}, "body"),
        ({"seats_per_row": 0}, "seats_per_row"),
        ({"seats_per_row": 1001}, "seats_per_row"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"location": ""}, "location"),
        ({"seats_vip": "many"}, "seats_vip"),
    ],
)
async def test_invalid_events_are_refused_with_400(
    events: Service, override: dict[str, Any], field: str
) -> None:
    response = await events.client.post(
        "/api/events", json=event_body(**override), headers=events.organizer()
    )

    assert response.status_code == 400, response.text
    assert response.json()["details"][0]["field"] == field


async def test_malformed_json_is_a_400(events: Service) -> None:
    response = await events.client.post(
        "/api/events",
        content=b"{not json",
        headers={**events.organizer(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400


# -- reading ----------------------------------------------------------------------------


async def test_list_is_newest_first_and_paginated_with_a_total(events: Service) -> None:
    ids = [(await events.create_event(title=f"Show {n}"))["id"] for n in range(5)]

    first = await events.client.get("/api/events", params={"limit": 2})
    second = await events.client.get("/api/events", params={"limit": 2, "offset": 2})
    last = await events.client.get("/api/events", params={"limit": 2, "offset": 4})

    assert first.headers["X-Total-Count"] == "5"
    pages = [r.json() for r in (first, second, last)]
    assert [e["id"] for page in pages for e in page] == ids[::-1]


async def test_an_event_has_the_originals_fields_and_json_types(events: Service) -> None:
    created = await events.create_event(seats_normal=20, seats_vip=6, seats_vvip=4)

    [listed] = [
        e for e in (await events.client.get("/api/events")).json() if e["ID"] == created["id"]
    ]
    detail = await events.event(created["id"])

    for event in (listed, detail):
        assert event["ID"] == event["id"] == created["id"]
        assert event["CreatedAt"] == event["created_at"]
        assert event["UpdatedAt"] == event["updated_at"]
        assert event["DeletedAt"] is None
        assert (event["total_seats"], event["available_seats"]) == (30, 30)
        assert event["organizer_id"] == created["organizer_id"]
        assert all(isinstance(event[f"price_{c}"], float | int) for c in ("normal", "vip", "vvip"))


async def test_a_list_without_a_limit_answers_up_to_a_thousand(events: Service) -> None:
    for n in range(55):
        await events.create_event(title=f"Many {n}")

    everything = await events.client.get("/api/events")
    too_many = await events.client.get("/api/events", params={"limit": 1001})

    assert len(everything.json()) == int(everything.headers["X-Total-Count"]) >= 55
    assert too_many.status_code == 400


async def test_list_filters_by_text_location_and_dates(events: Service) -> None:
    jazz = await events.create_event(title="Jazz Night", location="Addis Ababa", date=_days(10))
    rock = await events.create_event(
        title="Rock 100%", description="Loud.", location="Bahir Dar", date=_days(40)
    )
    await events.create_event(title="Opera", description="with a jazz encore", date=_days(70))

    async def found(**params: str) -> list[int]:
        response = await events.client.get("/api/events", params=params)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()]

    assert len(await found(q="JAZZ")) == 2
    assert await found(q="100%") == [rock["id"]]
    assert await found(q="%") == [rock["id"]]  # wildcards are matched literally
    assert await found(location="bahir") == [rock["id"]]
    assert await found(**{"to": _days(20)}) == [jazz["id"]]
    assert len(await found(**{"from": _days(20)})) == 2
    assert await found(**{"from": _days(20), "to": _days(50)}) == [rock["id"]]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"offset": "-1"},
        {"from": "yesterday"},
        {"from": _days(5), "to": _days(1)},
        {"q": "x" * 201},
    ],
)
async def test_bad_list_parameters_are_a_400(events: Service, params: dict[str, str]) -> None:
    response = await events.client.get("/api/events", params=params)
    assert response.status_code == 400, response.text


async def test_unknown_or_malformed_event_ids(events: Service) -> None:
    assert (await events.client.get("/api/events/424242")).status_code == 404
    assert (await events.client.get("/api/events/424242/seats")).status_code == 404
    assert (await events.client.get("/api/events/abc")).status_code == 400
    assert (await events.client.get(f"/api/events/{2**70}")).status_code == 400
    assert (await events.client.get("/api/events/0")).status_code == 400


async def test_my_events_are_only_the_organizers_own(events: Service) -> None:
    mine = await events.create_event(user_id=1)
    await events.create_event(user_id=2)

    response = await events.client.get("/api/events/my", headers=events.organizer(1))
    as_user = await events.client.get("/api/events/my", headers=events.organizer(1, role="user"))

    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "1"
    assert [e["id"] for e in response.json()] == [mine["id"]]
    assert as_user.status_code == 403


async def test_seat_map_lists_every_seat_with_its_status(events: Service) -> None:
    event = await events.create_event(seats_normal=12, seats_vip=3, seats_vvip=0, seats_per_row=5)
    await events.hold(event["id"], token="h", seat_ids=["normal-3-2"])
    await events.hold(event["id"], token="s", seat_ids=["vip-1-3"])
    await events.confirm(event["id"], "s", booking_id=1)

    response = await events.client.get(f"/api/events/{event['id']}/seats")

    assert response.status_code == 200
    body = response.json()
    assert (body["available"], body["held"], body["sold"]) == (13, 1, 1)
    assert len(body["seats"]) == 15
    assert body["seats"][11] == {
        "seat_id": "normal-3-2",
        "ticket_class": "normal",
        "row": 3,
        "number": 2,
        "status": "held",
    }
    assert [s["seat_id"] for s in body["seats"][:6]] == [
        "normal-1-1",
        "normal-1-2",
        "normal-1-3",
        "normal-1-4",
        "normal-1-5",
        "normal-2-1",
    ]
    assert body["seats"][-1]["seat_id"] == "vip-1-3"
    assert body["seats"][-1]["status"] == "sold"


# -- updating ---------------------------------------------------------------------------


async def test_owner_updates_part_of_an_event(events: Service) -> None:
    event = await events.create_event()

    response = await events.client.put(
        f"/api/events/{event['id']}",
        json={"title": "New title", "price_vip": "450"},
        headers=events.organizer(),
    )

    assert response.status_code == 200
    updated = response.json()["event"]
    assert response.json()["message"] == "event updated"
    assert (updated["title"], updated["price_vip"], updated["location"]) == (
        "New title",
        450,
        "Addis Ababa",
    )
    assert updated["updated_at"] > event["updated_at"]


async def test_only_the_owner_may_update(events: Service) -> None:
    event = await events.create_event(user_id=1)
    path = f"/api/events/{event['id']}"

    other = await events.client.put(path, json={"title": "Mine"}, headers=events.organizer(2))
    admin = await events.client.put(
        path, json={"title": "Mine"}, headers=events.organizer(3, role="admin")
    )
    anonymous = await events.client.put(path, json={"title": "Mine"})
    missing = await events.client.put(
        "/api/events/999999", json={"title": "Mine"}, headers=events.organizer(1)
    )

    assert (other.status_code, admin.status_code, anonymous.status_code) == (403, 403, 401)
    assert missing.status_code == 404
    assert (await events.event(event["id"]))["title"] == event["title"]


@pytest.mark.parametrize(
    "body",
    [{}, {"title": None}, {"date": _days(-2)}, {"price_normal": "-3"}, {"seats_vip": -1}],
)
async def test_invalid_updates_are_a_400(events: Service, body: dict[str, Any]) -> None:
    event = await events.create_event()
    response = await events.client.put(
        f"/api/events/{event['id']}", json=body, headers=events.organizer()
    )
    assert response.status_code == 400, response.text


async def test_capacity_cannot_drop_below_sold_plus_held(events: Service) -> None:
    event = await events.create_event(seats_vip=10)
    await events.hold(event["id"], token="sold", ticket_class="vip", count=3)
    await events.confirm(event["id"], "sold", booking_id=1)
    await events.hold(event["id"], token="held", ticket_class="vip", count=2)

    response = await events.client.put(
        f"/api/events/{event['id']}", json={"seats_vip": 4}, headers=events.organizer()
    )

    assert response.status_code == 409
    assert response.json()["code"] == "capacity_in_use"
    assert response.json()["details"]["sold_and_held"] == 5
    assert (await events.event(event["id"]))["seats_vip"] == 10


async def test_capacity_cut_must_not_remove_a_held_seat(events: Service) -> None:
    event = await events.create_event(seats_vip=10)
    await events.hold(event["id"], token="back-row", seat_ids=["vip-1-10"])

    response = await events.client.put(
        f"/api/events/{event['id']}", json={"seats_vip": 8}, headers=events.organizer()
    )

    assert response.status_code == 409
    assert response.json()["details"]["taken_beyond_new_capacity"] == 1


async def test_capacity_changes_reshape_the_seat_map(events: Service) -> None:
    event = await events.create_event(seats_normal=20, seats_vip=10, seats_vvip=4)
    await events.hold(event["id"], token="front", seat_ids=["vip-1-1"])

    response = await events.client.put(
        f"/api/events/{event['id']}",
        json={"seats_vip": 5, "seats_vvip": 6},
        headers=events.organizer(),
    )

    assert response.status_code == 200, response.text
    updated = response.json()["event"]
    assert (updated["available_vip"], updated["available_vvip"]) == (4, 6)
    statuses = await events.seat_statuses(event["id"])
    assert "vip-1-6" not in statuses
    assert statuses["vvip-1-6"] == "available"
    new_seat = await events.hold(event["id"], token="new", seat_ids=["vvip-1-6"])
    cut_seat = await events.hold(event["id"], token="cut", seat_ids=["vip-1-7"])
    assert (new_seat.status_code, cut_seat.status_code) == (201, 400)


async def test_total_seats_grows_and_shrinks_the_end_of_the_normal_class(
    events: Service,
) -> None:
    """The original's ``PUT {total_seats}``: capacity, taken from the normal class."""
    event = await events.create_event(seats_normal=20, seats_vip=6, seats_vvip=4)
    await events.hold(event["id"], token="front", seat_ids=["normal-1-1"])

    grown = await events.client.put(
        f"/api/events/{event['id']}", json={"total_seats": 35}, headers=events.organizer()
    )
    shrunk = await events.client.put(
        f"/api/events/{event['id']}", json={"total_seats": 12}, headers=events.organizer()
    )

    assert grown.status_code == 200, grown.text
    assert (grown.json()["event"]["seats_normal"], grown.json()["event"]["total_seats"]) == (25, 35)
    assert shrunk.status_code == 200, shrunk.text
    body = shrunk.json()["event"]
    assert (body["seats_normal"], body["seats_vip"], body["seats_vvip"]) == (2, 6, 4)
    assert (body["total_seats"], body["available_seats"], body["available_normal"]) == (12, 11, 1)
    statuses = await events.seat_statuses(event["id"])
    assert [s for s in statuses if s.startswith("normal-")] == ["normal-1-1", "normal-1-2"]
    assert statuses["normal-1-1"] == "held"
    public = await events.event(event["id"])
    assert (public["total_seats"], public["available_seats"]) == (12, 11)


async def test_total_seats_never_drops_below_what_is_held_or_sold(events: Service) -> None:
    event = await events.create_event(seats_normal=20, seats_vip=6, seats_vvip=4)
    await events.hold(event["id"], token="held", ticket_class="normal", count=3)

    below_held = await events.client.put(
        f"/api/events/{event['id']}", json={"total_seats": 12}, headers=events.organizer()
    )
    below_other_classes = await events.client.put(
        f"/api/events/{event['id']}", json={"total_seats": 9}, headers=events.organizer()
    )
    disagreeing = await events.client.put(
        f"/api/events/{event['id']}",
        json={"total_seats": 30, "seats_normal": 5},
        headers=events.organizer(),
    )

    assert below_held.status_code == 409, below_held.text
    assert below_held.json()["code"] == "capacity_in_use"
    assert below_other_classes.status_code == 400
    assert "vip and vvip" in below_other_classes.json()["error"]
    assert disagreeing.status_code == 400
    assert (await events.event(event["id"]))["total_seats"] == 30


async def test_concurrent_holds_and_a_total_seats_cut_never_oversell(events: Service) -> None:
    """Holds racing a cut: whatever wins, every held seat is inside the final capacity."""
    event = await events.create_event(seats_normal=20, seats_vip=0, seats_vvip=0)
    holds = [
        events.hold(event["id"], token=f"racer-{n}", ticket_class="normal", count=2)
        for n in range(8)
    ]
    cut = events.client.put(
        f"/api/events/{event['id']}", json={"total_seats": 10}, headers=events.organizer()
    )

    *held, resized = await asyncio.gather(*holds, cut)

    granted = sum(2 for r in held if r.status_code == 201)
    final = await events.event(event["id"])
    statuses = await events.seat_statuses(event["id"])
    assert resized.status_code in (200, 409), resized.text
    assert final["total_seats"] == len(statuses) == (10 if resized.status_code == 200 else 20)
    assert sum(1 for s in statuses.values() if s == "held") == granted
    assert final["available_seats"] == final["total_seats"] - granted


async def test_seats_per_row_changes_only_while_nothing_is_taken(events: Service) -> None:
    event = await events.create_event(seats_normal=20, seats_vip=0, seats_vvip=0)
    path = f"/api/events/{event['id']}"

    free = await events.client.put(path, json={"seats_per_row": 5}, headers=events.organizer())
    await events.hold(event["id"], token="t", seat_ids=["normal-4-5"])
    taken = await events.client.put(path, json={"seats_per_row": 4}, headers=events.organizer())

    assert free.status_code == 200
    assert "normal-4-5" in await events.seat_statuses(event["id"])
    assert taken.status_code == 409


async def test_a_price_change_applies_to_new_holds_only(events: Service) -> None:
    event = await events.create_event(price_vip="400.00")
    held = await events.hold(event["id"], token="before", seat_ids=["vip-1-1"])
    await events.client.put(
        f"/api/events/{event['id']}", json={"price_vip": "500"}, headers=events.organizer()
    )

    after = await events.hold(event["id"], token="after", seat_ids=["vip-1-2"])

    assert held.json()["seats"][0]["price"] == "400.00"
    assert after.json()["seats"][0]["price"] == "500.00"
    assert (await events.seat_statuses(event["id"]))["vip-1-1"] == "held"


# -- caching ----------------------------------------------------------------------------


async def test_reads_come_from_the_cache_and_an_update_invalidates_it_at_once(
    events: Service,
) -> None:
    event = await events.create_event(title="Original")
    path = f"/api/events/{event['id']}"
    assert (await events.event(event["id"]))["title"] == "Original"
    assert (await events.client.get("/api/events")).json()[0]["title"] == "Original"

    await _retitle_behind_the_cache(events, event["id"], "Behind the cache")
    assert (await events.event(event["id"]))["title"] == "Original"
    assert (await events.client.get("/api/events")).json()[0]["title"] == "Original"

    await events.client.put(path, json={"location": "Hawassa"}, headers=events.organizer())
    detail = await events.event(event["id"])
    listed = (await events.client.get("/api/events")).json()[0]
    assert (detail["title"], detail["location"]) == ("Behind the cache", "Hawassa")
    assert (listed["title"], listed["location"]) == ("Behind the cache", "Hawassa")


async def test_a_new_event_shows_in_the_cached_list_at_once(events: Service) -> None:
    await events.create_event(title="First")
    assert len((await events.client.get("/api/events")).json()) == 1

    await events.create_event(title="Second")

    titles = [e["title"] for e in (await events.client.get("/api/events")).json()]
    assert titles == ["Second", "First"]


async def test_availability_in_cached_reads_is_live(events: Service) -> None:
    event = await events.create_event(seats_vvip=4)
    assert (await events.event(event["id"]))["available_vvip"] == 4

    await events.hold(event["id"], token="t", ticket_class="vvip", count=3)

    assert (await events.event(event["id"]))["available_vvip"] == 1
    assert (await events.client.get("/api/events")).json()[0]["available_vvip"] == 1


async def test_internal_event_lookup_includes_the_organizer(events: Service) -> None:
    event = await events.create_event(user_id=55)

    response = await events.client.get(f"/internal/events/{event['id']}", headers=events.internal)
    missing = await events.client.get("/internal/events/98765", headers=events.internal)
    public_token = await events.client.get(
        f"/internal/events/{event['id']}", headers=bearer(events.settings, 55, "admin")
    )

    assert response.status_code == 200
    body = response.json()
    assert body["organizer_id"] == 55
    assert set(body) >= {"id", "price_vip", "seats_vip", "available_vip", "currency", "date"}
    assert missing.status_code == 404
    assert public_token.status_code == 401


async def test_concurrent_misses_of_a_cold_event_cache_share_their_postgres_load(
    events: Service,
) -> None:
    event = await events.create_event()
    await events.redis.delete(f"event:{{{event['id']}}}:cache")
    loads: list[str] = []

    def count_loads(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT events.id"):
            loads.append(statement)

    engine = events.app.state.engine.sync_engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", count_loads)
    try:
        responses = await asyncio.gather(
            *(events.client.get(f"/api/events/{event['id']}") for _ in range(50))
        )
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", count_loads)

    assert {r.status_code for r in responses} == {200}
    # One load per wave of misses (a late request may miss just before the store lands).
    assert 1 <= len(loads) <= 3, len(loads)


async def test_revoked_access_tokens_are_refused_on_either_kind_of_redis(gate: Service) -> None:
    # As auth_service revokes them: one token (logout), or all of a user's tokens issued
    # before a moment (a password change, a deleted user). Checked from the process's
    # mirror on a single Redis, with a pipeline on a cluster, whose slots part the two keys.
    def token(user_id: int) -> tuple[dict[str, str], dict[str, Any]]:
        issued, claims = issue_token(
            secret=gate.settings.jwt_secret,
            user_id=user_id,
            role="organizer",
            token_type="access",
            ttl=timedelta(minutes=15),
            extra={"iat_ms": time.time_ns() // 1_000_000},  # as auth_service signs them
        )
        return {"Authorization": f"Bearer {issued}"}, claims

    async def create(headers: dict[str, str]) -> int:
        response = await gate.client.post("/api/events", json=event_body(), headers=headers)
        return response.status_code

    logged_out, logged_out_claims = token(501)
    everywhere, everywhere_claims = token(502)
    untouched, _ = token(503)
    assert [await create(h) for h in (logged_out, everywhere, untouched)] == [201, 201, 201]

    await revoke_access_token(gate.redis, logged_out_claims["jti"], 60)
    await revoke_user_tokens(gate.redis, 502, everywhere_claims["iat_ms"] + 1, 60)
    assert [await create(h) for h in (logged_out, everywhere, untouched)] == [401, 401, 201]
    await asyncio.sleep(0.01)
    renewed, _ = token(502)  # issued after the moment: accepted
    assert await create(renewed) == 201
