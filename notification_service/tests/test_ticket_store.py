"""Tickets are rendered once per booking and kept (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from notification_service import ticket_store
from notification_service.settings import NotificationSettings
from notification_service.tests.pdf import qr_codes
from notification_service.tests.test_tickets import details
from notification_service.ticket_store import TicketStore
from notification_service.tickets import render_ticket_pdf
from ticketing_common.tickets import sign_ticket_code


@pytest.fixture
def store(pg: asyncpg.Pool, notification_settings: NotificationSettings) -> TicketStore:
    return TicketStore(pg, notification_settings)


def new_booking_id() -> int:
    return uuid.uuid4().int % 10**12 + 10**12


async def test_two_first_stores_of_one_booking_keep_one_pdf_and_both_serve_it(
    store: TicketStore,
) -> None:
    booking_id = new_booking_id()

    kept = await asyncio.gather(
        store.keep(booking_id, b"%PDF first"), store.keep(booking_id, b"%PDF second")
    )

    assert kept[0] == kept[1]
    assert kept[0] in (b"%PDF first", b"%PDF second")
    assert await store.stored(booking_id) == kept[0]


async def test_issuing_a_ticket_twice_renders_it_once(
    store: TicketStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    booking = details(booking_id=new_booking_id())
    renders: list[int] = []

    def counting(details: Any, *args: Any) -> bytes:
        renders.append(details.booking_id)
        return render_ticket_pdf(details, *args)

    monkeypatch.setattr(ticket_store, "render_ticket_pdf", counting)

    first = await store.issue(booking)
    again = await store.issue(booking)

    assert renders == [booking.booking_id]
    assert again == first
    secret = store.settings.ticket_signing_secret
    assert sorted(qr_codes(again)) == sorted(
        sign_ticket_code(booking.booking_id, booking.event_id, seat.seat_id, secret)
        for seat in booking.seats
    )
