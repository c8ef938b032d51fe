"""Back from a restart without failing the next buyers (issue 21).

PostgreSQL, Redis and RabbitMQ are restarted together on the running stack. Once every
service's ``/readyz`` is green again, the next buyers come: one purchase with payment
(book, initialize, pay, verify, confirmed) and a seat race of every buyer for one seat.
Not one of their requests may fail: ready means the next request finds live connections
in every pool (SQLAlchemy, asyncpg, Redis, the internal HTTP client, the broker).

It restarts the machine's shared servers, so it runs in the full drill set only
(``scripts/drills``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.conftest import gateway_client
from tests.reliability.drill_faults import (
    rabbitmq_stopped,
    restart_postgres,
    restart_redis_wiped,
    wait_stack_ready,
)
from tests.reliability.drill_plugin import DrillKit, drill_kit_fixture, full_set_only  # noqa: F401
from tests.reliability.drills import DrillBuyer
from tests.support_events import create_event, signed_headers

pytestmark = [pytest.mark.stack, pytest.mark.drill, pytest.mark.timeout(600), full_set_only]

#: how long the purchase waits for its booking to be confirmed (the saga, after payment)
CONFIRM_WAIT_SECONDS = 60.0


class Tally:
    """Every answer the buyers got after readiness: a failure is a 5xx or no answer."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.failures: list[str] = []

    async def call(
        self, buyer: DrillBuyer, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        await buyer.pace()
        route = f"{method} {path.split('?')[0]}"
        try:
            response = await buyer.client.request(method, path, headers=buyer.headers, **kwargs)
        except httpx.TransportError as exc:
            self.failures.append(f"{route}: {type(exc).__name__}")
            return None
        self.statuses[str(response.status_code)] += 1
        if response.status_code >= 500:
            self.failures.append(f"{route}: {response.status_code} {response.text[:200]}")
        return response


async def _event(**seats: int) -> dict[str, Any]:
    async with gateway_client() as organizer:
        return await create_event(
            organizer,
            headers=signed_headers(),
            title=f"Recovery {uuid.uuid4().hex[:6]}",
            seats_per_row=10,
            **seats,
        )


async def _purchase(tally: Tally, buyer: DrillBuyer, event_id: int) -> str:
    """Book one seat, pay for it, verify, and wait for the confirmation; the final state."""
    booked = await tally.call(
        buyer, "POST", "/api/bookings", json={"event_id": event_id, "seats": [{"id": "vip-1-1"}]}
    )
    if booked is None or booked.status_code != 201:
        return f"booking answered {booked.status_code if booked else 'nothing'}"
    booking_id = booked.json()["booking"]["id"]
    opened = await tally.call(
        buyer, "POST", "/api/payments/initialize", json={"booking_id": booking_id}
    )
    if opened is None or opened.status_code != 200:
        return f"initialize answered {opened.status_code if opened else 'nothing'}"
    tx_ref = opened.json()["tx_ref"]
    paid = await tally.call(buyer, "POST", f"/api/payments/checkout/{tx_ref}/pay")
    if paid is None or paid.status_code != 303:
        return f"pay answered {paid.status_code if paid else 'nothing'}"
    deadline = time.monotonic() + CONFIRM_WAIT_SECONDS
    while time.monotonic() < deadline:
        verified = await tally.call(buyer, "GET", f"/api/payments/verify/{tx_ref}")
        booking = await tally.call(buyer, "GET", f"/api/bookings/{booking_id}")
        if verified is None or booking is None:
            return "no answer"
        if booking.json()["booking"]["status"] == "confirmed":
            return "confirmed"
        await asyncio.sleep(0.5)
    return "not confirmed in time"


async def _seat_race(tally: Tally, buyers: list[DrillBuyer], event_id: int) -> Counter[int]:
    """Every buyer at once for one seat: one 201, the rest 409."""

    async def try_seat(buyer: DrillBuyer) -> int:
        response = await tally.call(
            buyer,
            "POST",
            "/api/bookings",
            json={"event_id": event_id, "seats": [{"id": "vip-1-2"}]},
        )
        return response.status_code if response is not None else 0

    return Counter(await asyncio.gather(*(try_seat(b) for b in buyers)))


async def test_after_postgres_redis_and_rabbitmq_restart_the_next_buyers_meet_no_failure(
    drill_kit: DrillKit,
) -> None:
    buyers = drill_kit.buyers
    for buyer in buyers:
        await buyer.refresh_if_stale()
    # Warm every pool: a purchase before the restart leaves connections in all of them.
    warm = Tally()
    before = await _event(seats_normal=10, seats_vip=10, seats_vvip=0)
    assert await _purchase(warm, buyers[0], before["id"]) == "confirmed", warm.failures

    async with rabbitmq_stopped():
        await asyncio.gather(restart_postgres(down_for=2.0), restart_redis_wiped())
    await wait_stack_ready()

    after = Tally()
    event = await _event(seats_normal=10, seats_vip=10, seats_vvip=0)
    outcome = await _purchase(after, buyers[1], event["id"])
    race = await _seat_race(after, buyers[2:], event["id"])

    print(f"\nrecovery drill: after readiness {dict(after.statuses)}, failures {after.failures}")
    assert after.failures == [], f"requests failed after readiness: {after.failures}"
    assert outcome == "confirmed"
    assert race == Counter({201: 1, 409: len(buyers) - 3})
