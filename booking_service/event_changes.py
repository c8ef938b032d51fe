"""An organizer moved an event or changed its venue: the bookings it concerns follow.

event_service announces the change once (``event_changed``); here every pending or
confirmed booking of the event takes the new start and venue (what its tickets, payment
page and cancellation rules read), and each one's holder is told through one
``booking_event_changed`` message, all in the consumer's transaction with its inbox record:
a redelivered message changes nothing twice and tells nobody twice.
"""

from __future__ import annotations

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from booking_service.models import ACTIVE_STATUSES, Booking
from ticketing_common.messaging import publish
from ticketing_common.messaging.contracts import BookingEventChanged, EventChanged


async def apply_event_change(session: AsyncSession, change: EventChanged) -> int:
    """Bring the event's active bookings up to date and tell their holders; returns how
    many bookings changed. A booking already showing the new date and venue (the message
    seen before, or a booking made after the change) is neither changed nor told."""
    rows = (
        await session.execute(
            update(Booking)
            .where(
                Booking.event_id == change.event_id,
                Booking.status.in_(ACTIVE_STATUSES),
                or_(
                    Booking.event_starts_at.is_distinct_from(change.new_date),
                    Booking.venue.is_distinct_from(change.new_venue),
                ),
            )
            .values(
                event_starts_at=change.new_date,
                venue=change.new_venue,
                event_title=change.title,
            )
            .returning(Booking.id, Booking.user_id, Booking.buyer_email, Booking.status)
        )
    ).all()
    for booking_id, user_id, buyer_email, status in rows:
        await publish(
            session,
            "booking_event_changed",
            BookingEventChanged(
                booking_id=booking_id,
                user_id=user_id,
                buyer_email=buyer_email,
                status=status,
                event_id=change.event_id,
                event_title=change.title,
                old_date=change.old_date,
                new_date=change.new_date,
                old_venue=change.old_venue,
                new_venue=change.new_venue,
                changed_at=change.changed_at,
            ),
        )
    return len(rows)
