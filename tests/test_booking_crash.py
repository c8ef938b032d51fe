"""booking_service dies between taking a hold and recording the booking.

The booking's INSERT is made to wait on a table lock held by the test, so the process is
killed exactly between the two steps of the saga: the hold exists in event_service, the
booking never will. The hold's TTL must free the seat by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Mailbox
from tests.support_booking import (
    booking_database,
    kill_booking_service,
    new_buyer,
    post_booking,
    restart_booking_service,
    taken_seats,
)
from tests.support_events import create_event, seat_statuses, signed_headers, wait_for_seat_status

pytestmark = pytest.mark.stack

HOLD_TTL_SECONDS = 30
SEAT = "vvip-1-2"


async def _wait_until_held(client: httpx.AsyncClient, event_id: int, timeout: float = 15) -> float:
    deadline = time.monotonic() + timeout
    while (await seat_statuses(client, event_id))[SEAT] != "held":
        assert time.monotonic() < deadline, "the booking never took its hold"
        await asyncio.sleep(0.1)
    return time.monotonic()


async def test_killing_booking_service_between_hold_and_insert_blocks_the_seat_only_for_the_ttl(
    client: httpx.AsyncClient, new_client: Callable[[], httpx.AsyncClient], mailbox: Mailbox
) -> None:
    buyer = await new_buyer(client, mailbox)
    event = await create_event(client, headers=signed_headers())

    async with booking_database() as db, new_client() as doomed_client:
        locked = db.transaction()
        await locked.start()
        try:
            await db.execute("LOCK TABLE bookings IN EXCLUSIVE MODE")
            doomed = asyncio.create_task(post_booking(doomed_client, buyer, event["id"], [SEAT]))
            held_at = await _wait_until_held(client, event["id"])
            await asyncio.sleep(0.3)  # the INSERT is now waiting on the lock
            assert not doomed.done()
            kill_booking_service()
        finally:
            await locked.rollback()
        answer = await doomed
    assert answer.status_code >= 500, answer.text

    await restart_booking_service()

    mine = await client.get("/api/bookings/user", headers=buyer.headers)
    assert mine.status_code == 200, mine.text
    assert mine.headers["X-Total-Count"] == "0"
    assert await taken_seats(client, buyer.headers, event["id"]) == {}
    # Within the TTL the orphaned hold still guards the seat ...
    if time.monotonic() - held_at < HOLD_TTL_SECONDS - 5:
        assert (await seat_statuses(client, event["id"]))[SEAT] == "held"
    # ... and once it runs out, nobody needs to release it: the seat is for sale again.
    remaining = HOLD_TTL_SECONDS - (time.monotonic() - held_at)
    await wait_for_seat_status(client, event["id"], SEAT, "available", timeout=remaining + 10)
    assert time.monotonic() - held_at <= HOLD_TTL_SECONDS + 10
    async with new_client() as next_client:
        next_buyer = await new_buyer(next_client, mailbox)
        rebooked = await post_booking(next_client, next_buyer, event["id"], [SEAT])
    assert rebooked.status_code == 201, rebooked.text
