"""Reading bookings: one booking for whoever may see it, an event's taken seats, and the
live holds a rebuilt seat gate restores (the lists are :mod:`booking_service.queries`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from booking_service.errors import BookingNotFound
from booking_service.models import Booking, BookingSeat, BookingStatus
from ticketing_common.db import release_connection, utcnow
from ticketing_common.errors import Forbidden
from ticketing_common.internal.clients import EventsApi
from ticketing_common.internal.models import BookedSeatView, BookingView, LiveHold
from ticketing_common.security import Principal, Role


async def _load_booking(session: AsyncSession, booking_id: int) -> Booking:
    booking = await session.get(Booking, booking_id)
    if booking is None:
        raise BookingNotFound()
    return booking


# A booking with its seats in one round trip, for ``GET /internal/bookings/{id}``: payment's
# initialize asks it whenever the booking's ``booking_created`` has not reached it yet,
# which under an on-sale's load is often.
_BOOKING_VIEW = """
SELECT b.id, b.user_id, b.event_id, b.organizer_id, b.status, b.total_amount, b.currency,
       b.expires_at, b.created_at, b.confirmed_at, b.cancelled_at, b.hold_token,
       b.payment_tx_ref, b.event_title, b.event_starts_at, b.venue, b.buyer_email,
       seats.ids, seats.classes, seats.seat_rows, seats.numbers, seats.prices
FROM bookings b
CROSS JOIN LATERAL (
    SELECT array_agg(s.seat_id ORDER BY s.id) AS ids,
           array_agg(s.ticket_class ORDER BY s.id) AS classes,
           array_agg(s.row ORDER BY s.id) AS seat_rows,
           array_agg(s.number ORDER BY s.id) AS numbers,
           array_agg(s.price ORDER BY s.id) AS prices
    FROM booking_seats s WHERE s.booking_id = b.id
) AS seats
WHERE b.id = $1
"""


async def booking_view(pg: asyncpg.Pool, booking_id: int) -> BookingView:
    """What other services read of a booking, without the ORM (one statement)."""
    row = await pg.fetchrow(_BOOKING_VIEW, booking_id)
    if row is None:
        raise BookingNotFound()
    fields = dict(row.items())
    columns = ("ids", "classes", "seat_rows", "numbers", "prices")
    seats = zip(*(fields.pop(column) or () for column in columns), strict=True)
    return BookingView(
        **fields,
        seats=[
            BookedSeatView(seat_id=i, ticket_class=c, row=r, number=n, price=p)
            for i, c, r, n, p in seats
        ],
    )


async def booking_for_reader(
    session: AsyncSession, principal: Principal, booking_id: int
) -> Booking:
    """The booking, if the caller is its owner, the organizer of its event, or an admin."""
    booking = await _load_booking(session, booking_id)
    if not _may_read(principal, booking):
        raise Forbidden("only the booking's owner, the event's organizer or an admin may see it")
    return booking


def _may_read(principal: Principal, booking: Booking) -> bool:
    if principal.is_admin or principal.user_id == booking.user_id:
        return True
    return principal.role is Role.ORGANIZER and principal.user_id == booking.organizer_id


async def ensure_event_organizer(
    session: AsyncSession, events: EventsApi, principal: Principal, event_id: int
) -> None:
    """Only the event's own organizer (or an admin) reads its sales.

    Any booking of the event names its organizer; only an event nobody booked yet is
    asked of event_service.
    """
    if principal.is_admin:
        return
    if await event_organizer_id(session, events, event_id) != principal.user_id:
        raise Forbidden("only the event's organizer may see its sales")


async def event_organizer_id(session: AsyncSession, events: EventsApi, event_id: int) -> int:
    """The event's organizer: any booking of the event names it; only an event nobody
    booked yet is asked of event_service (the session's transaction ends first)."""
    organizer_id = await session.scalar(
        select(Booking.organizer_id).where(Booking.event_id == event_id).limit(1)
    )
    if organizer_id is None:
        await release_connection(session)
        organizer_id = (await events.event(event_id)).organizer_id
    return organizer_id


@dataclass(frozen=True, slots=True)
class TakenSeat:
    seat_id: str
    ticket_class: str
    row: int
    number: int
    price: Decimal
    status: Literal["locked", "sold"]


async def taken_seats(session: AsyncSession, event_id: int) -> list[TakenSeat]:
    """Seats of the event in active bookings: ``locked`` while pending, ``sold`` once paid.

    A pending booking whose hold ran out no longer locks anything, even before the
    expiry loop has marked it.
    """
    rows = await session.execute(
        select(
            BookingSeat.seat_id,
            BookingSeat.ticket_class,
            BookingSeat.row,
            BookingSeat.number,
            BookingSeat.price,
            BookingSeat.status,
        )
        .join(Booking, Booking.id == BookingSeat.booking_id)
        .where(
            BookingSeat.event_id == event_id,
            (BookingSeat.status == BookingStatus.CONFIRMED)
            | ((BookingSeat.status == BookingStatus.PENDING) & (Booking.expires_at > utcnow())),
        )
        .order_by(BookingSeat.ticket_class, BookingSeat.row, BookingSeat.number)
    )
    return [
        TakenSeat(
            seat_id=seat_id,
            ticket_class=ticket_class,
            row=row,
            number=number,
            price=price,
            status="sold" if status == BookingStatus.CONFIRMED else "locked",
        )
        for seat_id, ticket_class, row, number, price, status in rows
    ]


async def live_holds(session: AsyncSession, event_id: int) -> list[LiveHold]:
    """The holds of the event's pending bookings that have not run out: what a seat gate
    rebuilt from PostgreSQL must restore, so a lost Redis costs no buyer their seat."""
    rows = await session.execute(
        select(Booking.hold_token, Booking.expires_at, func.array_agg(BookingSeat.seat_id))
        .join(BookingSeat, BookingSeat.booking_id == Booking.id)
        .where(
            Booking.event_id == event_id,
            Booking.status == BookingStatus.PENDING,
            Booking.expires_at > utcnow(),
        )
        .group_by(Booking.id)
    )
    return [
        LiveHold(token=token, seat_ids=list(seat_ids), expires_at=expires_at)
        for token, expires_at, seat_ids in rows
    ]
