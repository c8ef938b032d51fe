"""The seat gate under the internal hold API, on a single Redis node and on Redis Cluster."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from event_service.seat_gate import gate_keys
from event_service.tests.conftest import Service

TEN_SEATS = [f"vip-1-{n}" for n in range(1, 11)]


async def test_two_hundred_overlapping_holds_leave_every_seat_with_exactly_one_token(
    gate: Service,
) -> None:
    event = await gate.create_event(seats_vip=10)
    rng = random.Random(42)
    wanted = {f"buyer-{i}": rng.sample(TEN_SEATS, rng.randint(1, 4)) for i in range(200)}

    responses = await asyncio.gather(
        *(gate.hold(event["id"], token=token, seat_ids=seats) for token, seats in wanted.items())
    )

    granted: dict[str, list[str]] = {}
    for (token, seats), response in zip(wanted.items(), responses, strict=True):
        assert response.status_code in (201, 409), response.text
        if response.status_code == 201:
            got = [seat["seat_id"] for seat in response.json()["seats"]]
            assert sorted(got) == sorted(seats), "a hold must get all its seats"
            granted[token] = got
        else:
            assert response.json()["code"] == "seats_unavailable"
    owners = Counter(seat for seats in granted.values() for seat in seats)
    assert all(count == 1 for count in owners.values()), owners
    assert granted, "somebody must have won"
    holds = await gate.redis.hgetall(gate_keys(event["id"])[1])
    assert holds == {seat: token for token, seats in granted.items() for seat in seats}
    statuses = await gate.seat_statuses(event["id"])
    assert {s for s in TEN_SEATS if statuses[s] == "held"} == set(owners)
    assert (await gate.event(event["id"]))["available_vip"] == 10 - len(owners)


async def test_two_hundred_count_holds_never_take_a_class_below_zero(gate: Service) -> None:
    event = await gate.create_event(seats_vvip=10)
    counts = [random.Random(i).randint(1, 3) for i in range(200)]

    responses = await asyncio.gather(
        *(
            gate.hold(event["id"], token=f"count-{i}", ticket_class="vvip", count=count)
            for i, count in enumerate(counts)
        )
    )

    granted = [r.json()["seats"] for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code == 409]
    assert len(granted) + len(refused) == 200
    seats = [seat["seat_id"] for hold in granted for seat in hold]
    assert len(seats) == len(set(seats)) <= 10
    assert all(seat["ticket_class"] == "vvip" for hold in granted for seat in hold)
    assert (await gate.event(event["id"]))["available_vvip"] == 10 - len(seats) >= 0
    assert all(r.json()["details"]["available"] >= 0 for r in refused)


async def test_a_hold_overlapping_a_taken_seat_gets_none_of_its_seats(gate: Service) -> None:
    event = await gate.create_event()
    assert (await gate.hold(event["id"], token="first", seat_ids=["vip-1-2"])).status_code == 201

    response = await gate.hold(
        event["id"], token="second", seat_ids=["vip-1-1", "vip-1-2", "vip-1-3"]
    )

    assert response.status_code == 409
    assert response.json()["details"] == {"seat_ids": ["vip-1-2"]}
    statuses = await gate.seat_statuses(event["id"])
    assert statuses["vip-1-1"] == statuses["vip-1-3"] == "available"


async def test_count_hold_takes_the_lowest_free_seats_and_prices_them(gate: Service) -> None:
    event = await gate.create_event(seats_normal=25, seats_per_row=10, price_normal="150.50")
    await gate.hold(event["id"], token="a", seat_ids=["normal-1-1", "normal-1-3"])

    response = await gate.hold(event["id"], token="b", ticket_class="normal", count=3)

    assert response.status_code == 201
    body = response.json()
    assert [s["seat_id"] for s in body["seats"]] == ["normal-1-2", "normal-1-4", "normal-1-5"]
    assert body["seats"][0] == {
        "seat_id": "normal-1-2",
        "ticket_class": "normal",
        "row": 1,
        "number": 2,
        "price": "150.50",
    }
    assert (body["token"], body["event_id"]) == ("b", event["id"])
    assert body["expires_at"]


async def test_count_hold_larger_than_what_is_left_is_refused_whole(gate: Service) -> None:
    event = await gate.create_event(seats_vvip=4)
    await gate.hold(event["id"], token="a", ticket_class="vvip", count=3)

    response = await gate.hold(event["id"], token="b", ticket_class="vvip", count=2)

    assert response.status_code == 409
    assert response.json()["details"]["available"] == 1
    assert (await gate.event(event["id"]))["available_vvip"] == 1


async def test_resending_the_same_token_and_request_returns_the_same_hold(gate: Service) -> None:
    event = await gate.create_event()
    first = await gate.hold(event["id"], token="retry", ticket_class="normal", count=2)

    again = await gate.hold(event["id"], token="retry", ticket_class="normal", count=2)
    other = await gate.hold(event["id"], token="retry", seat_ids=["vip-1-1"])

    assert again.status_code == 201
    assert again.json() == first.json()
    assert other.status_code == 409
    assert other.json()["code"] == "hold_token_in_use"
    assert (await gate.event(event["id"]))["available_normal"] == 18


async def test_a_hold_whose_ttl_passes_gives_its_seats_back_without_release(
    gate: Service,
) -> None:
    event = await gate.create_event(seats_vip=10)
    held = await gate.hold(event["id"], token="short", seat_ids=["vip-1-1"], ttl_seconds=1)
    await gate.hold(event["id"], token="short-count", ticket_class="vip", count=3, ttl_seconds=1)
    assert held.status_code == 201
    assert (await gate.event(event["id"]))["available_vip"] == 6

    await asyncio.sleep(1.2)

    assert (await gate.event(event["id"]))["available_vip"] == 10
    statuses = await gate.seat_statuses(event["id"])
    assert all(statuses[f"vip-1-{n}"] == "available" for n in range(1, 11))
    assert (await gate.hold(event["id"], token="next", seat_ids=["vip-1-1"])).status_code == 201


async def test_confirm_after_the_hold_expired_is_refused(gate: Service) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="late", seat_ids=["vvip-1-1"], ttl_seconds=1)
    await asyncio.sleep(1.2)

    response = await gate.confirm(event["id"], "late", booking_id=7)

    assert response.status_code == 409
    assert response.json()["code"] == "hold_expired"
    assert (await gate.seat_statuses(event["id"]))["vvip-1-1"] == "available"
    assert (await gate.event(event["id"]))["available_vvip"] == 4


async def test_release_by_a_foreign_token_frees_nothing(gate: Service) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="owner", seat_ids=["vip-1-1", "vip-1-2"])

    foreign = await gate.release(event["id"], "intruder")

    assert foreign.status_code == 204
    statuses = await gate.seat_statuses(event["id"])
    assert statuses["vip-1-1"] == statuses["vip-1-2"] == "held"
    taken = await gate.hold(event["id"], token="intruder", seat_ids=["vip-1-1"])
    assert taken.status_code == 409


async def test_release_by_the_holder_frees_its_seats_and_repeats_harmlessly(gate: Service) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="owner", seat_ids=["vip-1-1", "vip-1-2"])

    assert (await gate.release(event["id"], "owner")).status_code == 204
    assert (await gate.release(event["id"], "owner")).status_code == 204

    assert (await gate.event(event["id"]))["available_vip"] == 10
    assert (await gate.confirm(event["id"], "owner", booking_id=1)).status_code == 409


async def test_confirm_sells_the_seats_for_good(gate: Service) -> None:
    event = await gate.create_event(seats_vip=10)
    await gate.hold(event["id"], token="buyer", seat_ids=["vip-1-1", "vip-1-2"], ttl_seconds=1)

    confirmed = await gate.confirm(event["id"], "buyer", booking_id=11)
    await asyncio.sleep(1.2)  # past the hold's TTL: sold seats do not expire

    assert confirmed.status_code == 200
    assert [s["seat_id"] for s in confirmed.json()["seats"]] == ["vip-1-1", "vip-1-2"]
    statuses = await gate.seat_statuses(event["id"])
    assert statuses["vip-1-1"] == statuses["vip-1-2"] == "sold"
    assert (await gate.hold(event["id"], token="next", seat_ids=["vip-1-1"])).status_code == 409
    assert (await gate.release(event["id"], "buyer")).status_code == 204
    assert (await gate.seat_statuses(event["id"]))["vip-1-1"] == "sold"
    mine = await gate.client.get("/api/events/my", headers=gate.organizer())
    assert mine.json()[0]["sold_vip"] == 2
    assert mine.json()[0]["available_vip"] == 8


async def test_confirm_again_by_the_same_token_is_idempotent(gate: Service) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="buyer", ticket_class="vip", count=2)
    first = await gate.confirm(event["id"], "buyer", booking_id=12)

    again = await gate.confirm(event["id"], "buyer", booking_id=12)

    assert again.status_code == 200
    assert again.json() == first.json()
    mine = await gate.client.get("/api/events/my", headers=gate.organizer())
    assert mine.json()[0]["sold_vip"] == 2


async def test_a_confirmed_token_cannot_hold_again(gate: Service) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="used", seat_ids=["vip-1-1"])
    await gate.confirm(event["id"], "used", booking_id=13)

    response = await gate.hold(event["id"], token="used", seat_ids=["vip-1-1"])

    assert response.status_code == 409
    assert response.json()["code"] == "hold_token_in_use"


async def test_holds_of_unknown_seats_or_events_are_refused(gate: Service) -> None:
    event = await gate.create_event(seats_vip=10, seats_per_row=10)

    unknown = await gate.hold(event["id"], token="t", seat_ids=["vip-1-1", "vip-2-1", "gold-1-1"])
    no_event = await gate.hold(event["id"] + 1000, token="t", seat_ids=["vip-1-1"])
    both = await gate.client.post(
        f"/internal/events/{event['id']}/holds",
        json={"token": "t", "seat_ids": ["vip-1-1"], "ticket_class": "vip", "count": 1},
        headers=gate.internal,
    )
    duplicate = await gate.hold(event["id"], token="t", seat_ids=["vip-1-1", "vip-1-1"])
    bad_token = await gate.hold(event["id"], token="a|b", seat_ids=["vip-1-1"])
    too_many = await gate.hold(event["id"], token="t", ticket_class="normal", count=101)

    assert unknown.status_code == 400
    assert unknown.json()["details"] == {"seat_ids": ["vip-2-1", "gold-1-1"]}
    assert no_event.status_code == 404
    assert both.status_code == 400
    assert duplicate.status_code == 400
    assert bad_token.status_code == 400
    assert too_many.status_code == 400
    assert (await gate.event(event["id"]))["available_vip"] == 10


async def test_hold_paths_need_the_service_token(gate: Service) -> None:
    event = await gate.create_event()
    base = f"/internal/events/{event['id']}"
    calls: list[tuple[str, str, Any]] = [
        ("POST", f"{base}/holds", {"token": "t", "seat_ids": ["vip-1-1"]}),
        ("DELETE", f"{base}/holds/t", None),
        ("POST", f"{base}/holds/t/confirm", {"booking_id": 1}),
        ("GET", base, None),
    ]
    for headers in ({}, {"X-Service-Token": "wrong"}, gate.organizer()):
        for method, path, body in calls:
            response = await gate.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, headers)
    assert (await gate.event(event["id"]))["available_vip"] == 10


async def test_every_key_of_an_event_carries_its_hash_tag(gate: Service) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="a", seat_ids=["vip-1-1"])
    await gate.hold(event["id"], token="b", ticket_class="normal", count=2)
    await gate.confirm(event["id"], "a", booking_id=1)
    await gate.client.get(f"/api/events/{event['id']}")

    keys = [key async for key in gate.redis.scan_iter(match="event:*")]

    assert keys
    assert all(key.startswith(f"event:{{{event['id']}}}:") for key in keys), keys
    if gate.mode == "cluster":
        slots = {await gate.redis.cluster_keyslot(key) for key in keys}
        assert len(slots) == 1


async def test_seats_of_an_event_that_has_started_cannot_be_held(gate: Service) -> None:
    event = await gate.create_event()
    engine = create_async_engine(gate.settings.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE events SET date = now() - interval '1 minute' WHERE id = :id"),
                {"id": event["id"]},
            )
    finally:
        await engine.dispose()
    await gate.redis.flushall()  # drop the cached event

    response = await gate.hold(event["id"], token="late", ticket_class="normal", count=1)

    assert response.status_code == 409
    assert response.json()["code"] == "event_started"


async def test_a_hold_after_its_callers_deadline_holds_nothing(gate: Service) -> None:
    event = await gate.create_event()
    now_ms = int(time.time() * 1000)

    late = await gate.hold(event["id"], token="late", seat_ids=["vip-1-1"], not_after_ms=now_ms - 1)
    in_time = await gate.hold(
        event["id"], token="in-time", seat_ids=["vip-1-1"], not_after_ms=now_ms + 60_000
    )

    assert late.status_code == 503
    assert late.json()["code"] == "hold_too_late"
    assert in_time.status_code == 201, in_time.text


async def test_the_seat_gate_itself_refuses_a_hold_after_its_deadline(gate: Service) -> None:
    # The script decides by Redis's clock: a request that passed the service's own check
    # but reached Redis after the deadline holds nothing either.
    event = await gate.create_event()
    seat_gate = gate.app.state.event_resources.gate
    now_ms = int(time.time() * 1000)

    late = await seat_gate.hold(
        event["id"], token="t1", ttl_ms=60_000, fingerprint="seats:vip-1-1",
        seat_ids=["vip-1-1"], not_after_ms=now_ms - 1,
    )  # fmt: skip
    in_time = await seat_gate.hold(
        event["id"], token="t2", ttl_ms=60_000, fingerprint="seats:vip-1-1",
        seat_ids=["vip-1-1"], not_after_ms=now_ms + 60_000,
    )  # fmt: skip
    without = await seat_gate.hold(
        event["id"], token="t3", ttl_ms=60_000, fingerprint="count:vip:1",
        ticket_class="vip", count=1,
    )  # fmt: skip

    assert late.status == "too_late"
    assert (in_time.status, in_time.seat_ids) == ("held", ["vip-1-1"])
    assert (without.status, without.seat_ids) == ("held", ["vip-1-2"])
