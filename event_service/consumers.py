"""Messages event_service consumes: sales and cancellations announced by booking_service."""

from __future__ import annotations

from typing import Any

from event_service.holds import SeatHolds
from event_service.resources import resources_of
from ticketing_common.errors import BadRequest, Conflict
from ticketing_common.messaging import MessageContext, PermanentFailure, Subscription
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


async def on_booking_cancelled(ctx: MessageContext, payload: BookingCancelled) -> None:
    """Release the booking's hold; a cancelled confirmed booking's seats go back on sale."""
    await _holds(ctx).apply_booking_cancelled(payload)


SUBSCRIPTIONS: list[Subscription[Any]] = [
    Subscription("booking_confirmed", on_booking_confirmed),
    Subscription("booking_cancelled", on_booking_cancelled),
]
