"""Events for journeys through the gateway: import these instead of calling /api/events by hand.

``create_event`` posts through whatever client it is given; the client carries the
organizer's ``Authorization`` header (or pass ``headers=``). An organizer from
``support_auth.approved_organizer`` is the real path; ``signed_headers`` signs an access
token with the stack's ``JWT_SECRET`` instead, for tests that are not about accounts
(event_service trusts any valid organizer token: only approved organizers can log in).

    event = await create_event(organizer_client, seats_vip=4, price_vip="500.00")
    statuses = await seat_statuses(client, event["id"])      # {"vip-1-1": "available", ...}
    await wait_for_seat_status(client, event["id"], "vip-1-1", "sold")

Shapes (DESIGN §4 and ORIGINAL_API.md): ``POST /api/events`` → 201 ``{message, event}``;
``GET /api/events`` → a bare array with ``X-Total-Count``; ``GET /api/events/{id}`` → the
event itself; ``GET /api/events/{id}/seats`` → ``{event_id, seats_per_row, available,
held, sold, seats: [{seat_id, ticket_class, row, number, status}]}``. Prices are sent as
decimal strings or numbers and answered as JSON numbers.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import TEST_STACK
from ticketing_common.security import SERVICE_TOKEN_HEADER, issue_token
from ticketing_common.settings import ServiceSettings

__all__ = [
    "create_event",
    "event_payload",
    "event_service_url",
    "get_event",
    "internal_headers",
    "seat_statuses",
    "signed_headers",
    "wait_for_seat_status",
]

# Far above the ids auth_service hands out in a test run, and different per process.
_signed_user_ids = itertools.count(900_000_000 + uuid.uuid4().int % 1_000_000 * 100)


def event_payload(**overrides: Any) -> dict[str, Any]:
    """A valid ``POST /api/events`` body: 20 normal, 10 VIP, 4 VVIP seats, 10 per row."""
    body: dict[str, Any] = {
        "title": f"Journey Night {uuid.uuid4().hex[:6]}",
        "description": "An evening on the test stack.",
        "date": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "location": "Addis Ababa",
        "price_normal": "150.00",
        "price_vip": "400.00",
        "price_vvip": "900.00",
        "seats_normal": 20,
        "seats_vip": 10,
        "seats_vvip": 4,
        "seats_per_row": 10,
    }
    body.update(overrides)
    return body


async def create_event(
    organizer_client: httpx.AsyncClient,
    *,
    headers: dict[str, str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Create an event (``event_payload`` plus ``overrides``); returns the event dict."""
    response = await organizer_client.post(
        "/api/events", json=event_payload(**overrides), headers=headers
    )
    assert response.status_code == 201, f"create event: {response.status_code} {response.text}"
    event: dict[str, Any] = response.json()["event"]
    return event


async def get_event(client: httpx.AsyncClient, event_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/events/{event_id}")
    assert response.status_code == 200, response.text
    event: dict[str, Any] = response.json()
    return event


async def seat_statuses(client: httpx.AsyncClient, event_id: int) -> dict[str, str]:
    """``{seat_id: "available" | "held" | "sold"}`` from the public seat map."""
    response = await client.get(f"/api/events/{event_id}/seats")
    assert response.status_code == 200, response.text
    return {seat["seat_id"]: seat["status"] for seat in response.json()["seats"]}


async def wait_for_seat_status(
    client: httpx.AsyncClient, event_id: int, seat_id: str, status: str, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        current = (await seat_statuses(client, event_id))[seat_id]
        if current == status:
            return
        assert time.monotonic() < deadline, f"{seat_id} still {current}, not {status}"
        await asyncio.sleep(0.3)


def signed_headers(user_id: int | None = None, role: str = "organizer") -> dict[str, str]:
    """An access token signed with the stack's JWT_SECRET, without going through auth."""
    token, _ = issue_token(
        secret=ServiceSettings().jwt_secret,
        user_id=user_id if user_id is not None else next(_signed_user_ids),
        role=role,
        token_type="access",
        ttl=timedelta(minutes=15),
    )
    return {"Authorization": f"Bearer {token}"}


def internal_headers() -> dict[str, str]:
    """The service token: for calling a service directly, never through the gateway."""
    return {SERVICE_TOKEN_HEADER: ServiceSettings().service_token}


def event_service_url() -> str:
    """event_service of the test stack, straight (not through the gateway)."""
    return TEST_STACK.service_url("event_service")
