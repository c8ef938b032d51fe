"""A 50,000-seat event on the running stack: through nginx and uvicorn, over real HTTP.

Run with ``-s`` to see the figures recorded in docs/EVENT_SERVICE_PERF.md. Holds go
straight to event_service with the service token, as booking_service sends them.
"""

from __future__ import annotations

import statistics
import time

import httpx
import pytest

from tests.support_events import create_event, event_service_url, internal_headers, signed_headers

pytestmark = pytest.mark.stack


def _report(what: str, seconds: list[float]) -> float:
    median = statistics.median(seconds)
    print(f"[stack] {what}: median {median * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms")
    return median


async def test_fifty_thousand_seat_event_through_the_gateway(client: httpx.AsyncClient) -> None:
    started = time.perf_counter()
    event = await create_event(
        client,
        headers=signed_headers(),
        seats_normal=40_000,
        seats_vip=8_000,
        seats_vvip=2_000,
        seats_per_row=50,
    )
    created = _report("create 50,000-seat event (gateway)", [time.perf_counter() - started])

    map_times = []
    for _ in range(3):
        started = time.perf_counter()
        response = await client.get(f"/api/events/{event['id']}/seats")
        map_times.append(time.perf_counter() - started)
        assert response.status_code == 200
    assert len(response.json()["seats"]) == 50_000
    seat_map = _report(f"seat map, {len(response.content) // 1024} KiB (gateway)", map_times)

    hold_times = []
    holds = f"{event_service_url()}/internal/events/{event['id']}/holds"
    async with httpx.AsyncClient(headers=internal_headers(), timeout=10) as service:
        for n in range(30):
            seats = [f"normal-{500 + n}-{k}" for k in range(1, 5)]
            started = time.perf_counter()
            held = await service.post(holds, json={"token": f"large-{n}", "seat_ids": seats})
            hold_times.append(time.perf_counter() - started)
            assert held.status_code == 201, held.text
    hold = _report("hold 4 seats (service port)", hold_times)

    assert created < 3.0
    assert seat_map < 2.0
    assert hold < 0.05
