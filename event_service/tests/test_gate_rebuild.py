"""Redis loses everything (FLUSHALL on this suite's own Redis): PostgreSQL still decides."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from event_service.seat_gate import GateLayout, RestoredHold
from event_service.tests.conftest import Service


def _rebuilds() -> float:
    return REGISTRY.get_sample_value("event_seat_gate_rebuilds_total") or 0.0


async def _sell(gate: Service, event_id: int, token: str, booking_id: int, **hold: object) -> None:
    held = await gate.hold(event_id, token=token, **hold)
    assert held.status_code == 201, held.text
    confirmed = await gate.confirm(event_id, token, booking_id)
    assert confirmed.status_code == 200, confirmed.text


async def test_after_flushall_sold_seats_are_refused_and_figures_match_postgres(
    gate: Service,
) -> None:
    event = await gate.create_event(seats_normal=20, seats_vip=10, seats_vvip=4)
    await _sell(gate, event["id"], "sold-vip", 1, seat_ids=["vip-1-1", "vip-1-2", "vip-1-3"])
    await _sell(gate, event["id"], "sold-normal", 2, ticket_class="normal", count=2)
    await gate.hold(event["id"], token="pending", seat_ids=["vvip-1-1"])

    await gate.redis.flushall()
    assert [key async for key in gate.redis.scan_iter(match="*")] == []

    mine = (await gate.client.get("/api/events/my", headers=gate.organizer())).json()
    sold = {c: mine[0][f"sold_{c}"] for c in ("normal", "vip", "vvip")}
    assert sold == {"normal": 2, "vip": 3, "vvip": 0}
    detail = await gate.event(event["id"])
    assert detail["available_normal"] == 20 - sold["normal"]
    assert detail["available_vip"] == 10 - sold["vip"]
    assert detail["available_vvip"] == 4
    refused = await gate.hold(event["id"], token="again", seat_ids=["vip-1-2", "vip-1-4"])
    assert refused.status_code == 409
    assert refused.json()["details"] == {"seat_ids": ["vip-1-2"]}
    statuses = await gate.seat_statuses(event["id"])
    assert [s for s, status in statuses.items() if status == "sold"] == [
        "normal-1-1",
        "normal-1-2",
        "vip-1-1",
        "vip-1-2",
        "vip-1-3",
    ]
    assert statuses["vvip-1-1"] == "available"  # holds went with Redis; bookings guard them
    assert (await gate.event(event["id"]))["available_vip"] == 7


async def test_confirmed_tokens_survive_the_rebuild_and_lost_holds_do_not(gate: Service) -> None:
    event = await gate.create_event()
    await _sell(gate, event["id"], "bought", 1, seat_ids=["vip-1-1"])
    await gate.hold(event["id"], token="pending", seat_ids=["vip-1-2"])

    await gate.redis.flushall()

    again = await gate.confirm(event["id"], "bought", booking_id=1)
    lost = await gate.confirm(event["id"], "pending", booking_id=2)
    assert again.status_code == 200
    assert [s["seat_id"] for s in again.json()["seats"]] == ["vip-1-1"]
    assert lost.status_code == 409


async def test_a_burst_after_flushall_rebuilds_the_gate_once(gate: Service) -> None:
    event = await gate.create_event(seats_vip=10)
    await _sell(gate, event["id"], "bought", 1, seat_ids=["vip-1-1"])
    await gate.redis.flushall()
    rebuilds_before = _rebuilds()

    responses = await asyncio.gather(
        *(gate.hold(event["id"], token=f"t{i}", seat_ids=[f"vip-1-{i}"]) for i in range(1, 11))
    )

    assert _rebuilds() - rebuilds_before == 1
    assert [r.status_code for r in responses] == [409] + [201] * 9
    assert (await gate.event(event["id"]))["available_vip"] == 0


async def test_an_event_without_a_gate_is_rebuilt_for_its_seat_map(gate: Service) -> None:
    event = await gate.create_event(seats_normal=3, seats_vip=0, seats_vvip=0)
    await _sell(gate, event["id"], "bought", 1, seat_ids=["normal-1-2"])
    await gate.redis.flushall()

    statuses = await gate.seat_statuses(event["id"])

    assert statuses == {"normal-1-1": "available", "normal-1-2": "sold", "normal-1-3": "available"}


async def test_a_late_rebuild_never_wipes_a_gate_built_meanwhile(gate: Service) -> None:
    event = await gate.create_event()
    await gate.hold(event["id"], token="meanwhile", seat_ids=["vip-1-1"])
    layout = GateLayout(10, {"normal": 20, "vip": 10, "vvip": 4})

    rebuilt = await gate.app.state.event_resources.gate.build(event["id"], layout)

    assert rebuilt is False
    assert (await gate.seat_statuses(event["id"]))["vip-1-1"] == "held"


async def test_a_rebuild_restores_live_holds_but_not_lapsed_ones_or_sold_seats(
    gate: Service,
) -> None:
    """The holds booking_db knows come back with their own expiry; a sale outranks a hold."""
    event = await gate.create_event()
    await _sell(gate, event["id"], "bought", 1, seat_ids=["vip-1-3"])
    now = datetime.now(UTC)
    restored = [
        RestoredHold("paying", ["vip-1-1", "vip-1-2"], now + timedelta(minutes=10)),
        RestoredHold("lapsed", ["vip-1-4"], now - timedelta(seconds=1)),
        RestoredHold("overlapping", ["vip-1-3", "vip-1-5"], now + timedelta(minutes=10)),
    ]
    seat_gate = gate.app.state.event_resources.gate

    async def source(event_id: int) -> list[RestoredHold]:
        return restored if event_id == event["id"] else []

    seat_gate.use_holds_source(source)
    await gate.redis.flushall()

    statuses = await gate.seat_statuses(event["id"])
    assert [statuses[f"vip-1-{n}"] for n in range(1, 6)] == [
        "held",
        "held",
        "sold",
        "available",
        "held",
    ]
    # The restored hold is the same hold: its token confirms it, another token can't take it.
    assert (await gate.hold(event["id"], token="other", seat_ids=["vip-1-2"])).status_code == 409
    confirmed = await gate.confirm(event["id"], "paying", booking_id=2)
    assert confirmed.status_code == 200, confirmed.text
    assert sorted(s["seat_id"] for s in confirmed.json()["seats"]) == ["vip-1-1", "vip-1-2"]
