"""The on-sale's waiting room (issue 20): places, fairness, admission, the pass, closing."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from event_service.schemas import EventRecord
from event_service.service import event_record
from event_service.tests.conftest import Service, bearer
from event_service.waiting_room import WaitingRoom, admit_once


def _soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def _join(service: Service, event_id: int, user_id: int) -> httpx.Response:
    return await service.client.post(
        f"/api/events/{event_id}/queue", headers=bearer(service.settings, user_id, "user")
    )


async def _me(service: Service, event_id: int, user_id: int) -> dict[str, Any]:
    response = await service.client.get(
        f"/api/events/{event_id}/queue/me", headers=bearer(service.settings, user_id, "user")
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _admitted(service: Service, event_id: int, user_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        place = await _me(service, event_id, user_id)
        if place["status"] == "admitted" or time.monotonic() > deadline:
            return place
        await asyncio.sleep(0.2)


async def _record(service: Service, event_id: int) -> EventRecord:
    return await event_record(service.app.state.event_resources, event_id)


async def test_the_room_is_set_on_create_and_update_and_shown(gate: Service) -> None:
    onsale = _soon(3600)
    event = await gate.create_event(
        queue_enabled=True, onsale_at=onsale, queue_admit_per_minute=120
    )
    assert event["queue_enabled"] is True
    assert event["queue_admit_per_minute"] == 120
    assert datetime.fromisoformat(event["onsale_at"]) == datetime.fromisoformat(onsale)
    assert (await gate.event(event["id"]))["queue_enabled"] is True

    updated = await gate.client.put(
        f"/api/events/{event['id']}",
        json={"queue_enabled": False, "queue_admit_per_minute": None},
        headers=gate.organizer(),
    )

    assert updated.status_code == 200, updated.text
    public = await gate.event(event["id"])
    assert public["queue_enabled"] is False
    assert public["queue_admit_per_minute"] is None


async def test_room_settings_are_checked(gate: Service) -> None:
    for body in (
        {"queue_admit_per_minute": 0},
        {"queue_admit_per_minute": 60_001},
        {"queue_enabled": "often"},
        {"onsale_at": (datetime.now(UTC) + timedelta(days=400)).isoformat()},  # after the date
    ):
        response = await gate.client.post(
            "/api/events",
            json={**_event_body(), "queue_enabled": True, **body},
            headers=gate.organizer(),
        )
        assert response.status_code == 400, (body, response.text)
    event = await gate.create_event()
    late = await gate.client.put(
        f"/api/events/{event['id']}",
        json={"onsale_at": (datetime.now(UTC) + timedelta(days=400)).isoformat()},
        headers=gate.organizer(),
    )
    assert late.status_code == 400, late.text


def _event_body() -> dict[str, Any]:
    from event_service.tests.conftest import event_body

    return event_body()


async def test_an_event_without_a_room_refuses_a_place_and_books_without_a_pass(
    gate: Service,
) -> None:
    event = await gate.create_event()

    joined = await _join(gate, event["id"], 7)

    assert joined.status_code == 409
    assert joined.json()["code"] == "queue_not_enabled"
    held = await gate.hold(event["id"], token="t1", seat_ids=["vip-1-1"], user_id=7)
    assert held.status_code == 201, held.text


async def test_early_arrivals_are_shuffled_and_later_ones_queue_in_order(gate: Service) -> None:
    event = await gate.create_event(
        queue_enabled=True, onsale_at=_soon(1.5), queue_admit_per_minute=1
    )
    early = list(range(1001, 1013))
    for user in early:
        joined = await _join(gate, event["id"], user)
        assert joined.status_code == 201, joined.text
        assert joined.json()["status"] == "waiting"
    again = await _join(gate, event["id"], early[0])
    assert again.status_code == 200  # one place per account
    await asyncio.sleep(1.6)
    await admit_once(gate.app)  # a tick after the sale opened (the app's own may lag)
    late = [2001, 2002, 2003]
    for user in late:
        joined = await _join(gate, event["id"], user)
        assert joined.status_code == 201
        assert joined.json()["status"] in ("queued", "admitted")

    places = {user: await _me(gate, event["id"], user) for user in early + late}

    # the first in line went in when the sale opened; everyone else has a place
    admitted = [u for u, p in places.items() if p["status"] == "admitted"]
    assert len(admitted) == 1
    assert admitted[0] in early
    position = {u: p["position"] for u, p in places.items() if p["status"] == "queued"}
    early_positions = [position[u] for u in early if u in position]
    assert sorted(early_positions) == list(range(1, 12))
    assert early_positions != sorted(early_positions)  # 1 in 11! that a shuffle keeps order
    assert [position[u] for u in late] == [12, 13, 14]
    assert places[late[-1]]["estimated_wait_s"] > places[late[0]]["estimated_wait_s"]
    assert places[late[0]]["poll_after_s"] >= 1


async def test_an_admitted_buyer_holds_with_its_pass_and_nobody_without_one(
    gate: Service,
) -> None:
    event = await gate.create_event(queue_enabled=True, queue_admit_per_minute=60_000)
    assert (await _join(gate, event["id"], 501)).status_code == 201
    place = await _admitted(gate, event["id"], 501)
    assert place["status"] == "admitted", place
    assert place["pass"]
    assert datetime.fromisoformat(place["pass_expires_at"]) > datetime.now(UTC)
    assert (await _me(gate, event["id"], 501))["pass"] == place["pass"]  # the same pass

    missing = await gate.hold(event["id"], token="no-pass", seat_ids=["vip-1-1"], user_id=501)
    foreign = await gate.hold(
        event["id"], token="foreign", seat_ids=["vip-1-1"], user_id=502, queue_pass=place["pass"]
    )
    forged = await gate.hold(
        event["id"], token="forged", seat_ids=["vip-1-1"], user_id=501, queue_pass="x.y.z"
    )
    held = await gate.hold(
        event["id"], token="mine", seat_ids=["vip-1-1"], user_id=501, queue_pass=place["pass"]
    )

    assert missing.status_code == 428
    assert missing.json()["code"] == "queue_pass_required"
    assert foreign.status_code == 403
    assert foreign.json()["code"] == "queue_pass_invalid"
    assert forged.status_code == 403
    assert held.status_code == 201, held.text
    assert (await gate.seat_statuses(event["id"]))["vip-1-1"] == "held"  # refusals held nothing

    other = await gate.create_event(queue_enabled=True)
    elsewhere = await gate.hold(
        other["id"], token="elsewhere", seat_ids=["vip-1-1"], user_id=501, queue_pass=place["pass"]
    )
    assert elsewhere.status_code == 403


async def test_admission_keeps_its_rate_however_many_replicas_tick(gate: Service) -> None:
    event = await gate.create_event(queue_enabled=True, queue_admit_per_minute=600)  # 10 a second
    started = time.monotonic()  # the app's own loop admits from the first join on
    for user in range(3001, 3101):
        assert (await _join(gate, event["id"], user)).status_code == 201

    # five replicas' ticks, racing, besides the app's own loop
    for _ in range(10):
        await asyncio.gather(*(admit_once(gate.app) for _ in range(5)))
        await asyncio.sleep(0.1)

    async def admitted() -> int:
        stats = await gate.client.get(f"/api/events/{event['id']}/queue", headers=gate.organizer())
        assert stats.status_code == 200, stats.text
        assert stats.json()["length"] == 100
        return int(stats.json()["admitted"])

    before = await admitted()
    statuses = [(await _me(gate, event["id"], u))["status"] for u in range(3001, 3101)]
    after = await admitted()
    elapsed = time.monotonic() - started
    assert 1 <= before <= after <= 1 + 10 * (elapsed + 1)  # the first goes in at once
    assert before <= statuses.count("admitted") <= after


async def test_only_the_organizer_sees_the_room(gate: Service) -> None:
    event = await gate.create_event(queue_enabled=True)

    stranger = await gate.client.get(
        f"/api/events/{event['id']}/queue", headers=bearer(gate.settings, 9, "user")
    )
    admin = await gate.client.get(
        f"/api/events/{event['id']}/queue", headers=bearer(gate.settings, 9, "admin")
    )
    nobody = await gate.client.get(f"/api/events/{event['id']}/queue/me")

    assert stranger.status_code == 403
    assert admin.status_code == 200
    assert nobody.status_code == 401
    assert (
        await gate.client.get(
            f"/api/events/{event['id']}/queue/me", headers=bearer(gate.settings, 9, "user")
        )
    ).status_code == 404


async def test_a_lapsed_pass_is_refused_and_its_buyer_joins_again_at_the_end(
    gate: Service,
) -> None:
    event = await gate.create_event(queue_enabled=True, queue_admit_per_minute=1)
    room = WaitingRoom(
        gate.redis, secret=gate.settings.jwt_secret, pass_ttl_seconds=1, default_rate=60
    )
    record = await _record(gate, event["id"])
    await room.join(record, 601)
    await room.tick(record)
    first = await room.place(record, 601)
    assert first is not None
    assert first.status == "admitted"
    await room.join(record, 602)
    await asyncio.sleep(2.1)

    lapsed = await room.place(record, 601)
    assert lapsed is not None
    assert lapsed.status == "expired"
    refused = await gate.hold(
        event["id"], token="late", seat_ids=["vip-1-1"], user_id=601, queue_pass=first.queue_pass
    )
    assert refused.status_code == 403

    again = await room.join(record, 601)
    waiting = await room.place(record, 602)
    assert again.new
    assert waiting is not None
    assert again.position is not None
    assert waiting.position is not None
    assert again.position > waiting.position  # at the end, behind who waited meanwhile


async def test_the_order_survives_a_restart(gate: Service) -> None:
    event = await gate.create_event(queue_enabled=True, queue_admit_per_minute=1)
    for user in range(4001, 4011):
        await _join(gate, event["id"], user)
    before = {u: (await _me(gate, event["id"], u))["position"] for u in range(4001, 4011)}

    restarted = WaitingRoom(
        gate.redis, secret=gate.settings.jwt_secret, pass_ttl_seconds=300, default_rate=1
    )
    record = await _record(gate, event["id"])
    after = {}
    for user in range(4001, 4011):
        place = await restarted.place(record, user)
        assert place is not None
        after[user] = place.position

    assert after == before


async def test_the_room_closes_when_the_event_sells_out(gate: Service) -> None:
    event = await gate.create_event(
        queue_enabled=True,
        queue_admit_per_minute=60_000,
        seats_normal=0,
        seats_vip=2,
        seats_vvip=0,
    )
    await _join(gate, event["id"], 701)
    place = await _admitted(gate, event["id"], 701)
    await _join(gate, event["id"], 702)
    await gate.client.put(
        f"/api/events/{event['id']}", json={"queue_admit_per_minute": 1}, headers=gate.organizer()
    )
    held = await gate.hold(
        event["id"],
        token="all",
        ticket_class="vip",
        count=2,
        user_id=701,
        queue_pass=place["pass"],
    )
    assert held.status_code == 201, held.text
    assert (await gate.confirm(event["id"], "all", booking_id=77)).status_code == 200

    await admit_once(gate.app)

    waiting = await _me(gate, event["id"], 702)
    assert waiting["status"] in ("sold_out", "admitted")
    stats = await gate.client.get(f"/api/events/{event['id']}/queue", headers=gate.organizer())
    assert stats.json()["status"] == "sold_out"


async def test_a_booking_without_a_pass_is_refused_before_any_seat_is_held(
    gate: Service,
) -> None:
    event = await gate.create_event(
        queue_enabled=True, queue_admit_per_minute=60_000, seats_normal=0, seats_vip=1, seats_vvip=0
    )
    await _join(gate, event["id"], 801)  # this process has read the event now
    place = await _admitted(gate, event["id"], 801)
    held = await gate.hold(
        event["id"], token="all", seat_ids=["vip-1-1"], user_id=801, queue_pass=place["pass"]
    )
    assert held.status_code == 201, held.text

    # every seat is held: still a 428 (no hold tried), not a 409
    refused = await gate.hold(event["id"], token="none", seat_ids=["vip-1-1"], user_id=802)

    assert refused.status_code == 428, refused.text


async def test_a_room_turned_off_lets_bookings_through_at_once(gate: Service) -> None:
    event = await gate.create_event(queue_enabled=True)
    await _join(gate, event["id"], 811)  # this process knows the event with its room on
    turned_off = await gate.client.put(
        f"/api/events/{event['id']}", json={"queue_enabled": False}, headers=gate.organizer()
    )
    assert turned_off.status_code == 200, turned_off.text

    held = await gate.hold(event["id"], token="free", seat_ids=["vip-1-1"], user_id=812)

    assert held.status_code == 201, held.text


async def test_the_room_admits_nobody_while_every_seat_is_held(gate: Service) -> None:
    event = await gate.create_event(
        queue_enabled=True, queue_admit_per_minute=60_000, seats_normal=0, seats_vip=2, seats_vvip=0
    )
    await _join(gate, event["id"], 821)
    place = await _admitted(gate, event["id"], 821)
    held = await gate.hold(
        event["id"],
        token="both",
        ticket_class="vip",
        count=2,
        user_id=821,
        queue_pass=place["pass"],
    )
    assert held.status_code == 201, held.text
    await admit_once(gate.app)  # a tick that sees nothing free
    for user in (822, 823, 824):
        await _join(gate, event["id"], user)

    await asyncio.sleep(1.5)  # the app's own ticks: nothing to sell, nobody admitted
    for _ in range(3):
        await admit_once(gate.app)
    waiting = [await _me(gate, event["id"], u) for u in (822, 823, 824)]
    assert [p["status"] for p in waiting] == ["queued"] * 3

    assert (await gate.release(event["id"], "both")).status_code == 204
    await admit_once(gate.app)  # seats free again: admission resumes at the rate
    await asyncio.sleep(0.2)
    await admit_once(gate.app)
    assert (await _me(gate, event["id"], 822))["status"] == "admitted"


async def test_a_room_turned_off_and_on_again_admits_its_queue(gate: Service) -> None:
    event = await gate.create_event(queue_enabled=True, queue_admit_per_minute=1)
    await _join(gate, event["id"], 831)
    await _join(gate, event["id"], 832)
    for body in ({"queue_enabled": False}, {"queue_enabled": True}):
        await gate.client.put(f"/api/events/{event['id']}", json=body, headers=gate.organizer())
        await admit_once(gate.app)  # off: the ticks forget the room; on: they take it back

    await gate.client.put(
        f"/api/events/{event['id']}",
        json={"queue_admit_per_minute": 60_000},
        headers=gate.organizer(),
    )

    assert (await _admitted(gate, event["id"], 832))["status"] == "admitted"


async def test_a_new_event_starts_with_an_empty_room_whatever_redis_kept(gate: Service) -> None:
    first = await gate.create_event(queue_enabled=True, queue_admit_per_minute=1)
    # What an earlier event of the next id left behind (a database recreated beside Redis).
    stale = WaitingRoom(
        gate.redis, secret=gate.settings.jwt_secret, pass_ttl_seconds=300, default_rate=1
    )
    ghost = (await _record(gate, first["id"])).model_copy(update={"id": first["id"] + 1})
    await stale.join(ghost, 901)

    event = await gate.create_event(queue_enabled=True, queue_admit_per_minute=1)
    assert event["id"] == ghost.id

    joined = await _join(gate, event["id"], 901)
    assert joined.status_code == 201, joined.text  # a new place, not the ghost's
    stats = await gate.client.get(f"/api/events/{event['id']}/queue", headers=gate.organizer())
    assert stats.json()["length"] == 1
