"""The seat map is a cached rendition per seat version: ETag, 304, gzip, and never stale."""

from __future__ import annotations

import asyncio
import gzip
import json
import random
from typing import Any

import httpx

from event_service.seat_gate import gate_keys
from event_service.seat_map import SeatMaps, render_full
from event_service.tests.conftest import Service

SEATS = "/api/events/{}/seats"


async def _map(service: Service, event_id: int, **headers: str) -> httpx.Response:
    return await service.client.get(SEATS.format(event_id), headers=headers)


def _statuses(response: httpx.Response) -> dict[str, str]:
    return {seat["seat_id"]: seat["status"] for seat in response.json()["seats"]}


async def test_an_unchanged_map_answers_304_to_its_etag(events: Service) -> None:
    event = await events.create_event()
    first = await _map(events, event["id"])
    etag = first.headers["etag"]

    again = await _map(events, event["id"], **{"If-None-Match": etag})
    strong = await _map(events, event["id"], **{"If-None-Match": etag.removeprefix("W/")})
    listed = await _map(events, event["id"], **{"If-None-Match": f'"other", {etag}'})
    other = await _map(events, event["id"], **{"If-None-Match": '"seats-1-0"'})

    assert first.status_code == 200
    assert etag.startswith('W/"seats-')
    assert first.headers["cache-control"] == "no-cache"
    assert again.status_code == strong.status_code == listed.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert other.status_code == 200
    assert other.json() == first.json()


async def test_every_change_of_a_seat_makes_a_new_version_at_once(events: Service) -> None:
    event = await events.create_event()
    seen = [(await _map(events, event["id"])).headers["etag"]]

    async def look(expected: dict[str, str]) -> None:
        response = await _map(events, event["id"], **{"If-None-Match": seen[-1]})
        assert response.status_code == 200, "a changed map answered 304"
        statuses = _statuses(response)
        assert {seat: statuses[seat] for seat in expected} == expected
        body = response.json()
        assert body["held"] == sum(s == "held" for s in statuses.values())
        assert body["sold"] == sum(s == "sold" for s in statuses.values())
        assert body["available"] == len(statuses) - body["held"] - body["sold"]
        seen.append(response.headers["etag"])

    await events.hold(event["id"], token="a", seat_ids=["vip-1-1", "vip-1-2"])
    await look({"vip-1-1": "held", "vip-1-2": "held"})
    await events.confirm(event["id"], "a", booking_id=1)
    await look({"vip-1-1": "sold", "vip-1-2": "sold"})
    await events.hold(event["id"], token="b", ticket_class="normal", count=3)
    await look({"normal-1-1": "held", "normal-1-3": "held", "normal-1-4": "available"})
    await events.release(event["id"], "b")
    await look({"normal-1-1": "available"})
    await events.hold(event["id"], token="c", seat_ids=["vvip-1-1"], ttl_seconds=1)
    await look({"vvip-1-1": "held"})
    await asyncio.sleep(1.1)  # the hold runs out; nobody releases it
    await look({"vvip-1-1": "available"})

    assert len(set(seen)) == len(seen)


async def test_a_patched_map_is_the_map_rendered_afresh(gate: Service) -> None:
    """Random holds, releases, sales and expiries: the rendition patched change by change
    equals a full rendering of the gate, byte for byte."""
    event = await gate.create_event(seats_normal=300, seats_vip=60, seats_vvip=12)
    layout = [f"normal-{r}-{n}" for r in range(1, 31) for n in range(1, 11)]
    layout += [f"vip-{r}-{n}" for r in range(1, 7) for n in range(1, 11)]
    layout += [f"vvip-{r}-{n}" for r in range(1, 3) for n in range(1, 11)][:12]
    maps: SeatMaps = gate.app.state.event_resources.seat_maps
    shuffle = random.Random(17)
    held: list[str] = []
    for step in range(60):
        action = shuffle.choice(["hold", "hold", "count", "release", "confirm"])
        token = f"t{step}"
        if action == "hold":
            seats = shuffle.sample(layout, 3)
            if (await gate.hold(event["id"], token=token, seat_ids=seats)).status_code == 201:
                held.append(token)
        elif action == "count":
            ticket_class = shuffle.choice(["normal", "vip"])
            ttl = shuffle.choice([1, 900])
            body = {"token": token, "ticket_class": ticket_class, "count": 2, "ttl_seconds": ttl}
            if (await gate.hold(event["id"], **body)).status_code == 201:
                held.append(token)
        elif held and action == "release":
            await gate.release(event["id"], held.pop(shuffle.randrange(len(held))))
        elif held:
            await gate.confirm(event["id"], held.pop(shuffle.randrange(len(held))), step)
        if step % 3 == 0:
            await asyncio.sleep(shuffle.choice([0, 0, 0.6]))
            patched = await maps.current(event["id"])
            update = await gate.app.state.event_resources.gate.seat_map_update(event["id"])
            fresh = render_full(event["id"], update)
            assert update.version == patched.version
            assert patched.body == fresh.body, f"step {step}"
            assert json.loads(gzip.decompress(patched.gzipped)) == json.loads(fresh.body)


