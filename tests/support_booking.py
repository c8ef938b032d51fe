"""Bookings for journeys through the gateway: buyers, booking calls, and a look behind.

    buyer = await new_buyer(client, mailbox)                 # registered and verified
    response = await post_booking(client, buyer, event_id, ["vip-1-1"], key="k-1")
    booking = await wait_for_booking_status(client, buyer, booking_id, "confirmed")

Failure journeys also need what the gateway cannot show: ``booking_database()`` opens
booking_service's database of the test stack (to hold a lock on it, or read its refund
requests), and ``restart_booking_service`` starts the killed processes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from devstack import processes
from tests.conftest import TEST_STACK, Mailbox
from tests.support_auth import bearer, register_user

__all__ = [
    "Buyer",
    "booking_database",
    "get_booking",
    "kill_booking_service",
    "new_buyer",
    "post_booking",
    "restart_booking_service",
    "taken_seats",
    "wait_for_booking_status",
]

SERVICE = "booking_service"


@dataclass(frozen=True)
class Buyer:
    email: str
    user_id: int
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


async def new_buyer(client: httpx.AsyncClient, mailbox: Mailbox) -> Buyer:
    """A registered, email-verified, signed-in ``user``."""
    email, _, tokens = await register_user(client, mailbox)
    return Buyer(email, int(tokens["user_id"]), str(tokens["access_token"]))


async def post_booking(
    client: httpx.AsyncClient,
    buyer: Buyer,
    event_id: int,
    seats: list[str] | None = None,
    *,
    key: str | None = None,
    **body: Any,
) -> httpx.Response:
    """``POST /api/bookings`` for named seats, or for ``seat_count``/``ticket_class``."""
    payload: dict[str, Any] = {"event_id": event_id, **body}
    if seats is not None:
        payload["seats"] = [{"id": seat} for seat in seats]
    headers = dict(buyer.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post("/api/bookings", json=payload, headers=headers)


async def get_booking(
    client: httpx.AsyncClient, headers: dict[str, str], booking_id: int
) -> dict[str, Any]:
    response = await client.get(f"/api/bookings/{booking_id}", headers=headers)
    assert response.status_code == 200, response.text
    booking: dict[str, Any] = response.json()["booking"]
    return booking


async def wait_for_booking_status(
    client: httpx.AsyncClient, buyer: Buyer, booking_id: int, status: str, timeout: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        booking = await get_booking(client, buyer.headers, booking_id)
        if booking["status"] == status:
            return booking
        assert time.monotonic() < deadline, f"booking still {booking['status']}, not {status}"
        await asyncio.sleep(0.3)


async def taken_seats(
    client: httpx.AsyncClient, headers: dict[str, str], event_id: int
) -> dict[str, str]:
    """booking_service's view: ``{seat_id: "locked" | "sold"}`` of the event's active bookings."""
    response = await client.get(f"/api/bookings/event/{event_id}/seats", headers=headers)
    assert response.status_code == 200, response.text
    seats = response.json()["seats"]
    ids = [seat["seat_id"] for seat in seats]
    assert len(ids) == len(set(ids)), f"a seat is in two active bookings: {sorted(ids)}"
    return {seat["seat_id"]: seat["status"] for seat in seats}


@contextlib.asynccontextmanager
async def booking_database() -> AsyncIterator[asyncpg.Connection]:
    """A connection to booking_service's database of the test stack."""
    connection = await asyncpg.connect(
        host="127.0.0.1",
        port=5432,
        user="ticketing",
        password="ticketing",
        database=TEST_STACK.database(SERVICE),
    )
    try:
        yield connection
    finally:
        await connection.close()


def kill_booking_service() -> list[int]:
    """SIGKILL every booking_service replica of the test stack (no graceful shutdown)."""
    killed = []
    for replica in range(TEST_STACK.replicas):
        pid = processes.running_pid(TEST_STACK, SERVICE, replica)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    deadline = time.monotonic() + 10
    while any(processes.pid_alive(pid) for pid in killed):
        for pid in killed:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        assert time.monotonic() < deadline, "booking_service did not die"
        time.sleep(0.05)
    return killed


async def restart_booking_service(timeout: float = 60.0) -> None:
    """Start the stack's booking_service replicas again and wait until they are ready."""
    for replica in range(TEST_STACK.replicas):
        processes.start_service(TEST_STACK, SERVICE, replica)
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=3.0) as client:
        for replica in range(TEST_STACK.replicas):
            url = f"{TEST_STACK.service_url(SERVICE, replica)}/readyz"
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        break
                assert time.monotonic() < deadline, f"{SERVICE} not ready again"
                await asyncio.sleep(0.3)
