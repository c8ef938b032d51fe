"""Messages event_service consumes: sales and cancellations announced by booking_service."""

from __future__ import annotations

from typing import Any

from event_service.holds import SeatHolds
from event_service.metrics import WAITLIST_OFFERS
from event_service.resources import resources_of
from ticketing_common.errors import BadRequest, Conflict
from ticketing_common.messaging import (
    MessageContext,
    OneStatement,
    PermanentFailure,
    Subscription,
)
from ticketing_common.messaging.contracts import BookingCancelled, BookingConfirmed


def _holds(ctx: MessageContext) -> SeatHolds:
    return SeatHolds(ctx.session, resources_of(ctx.app))


async def on_booking_confirmed(ctx: MessageContext, payload: BookingConfirmed) -> None:
    """Mark the seats sold, idempotently (the confirm call has usually done it already)."""
    try:
        await _holds(ctx).apply_booking_confirmed(payload)
    except (BadRequest, Conflict) as exc:
        # Unknown seats, or seats PostgreSQL sold to another booking: retrying cannot help.
        raise PermanentFailure(exc.message) from exc


# The sale was recorded by the confirm call (the one writer) before it was announced, so
# the message nearly always finds every seat of the booking sold: then one statement
# checks that, takes the booking's waiting-list offer, if it was one, and records the
# message. Otherwise (a sale announced but not recorded) it falls to the repair above.
_ALL_SOLD = "(SELECT count(*) FROM event_seats_sold WHERE booking_id = $4 AND event_id = $5) = $6"
_TAKE_OFFER_ONCE = (
    "UPDATE event_waitlist_entries SET status = 'booked', closed_at = now() "
    "WHERE booking_id = $4 AND status = 'offered' AND EXISTS (SELECT FROM recorded) "
    "RETURNING id"
)


def _confirmed_arguments(payload: BookingConfirmed) -> tuple[object, ...]:
    return payload.booking_id, payload.event_id, len(payload.seats)


def _offers_taken(count: int) -> None:
    if count:
        WAITLIST_OFFERS.labels("taken").inc(count)


async def on_booking_cancelled(ctx: MessageContext, payload: BookingCancelled) -> None:
    """Release the booking's hold; a cancelled confirmed booking's seats go back on sale."""
    await _holds(ctx).apply_booking_cancelled(payload)


SUBSCRIPTIONS: list[Subscription[Any]] = [
    Subscription(
        "booking_confirmed",
        OneStatement(
            _TAKE_OFFER_ONCE,
            _confirmed_arguments,
            only_if=_ALL_SOLD,
            otherwise=on_booking_confirmed,
            applied=_offers_taken,
        ),
    ),
    Subscription("booking_cancelled", on_booking_cancelled),
]
