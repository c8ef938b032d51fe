"""What the emails and tickets print: from the message itself, or from the owners.

Since v2, ``booking_confirmed`` and ``booking_cancelled`` carry the event's title (start
and venue) and the buyer's email, so a ticket costs no call to another service. A v1
message, written before that and possibly still in a queue, has them ``None``: only then
are they looked up, through the typed internal clients (:class:`Lookups`), as before.
A ticket downloaded later is printed from the booking booking_service answers with, which
carries the same fields for bookings made since v2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from notification_service.tickets import TicketDetails, TicketSeat
from ticketing_common.http_client import InternalClient
from ticketing_common.internal.clients import BookingsApi, EventsApi, UsersApi
from ticketing_common.internal.models import BookedSeatView, BookingView
from ticketing_common.messaging.contracts import BookedSeat, BookingCancelled, BookingConfirmed
from ticketing_common.settings import ServiceSettings


@dataclass(frozen=True, slots=True)
class Lookups:
    """The other services' internal APIs: for what a v1 message or an older booking does
    not carry, and for a download, whether its booking is still confirmed."""

    users: UsersApi
    events: EventsApi
    bookings: BookingsApi

    @classmethod
    def of(cls, http: InternalClient, settings: ServiceSettings) -> Lookups:
        return cls(
            UsersApi.of(http, settings),
            EventsApi.of(http, settings),
            BookingsApi.of(http, settings),
        )


@dataclass(frozen=True, slots=True)
class _Event:
    title: str
    starts_at: datetime
    venue: str


async def recipient(lookups: Lookups, user_id: int, carried: str | None = None) -> str:
    """The user's email address: the one the message carries, else auth_service's."""
    if carried is not None:
        return carried
    return (await lookups.users.user(user_id)).email


async def _event(
    lookups: Lookups,
    event_id: int,
    title: str | None,
    starts_at: datetime | None,
    venue: str | None,
) -> _Event:
    """The event as carried, or (any part missing: a v1 message, an older booking) as
    event_service has it now, all three from the same answer."""
    if title is not None and starts_at is not None and venue is not None:
        return _Event(title, starts_at, venue)
    event = await lookups.events.event(event_id)
    return _Event(event.title, event.date, event.location)


def _ticket(
    booking_id: int,
    event_id: int,
    event: _Event,
    seats: Sequence[BookedSeat | BookedSeatView],
    total_amount: Decimal,
    currency: str,
) -> TicketDetails:
    return TicketDetails(
        booking_id=booking_id,
        event_id=event_id,
        event_title=event.title,
        event_date=event.starts_at,
        venue=event.venue,
        seats=[TicketSeat(s.seat_id, s.ticket_class, s.row, s.number, s.price) for s in seats],
        total_amount=total_amount,
        currency=currency,
    )


async def confirmed_ticket(lookups: Lookups, confirmed: BookingConfirmed) -> TicketDetails:
    """The ticket of a confirmed booking, as its ``booking_confirmed`` message describes it."""
    event = await _event(
        lookups,
        confirmed.event_id,
        confirmed.event_title,
        confirmed.event_starts_at,
        confirmed.venue,
    )
    return _ticket(
        confirmed.booking_id,
        confirmed.event_id,
        event,
        confirmed.seats,
        confirmed.total_amount,
        confirmed.currency,
    )


async def booking_ticket(lookups: Lookups, booking: BookingView) -> TicketDetails:
    """The ticket of a booking as booking_service answers for it (a download)."""
    event = await _event(
        lookups, booking.event_id, booking.event_title, booking.event_starts_at, booking.venue
    )
    return _ticket(
        booking.id, booking.event_id, event, booking.seats, booking.total_amount, booking.currency
    )


async def cancelled_event_title(lookups: Lookups, cancelled: BookingCancelled) -> str:
    if cancelled.event_title is not None:
        return cancelled.event_title
    return (await lookups.events.event(cancelled.event_id)).title
