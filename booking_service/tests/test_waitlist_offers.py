"""Waiting lists' offers (event_service/waitlist.py, issue 19) against the real
booking_service: rounds racing as several replicas would, and a replica that died
between asking for an offer and recording it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from booking_service.tests.conftest import Actor, Stack
from event_service.models import Event, WaitlistEntry
from event_service.resources import resources_of
from event_service.waitlist import offer_once
from ticketing_common.db import utcnow
from ticketing_common.internal.clients import BookingsApi
from ticketing_common.internal.models import WaitlistOfferRequest
from ticketing_common.messaging.schema import outbox_messages
from ticketing_common.security import SERVICE_TOKEN_HEADER


async def _join(stack: Stack, buyer: Actor, event_id: int, seat_count: int = 1) -> dict[str, Any]:
    response = await stack.events.post(
        f"/api/events/{event_id}/waitlist",
        json={"ticket_class": "vvip", "seat_count": seat_count},
        headers=buyer.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _entries(stack: Stack, event_id: int) -> list[WaitlistEntry]:
    async with stack.event_app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.event_id == event_id)
            .order_by(WaitlistEntry.id)
        )
        return list(rows)


async def _offers_published(stack: Stack, event_id: int) -> list[dict[str, Any]]:
    """The ``waitlist_offered`` messages event_service wrote to its outbox for the event."""
    async with stack.event_app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(outbox_messages.c.envelope).where(
                outbox_messages.c.routing_key == "waitlist_offered"
            )
        )
        payloads = [envelope["payload"] for envelope in rows]
    return [p for p in payloads if p["event_id"] == event_id]


async def _sold_out_with_waiters(
    stack: Stack, seats: int, waiters: int
) -> tuple[int, Any, list[Actor]]:
    event_id = await stack.create_event(seats_vvip=seats)
    holder = stack.actor()
    booking = await stack.booked(holder, event_id, [f"vvip-1-{n}" for n in range(1, seats + 1)])
    buyers = [stack.actor() for _ in range(waiters)]
    for buyer in buyers:
        await _join(stack, buyer, event_id)
    return event_id, booking, buyers


async def test_seats_freed_at_once_are_offered_once_however_many_replicas_offer(
    stack: Stack,
) -> None:
    event_id, booking, buyers = await _sold_out_with_waiters(stack, seats=2, waiters=5)
    newcomer = stack.actor()

    await stack.fail(booking)  # both seats free at once
    made = await asyncio.gather(*(offer_once(stack.event_app) for _ in range(5)))

    assert sum(made) == 2
    entries = await _entries(stack, event_id)
    assert [e.status for e in entries] == ["offered", "offered", "waiting", "waiting", "waiting"]
    assert [e.user_id for e in entries[:2]] == [buyers[0].user_id, buyers[1].user_id]
    offered = [await stack.booking(e.booking_id) for e in entries[:2] if e.booking_id]
    seats = sorted(s["seat_id"] for b in offered for s in b["seats"])
    assert seats == ["vvip-1-1", "vvip-1-2"]
    assert {b["user_id"] for b in offered} == {buyers[0].user_id, buyers[1].user_id}
    assert all(b["status"] == "pending" for b in offered)
    assert await offer_once(stack.event_app) == 0  # nothing more is free

    # Nobody else can take the seats: they are held; and the class stays kept.
    taken = await stack.book(newcomer, event_id, ticket_class="vvip", seat_count=1)
    assert taken.status_code == 409, taken.text
    offers = await _offers_published(stack, event_id)
    assert sorted(o["booking_id"] for o in offers) == sorted(b["id"] for b in offered)


async def test_a_replica_that_died_mid_offer_is_taken_over_with_the_same_booking(
    stack: Stack,
) -> None:
    event_id, booking, buyers = await _sold_out_with_waiters(stack, seats=1, waiters=2)
    await stack.fail(booking)
    entry = (await _entries(stack, event_id))[0]
    # A replica claimed the entry and booking_service made the offer's booking; then the
    # replica died before recording it.
    async with stack.event_app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(WaitlistEntry)
            .where(WaitlistEntry.id == entry.id)
            .values(status="offering", claimed_at=utcnow() - timedelta(minutes=5))
        )
    bookings = BookingsApi.of(stack.event_app.state.http, stack.event_app.state.settings)
    first_try = await bookings.offer(
        WaitlistOfferRequest(
            key=f"waitlist-{entry.id}",
            user_id=buyers[0].user_id,
            event_id=event_id,
            ticket_class="vvip",
            seat_count=1,
            hold_ttl_seconds=600,
        )
    )
    assert first_try.outcome == "offered"
    assert first_try.booking is not None

    assert await offer_once(stack.event_app) == 1

    entries = await _entries(stack, event_id)
    assert entries[0].status == "offered"
    assert entries[0].booking_id == first_try.booking.id
    assert entries[1].status == "waiting"


async def test_a_larger_capacity_goes_to_the_waiting_list_first(stack: Stack) -> None:
    organizer = stack.actor("organizer")
    event_id = await stack.create_event(organizer, seats_vvip=1)
    await stack.booked(stack.actor(), event_id, ["vvip-1-1"])
    waiter, newcomer = stack.actor(), stack.actor()
    await _join(stack, waiter, event_id)

    grown = await stack.events.put(
        f"/api/events/{event_id}", json={"seats_vvip": 2}, headers=organizer.headers
    )
    assert grown.status_code == 200, grown.text
    # the new seat is the list's: a newcomer is refused before any offer is made
    refused = await stack.book(newcomer, event_id, ["vvip-1-2"])
    assert refused.status_code == 409, refused.text
    assert refused.json()["details"]["waitlist"] is True

    assert await offer_once(stack.event_app) == 1
    entry = (await _entries(stack, event_id))[0]
    assert entry.status == "offered"
    assert entry.booking_id is not None
    offered = await stack.booking(entry.booking_id)
    assert [s["seat_id"] for s in offered["seats"]] == ["vvip-1-2"]


async def test_an_offer_needs_no_queue_pass_and_a_started_event_closes_its_lists(
    stack: Stack,
) -> None:
    event_id = await stack.create_event(seats_vvip=1, queue_enabled=True)
    hold = {"token": "wl-pass-check", "ticket_class": "vvip", "count": 1, "user_id": 7}
    internal = {SERVICE_TOKEN_HEADER: stack.settings.service_token}
    url = f"/internal/events/{event_id}/holds"
    without = await stack.events.post(url, json=hold, headers=internal)
    assert without.status_code == 428, without.text
    offer = await stack.events.post(url, json={**hold, "for_waitlist": True}, headers=internal)
    assert offer.status_code == 201, offer.text

    waiter = stack.actor()
    await _join(stack, waiter, event_id)
    async with stack.event_app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Event).where(Event.id == event_id).values(date=utcnow() - timedelta(hours=1))
        )
    await resources_of(stack.event_app).cache.invalidate(event_id)
    assert await offer_once(stack.event_app) == 0
    entry = (await _entries(stack, event_id))[0]
    assert entry.status == "refused"
    assert entry.reason == "the event has started"
