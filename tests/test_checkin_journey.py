"""Check-in at the door through the gateway on the running test stack (issue 19): a buyer
pays, reads the ticket codes the PDF prints, doors scan them at once, an offline door
uploads its scans."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from notification_service.tests.pdf import qr_codes
from tests.conftest import Mailbox
from tests.support_booking import (
    Buyer,
    get_booking,
    new_buyer,
    post_booking,
    wait_for_booking_status,
)
from tests.support_events import create_event, signed_headers
from tests.support_notification import TICKET_SIGNING_SECRET
from tests.support_payment import pay_booking
from ticketing_common.tickets import verify_ticket_code

pytestmark = pytest.mark.stack

CHECKIN = "/api/bookings/checkin"
SEATS = ["vip-1-1", "vip-1-2"]
DOORS = 10


async def paid_booking(
    client: httpx.AsyncClient, buyer: Buyer, organizer: dict[str, str]
) -> tuple[int, int]:
    """A confirmed booking of SEATS at a new event of ``organizer``: (event id, booking id)."""
    event = await create_event(client, headers=organizer)
    created = await post_booking(client, buyer, event["id"], SEATS)
    assert created.status_code == 201, created.text
    booking_id = int(created.json()["booking"]["id"])
    await pay_booking(client, booking_id, headers=buyer.headers)
    await wait_for_booking_status(client, buyer, booking_id, "confirmed")
    return int(event["id"]), booking_id


async def ticket_pdf(client: httpx.AsyncClient, buyer: Buyer, booking_id: int) -> bytes:
    response = await client.get(
        f"/api/notifications/tickets/{booking_id}/pdf", headers=buyer.headers
    )
    assert response.status_code == 200, response.text
    return response.content


async def test_doors_check_a_bought_ticket_in_once_and_an_offline_door_uploads_its_scans(
    client: httpx.AsyncClient,
    mailbox: Mailbox,
    new_client: Callable[..., httpx.AsyncClient],
) -> None:
    buyer = await new_buyer(client, mailbox)
    organizer = signed_headers()
    event_id, booking_id = await paid_booking(client, buyer, organizer)

    # The codes the booking lists are the ones its PDF's QR codes encode, one per seat.
    tickets = (await get_booking(client, buyer.headers, booking_id))["tickets"]
    codes = {ticket["seat_id"]: ticket["code"] for ticket in tickets}
    assert sorted(codes) == SEATS
    assert sorted(qr_codes(await ticket_pdf(client, buyer, booking_id))) == sorted(codes.values())
    for seat_id, code in codes.items():
        signed = verify_ticket_code(code, TICKET_SIGNING_SECRET)
        assert (signed.booking_id, signed.event_id, signed.seat_id) == (
            booking_id,
            event_id,
            seat_id,
        )

    # Ten doors, each its own client address, scan the first seat's code at once.
    doors = [new_client() for _ in range(DOORS)]
    try:
        scans = await asyncio.gather(
            *(
                door.post(
                    CHECKIN,
                    json={"code": codes["vip-1-1"], "event_id": event_id, "device": f"door-{n}"},
                    headers=organizer,
                )
                for n, door in enumerate(doors)
            )
        )
    finally:
        await asyncio.gather(*(door.aclose() for door in doors))
    assert [scan.status_code for scan in scans] == [200] * DOORS, [s.text for s in scans]
    answers = [scan.json() for scan in scans]
    assert sorted(a["result"] for a in answers) == ["already_checked_in"] * (DOORS - 1) + ["ok"]
    assert len({a["checked_in_at"] for a in answers}) == 1
    first_in = datetime.fromisoformat(answers[0]["checked_in_at"])

    refused = await client.post(CHECKIN, json={"code": codes["vip-1-1"]}, headers=buyer.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]
    assert await stats(client, organizer, event_id) == {
        "event_id": event_id,
        "checked_in": 1,
        "sold": 2,
    }

    # The door list an offline door takes along.
    door_list = await client.get(f"{CHECKIN}/{event_id}/list", headers=organizer)
    assert door_list.status_code == 200, door_list.text
    listed = {t["seat_id"]: t for t in door_list.json()["tickets"]}
    assert {seat: t["code"] for seat, t in listed.items()} == codes
    assert listed["vip-1-1"]["checked_in_at"] == answers[0]["checked_in_at"]
    assert listed["vip-1-2"]["checked_in_at"] is None

    # Its upload: the second seat twice, the first seat before the doors let it in.
    early = datetime.now(UTC) - timedelta(minutes=10)
    uploaded = await client.post(
        f"{CHECKIN}/batch",
        json={
            "event_id": event_id,
            "scans": [
                scan_of(codes["vip-1-2"], early + timedelta(minutes=2), "offline-1"),
                scan_of(codes["vip-1-2"], early + timedelta(minutes=1), "offline-2"),
                scan_of(codes["vip-1-1"], first_in - timedelta(minutes=1), "offline-1"),
            ],
        },
        headers=organizer,
    )
    assert uploaded.status_code == 200, uploaded.text
    results = [
        (s["result"], s["winner"], s["conflict"], datetime.fromisoformat(s["checked_in_at"]))
        for s in uploaded.json()["scans"]
    ]
    assert results == [
        ("already_checked_in", "other_scan", True, early + timedelta(minutes=1)),
        ("ok", "this_scan", True, early + timedelta(minutes=1)),
        ("ok", "this_scan", True, first_in - timedelta(minutes=1)),
    ]
    assert await stats(client, organizer, event_id) == {
        "event_id": event_id,
        "checked_in": 2,
        "sold": 2,
    }


async def test_the_gateway_takes_a_full_offline_upload_and_refuses_a_larger_one(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    """A thousand scans are well over the 64 KB other routes take."""
    buyer = await new_buyer(client, mailbox)
    organizer = signed_headers()
    event_id, booking_id = await paid_booking(client, buyer, organizer)
    [ticket, *_] = (await get_booking(client, buyer.headers, booking_id))["tickets"]
    start = datetime.now(UTC) - timedelta(hours=1)
    scans = [
        scan_of(ticket["code"], start + timedelta(seconds=n), f"scanner-{n:04d}")
        for n in range(1001)
    ]

    full = await client.post(
        f"{CHECKIN}/batch", json={"event_id": event_id, "scans": scans[:1000]}, headers=organizer
    )
    beyond = await client.post(
        f"{CHECKIN}/batch", json={"event_id": event_id, "scans": scans}, headers=organizer
    )

    assert len(full.request.content) > 64 * 1024
    assert full.status_code == 200, full.text
    assert [s["result"] for s in full.json()["scans"]].count("ok") == 1
    assert beyond.status_code == 422, beyond.text
    assert beyond.json()["code"] == "too_many_scans"


def scan_of(code: str, scanned_at: datetime, device: str) -> dict[str, Any]:
    return {"code": code, "scanned_at": scanned_at.isoformat(), "device": device}


async def stats(
    client: httpx.AsyncClient, organizer: dict[str, str], event_id: int
) -> dict[str, Any]:
    response = await client.get(f"{CHECKIN}/{event_id}/stats", headers=organizer)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
