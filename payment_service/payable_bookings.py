"""payment_service's own record of the bookings it may charge (``payable_bookings``).

``booking_created`` fills it and ``booking_cancelled`` closes it, so initializing a
payment asks booking_service nothing. Messages arrive in any order and more than once:
a record is written once and never reopened, and a cancellation that comes before its
creation leaves a closed row (a tombstone) that the creation then leaves alone.

A buyer can be faster than the outbox relay; then initialize asks booking_service once
(:func:`fetch_and_store`) and stores what it learns, so later initializes find it here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import asyncpg
from cachetools import TTLCache

from payment_service.models import PayableStatus
from payment_service.settings import PaymentSettings
from ticketing_common.errors import DomainError
from ticketing_common.http_client import InternalClient
from ticketing_common.internal.clients import BookingsApi, EventsApi
from ticketing_common.messaging.contracts import BookingCancelled, BookingCreated

logger = logging.getLogger("payment.payable_bookings")


class _Seat(Protocol):
    @property
    def ticket_class(self) -> str: ...
    @property
    def row(self) -> int: ...
    @property
    def number(self) -> int: ...


def _describe_seats(booking_id: int, seats: Sequence[_Seat]) -> str:
    """The seats in words, for the provider's checkout page."""
    listed = ", ".join(f"{s.ticket_class.upper()} row {s.row} seat {s.number}" for s in seats)
    noun = "ticket" if len(seats) == 1 else "tickets"
    return f"Booking #{booking_id}: {len(seats)} {noun}" + (f" ({listed})" if listed else "")


# A record, unless one exists: a closed one stays closed, a stored one as is.
STORE = """
INSERT INTO payable_bookings (booking_id, user_id, event_id, amount, currency, event_title,
                              description, buyer_email, expires_at, status)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (booking_id) DO NOTHING
"""

_COLUMNS = "booking_id, user_id, event_id, event_title, buyer_email"

# ``booking_created``'s handler, sent with the message's inbox row as one statement
# (``OneStatement``): :data:`STORE` of the first delivery; a redelivery writes nothing.
RECORD_CREATED = f"""
INSERT INTO payable_bookings ({_COLUMNS}, amount, currency, description, expires_at, status)
SELECT $4::bigint, $5::bigint, $6::bigint, $7::text, $8::text,
       $9::numeric, $10::text, $11::text, $12::timestamptz, 'pending' FROM recorded
ON CONFLICT (booking_id) DO NOTHING
"""  # noqa: S608 (constant column names; every value is a parameter)

# ``booking_cancelled``'s: a booking that left pending is closed, or a closed tombstone
# is left when ``booking_created`` has not arrived yet; a confirmed booking's cancellation
# (``$9``, its status before) changes nothing here.
RECORD_CLOSED = f"""
INSERT INTO payable_bookings ({_COLUMNS}, status)
SELECT $4::bigint, $5::bigint, $6::bigint, $7::text, $8::text, 'closed' FROM recorded
WHERE $9::text = 'pending'
ON CONFLICT (booking_id) DO UPDATE SET status = 'closed'
"""  # noqa: S608


def created_arguments(booking: BookingCreated) -> tuple[object, ...]:
    """:data:`RECORD_CREATED`'s values: the pending booking's amount, buyer and event."""
    return (
        booking.booking_id,
        booking.user_id,
        booking.event_id,
        booking.event_title,
        booking.buyer_email,
        booking.total_amount,
        booking.currency,
        _describe_seats(booking.booking_id, booking.seats),
        booking.expires_at,
    )


def closed_arguments(booking: BookingCancelled) -> tuple[object, ...]:
    """:data:`RECORD_CLOSED`'s values."""
    return (
        booking.booking_id,
        booking.user_id,
        booking.event_id,
        booking.event_title,
        booking.buyer_email,
        booking.previous_status,
    )


#: event titles by id, for bookings made before bookings kept their event's title: a
#: cosmetic of the checkout page, so it may trail a rename by a minute
_TITLES: TTLCache[int, str] = TTLCache(maxsize=4096, ttl=60)


async def _event_title(http: InternalClient, settings: PaymentSettings, event_id: int) -> str:
    """The event's title; a failed lookup is no error (the checkout only shows it)."""
    if (title := _TITLES.get(event_id)) is not None:
        return title
    try:
        title = _TITLES[event_id] = (await EventsApi.of(http, settings).event(event_id)).title
    except DomainError as exc:
        logger.warning("event title unavailable", extra={"event_id": event_id, "error": str(exc)})
        return f"Event #{event_id}"
    return title


async def fetch_and_store(
    pg: asyncpg.Pool, http: InternalClient, settings: PaymentSettings, booking_id: int
) -> None:
    """Ask booking_service for a booking whose ``booking_created`` has not arrived yet and
    keep the answer, so this happens at most once per booking. No connection is held
    while booking_service answers.

    Raises ``BookingNotFound`` for a booking booking_service does not know. A message
    that arrives later changes nothing, except a cancellation, which closes the record.
    """
    booking = await BookingsApi.of(http, settings).booking(booking_id)
    title = booking.event_title or await _event_title(http, settings, booking.event_id)
    await pg.execute(
        STORE,
        booking.id,
        booking.user_id,
        booking.event_id,
        booking.total_amount,
        booking.currency,
        title,
        _describe_seats(booking.id, booking.seats),
        booking.buyer_email,
        booking.expires_at,
        (PayableStatus.PENDING if booking.status == "pending" else PayableStatus.CLOSED).value,
    )
