"""An event of 50,000 seats stays fast to create, to map and to hold seats in.

Figures are printed (run with ``-s``) and recorded in docs/EVENT_SERVICE_PERF.md; the
bounds asserted here are loose enough for a busy CI machine and still catch an O(n) slip
on the hold path or an O(n^2) one anywhere.
"""

from __future__ import annotations

import statistics
import time

from event_service.tests.conftest import Service

LAYOUT = {"seats_normal": 40_000, "seats_vip": 8_000, "seats_vvip": 2_000, "seats_per_row": 50}
SOLD_BEFORE_REBUILD = 5_000


def _report(mode: str, what: str, seconds: list[float]) -> float:
    median = statistics.median(seconds)
    print(
        f"[{mode}] {what}: median {median * 1000:.1f} ms, "
        f"max {max(seconds) * 1000:.1f} ms over {len(seconds)} runs"
    )
    return median


async def test_fifty_thousand_seat_event_is_fast_to_create_map_and_hold(gate: Service) -> None:
    started = time.perf_counter()
    event = await gate.create_event(**LAYOUT)
    created = time.perf_counter() - started
    _report(gate.mode, "create 50,000-seat event", [created])
    assert event["available_normal"] == 40_000

    map_times = []
    for _ in range(5):
        started = time.perf_counter()
        response = await gate.client.get(f"/api/events/{event['id']}/seats")
        map_times.append(time.perf_counter() - started)
        assert response.status_code == 200
    assert len(response.json()["seats"]) == 50_000
    seat_map = _report(gate.mode, f"seat map ({len(response.content) // 1024} KiB)", map_times)

    hold_times = []
    for n in range(40):
        started = time.perf_counter()
        if n % 2:
            held = await gate.hold(event["id"], token=f"count-{n}", ticket_class="vip", count=4)
        else:
            seats = [f"normal-{400 + n}-{k}" for k in range(1, 5)]
            held = await gate.hold(event["id"], token=f"seats-{n}", seat_ids=seats)
        hold_times.append(time.perf_counter() - started)
        assert held.status_code == 201, held.text
    hold = _report(gate.mode, "hold 4 seats", hold_times)

    detail_times = []
    for _ in range(20):
        started = time.perf_counter()
        assert (await gate.client.get(f"/api/events/{event['id']}")).status_code == 200
        detail_times.append(time.perf_counter() - started)
    detail = _report(gate.mode, "event detail (cached, live availability)", detail_times)

    assert created < 3.0
    assert seat_map < 1.0
    assert hold < 0.05
    assert detail < 0.05


async def test_fifty_thousand_seat_gate_rebuilds_fast_after_redis_is_wiped(gate: Service) -> None:
    event = await gate.create_event(**LAYOUT)
    for n in range(SOLD_BEFORE_REBUILD // 100):
        token = f"bulk-{n}"
        held = await gate.hold(event["id"], token=token, ticket_class="normal", count=100)
        assert held.status_code == 201, held.text
        assert (await gate.confirm(event["id"], token, booking_id=n + 1)).status_code == 200
    await gate.redis.flushall()

    started = time.perf_counter()
    held = await gate.hold(event["id"], token="after-wipe", ticket_class="normal", count=4)
    rebuilt = time.perf_counter() - started

    _report(gate.mode, f"first hold after FLUSHALL ({SOLD_BEFORE_REBUILD} sold)", [rebuilt])
    assert held.status_code == 201
    assert held.json()["seats"][0]["seat_id"] == "normal-101-1"
    assert rebuilt < 3.0