async def test_a_rendition_the_change_log_no_longer_reaches_is_rendered_in_full(
    events: Service,
) -> None:
    event = await events.create_event()
    before = await _map(events, event["id"])
    await events.hold(event["id"], token="a", seat_ids=["vip-1-1"])
    # As if the log had been trimmed past the rendition's version.
    loaded, version_key = gate_keys(event["id"])[0], gate_keys(event["id"])[10]
    version = await events.redis.get(version_key)
    await events.redis.hset(loaded, "changes_since", version)

    after = await _map(events, event["id"])

    assert after.headers["etag"] != before.headers["etag"]
    assert _statuses(after)["vip-1-1"] == "held"


async def test_a_map_after_a_redis_wipe_has_a_version_never_served_before(
    events: Service,
) -> None:
    event = await events.create_event()
    await events.hold(event["id"], token="a", seat_ids=["vip-1-1"])
    await events.confirm(event["id"], "a", booking_id=1)
    before = await _map(events, event["id"])
    await events.redis.flushall()

    after = await _map(events, event["id"], **{"If-None-Match": before.headers["etag"]})

    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert _statuses(after)["vip-1-1"] == "sold"


async def test_a_new_layout_makes_a_new_version(events: Service) -> None:
    event = await events.create_event(seats_vvip=4)
    before = await _map(events, event["id"])

    await events.client.put(
        f"/api/events/{event['id']}", json={"seats_vvip": 6}, headers=events.organizer()
    )
    after = await _map(events, event["id"], **{"If-None-Match": before.headers["etag"]})

    assert after.status_code == 200
    assert len(after.json()["seats"]) == len(before.json()["seats"]) + 2
    assert _statuses(after)["vvip-1-6"] == "available"


async def test_the_map_is_gzipped_for_clients_that_take_it(events: Service) -> None:
    event = await events.create_event(seats_normal=2000)
    plain = await _map(events, event["id"], **{"Accept-Encoding": "identity"})
    refused = await _map(events, event["id"], **{"Accept-Encoding": "gzip;q=0, identity"})
    zipped = await events.client.send(
        events.client.build_request(
            "GET", SEATS.format(event["id"]), headers={"Accept-Encoding": "br, gzip;q=0.8"}
        ),
        stream=True,
    )
    raw = b"".join([chunk async for chunk in zipped.aiter_raw()])

    assert "content-encoding" not in plain.headers
    assert "content-encoding" not in refused.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert len(raw) * 5 < len(plain.content)
    assert json.loads(gzip.decompress(raw)) == plain.json()
    assert zipped.headers["etag"] == plain.headers["etag"]


async def test_concurrent_requests_share_the_gates_answer(events: Service) -> None:
    event = await events.create_event()
    await _map(events, event["id"])
    gate = events.app.state.event_resources.gate
    asked = 0
    ask = gate.seat_map_update

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal asked
        asked += 1
        await asyncio.sleep(0.05)
        return await ask(*args, **kwargs)

    gate.seat_map_update = counted
    try:
        responses = await asyncio.gather(*(_map(events, event["id"]) for _ in range(20)))
    finally:
        del gate.seat_map_update

    assert {r.status_code for r in responses} == {200}
    assert asked <= 2  # the first request's turn, and one for all who came during it


async def test_a_missing_event_has_no_map(events: Service) -> None:
    maps: SeatMaps = events.app.state.event_resources.seat_maps

    response = await _map(events, 987_654)

    assert response.status_code == 404
    assert 987_654 not in maps._entries


async def test_a_gate_built_before_seat_versions_existed_gets_one(events: Service) -> None:
    event = await events.create_event()
    loaded, version_key, changes_key = (gate_keys(event["id"])[i] for i in (0, 10, 11))
    await events.redis.delete(version_key, changes_key)
    await events.redis.hdel(loaded, "changes_since")

    await events.hold(event["id"], token="a", seat_ids=["vip-1-1"])
    first = await _map(events, event["id"])
    await events.hold(event["id"], token="b", seat_ids=["vip-1-2"])
    second = await _map(events, event["id"], **{"If-None-Match": first.headers["etag"]})

    assert int(await events.redis.get(version_key)) > 1_000_000_000_000_000
    assert _statuses(first)["vip-1-1"] == "held"
    assert second.status_code == 200
    assert _statuses(second)["vip-1-2"] == "held"
