"""An on-sale through the gateway: a hundred buyers at ten seats in the same instant."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_STACK, Mailbox, gateway_client
from tests.support_auth import admin_token, bearer
from tests.support_booking import Buyer, new_buyer, taken_seats
from tests.support_events import create_event, seat_statuses, signed_headers

pytestmark = pytest.mark.stack

BUYERS = 100
SEATS = [f"vip-1-{n}" for n in range(1, 11)]
SIGN_UPS_AT_ONCE = 20

Racer = tuple[httpx.AsyncClient, Buyer]


@pytest.fixture(scope="module")
async def racers(mailbox: Mailbox) -> AsyncIterator[list[Racer]]:
    """A hundred signed-up buyers, each with a gateway client of its own address."""
    clients = [gateway_client() for _ in range(BUYERS)]
    gate = asyncio.Semaphore(SIGN_UPS_AT_ONCE)

    async def sign_up(client: httpx.AsyncClient) -> Buyer:
        async with gate:
            return await new_buyer(client, mailbox)

    try:
        buyers = await asyncio.gather(*(sign_up(client) for client in clients))
        yield list(zip(clients, buyers, strict=True))
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


async def _race(
    racers: list[Racer], body_for: Callable[[int], dict[str, Any]]
) -> list[httpx.Response]:
    """Every buyer posts at the same moment (connections are already open)."""
    start = asyncio.Event()

    async def attempt(index: int, client: httpx.AsyncClient, buyer: Buyer) -> httpx.Response:
        await start.wait()
        return await client.post("/api/bookings", json=body_for(index), headers=buyer.headers)

    tasks = [
        asyncio.create_task(attempt(i, client, buyer)) for i, (client, buyer) in enumerate(racers)
    ]
    await asyncio.sleep(0.1)
    start.set()
    return await asyncio.gather(*tasks)


async def _event_bookings(client: httpx.AsyncClient, event_id: int) -> list[dict[str, Any]]:
    token = await admin_token(client)
    response = await client.get(
        "/api/bookings/all", params={"event_id": event_id, "limit": 200}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    bookings: list[dict[str, Any]] = response.json()["bookings"]
    assert response.headers["X-Total-Count"] == str(len(bookings))
    return bookings


def _assert_ten_winners(responses: list[httpx.Response]) -> list[str]:
    codes = Counter(response.status_code for response in responses)
    assert codes == {201: 10, 409: 90}, codes
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == "seats_unavailable"
    won = [
        seat["seat_id"]
        for response in responses
        if response.status_code == 201
        for seat in response.json()["booking"]["seat_list"]
    ]
    assert sorted(won) == sorted(SEATS), won
    return won


async def test_hundred_buyers_racing_for_ten_seats_get_exactly_ten_bookings(
    racers: list[Racer], client: httpx.AsyncClient
) -> None:
    event = await create_event(client, headers=signed_headers(), seats_vip=10)

    responses = await _race(
        racers,
        lambda i: {"event_id": event["id"], "seats": [{"id": SEATS[i % len(SEATS)]}]},
    )

    _assert_ten_winners(responses)
    bookings = await _event_bookings(client, event["id"])
    assert len(bookings) == 10
    assert {b["status"] for b in bookings} == {"pending"}
    assert len({b["user_id"] for b in bookings}) == 10
    taken = await taken_seats(client, racers[0][1].headers, event["id"])
    assert taken == dict.fromkeys(SEATS, "locked")
    statuses = await seat_statuses(client, event["id"])
    assert sorted(s for s, status in statuses.items() if status != "available") == sorted(SEATS)


async def test_hundred_buyers_racing_for_ten_general_seats_get_exactly_ten_bookings(
    racers: list[Racer], client: httpx.AsyncClient
) -> None:
    event = await create_event(client, headers=signed_headers(), seats_vip=10, seats_vvip=0)

    responses = await _race(
        racers, lambda _: {"event_id": event["id"], "seat_count": 1, "ticket_class": "vip"}
    )

    _assert_ten_winners(responses)
    bookings = await _event_bookings(client, event["id"])
    assert len(bookings) == 10
    taken = await taken_seats(client, racers[0][1].headers, event["id"])
    assert sorted(taken) == sorted(SEATS)


def _requests_counted(metrics: str, method: str, path: str) -> float:
    """The sum of ``http_requests_total`` for one route over every status."""
    prefix = f'http_requests_total{{method="{method}",path="{path}",'
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(prefix)
    )


@pytest.mark.skipif(
    TEST_STACK.replicas < 2, reason="the stack runs one process per service (REPLICAS=1)"
)
async def test_the_races_were_served_by_every_replica(racers: list[Racer]) -> None:
    """With REPLICAS=2 (scripts/test's second pass) nginx spread the races above over both
    processes of booking_service, and booking_service spread its holds over event_service's."""
    routes = {
        "booking_service": ("POST", "/api/bookings"),
        "event_service": ("POST", "/internal/events/{event_id}/holds"),
    }
    async with httpx.AsyncClient(timeout=10) as direct:
        for service, (method, path) in routes.items():
            for replica in range(TEST_STACK.replicas):
                response = await direct.get(f"{TEST_STACK.service_url(service, replica)}/metrics")
                assert response.status_code == 200
                served = _requests_counted(response.text, method, path)
                assert served > 0, f"{service} replica {replica} served no {method} {path}"
