"""What payment_service does with other services' messages: its record of the bookings it
may charge, and refund requests."""

from __future__ import annotations

import logging
from typing import Any

from payment_service import payable_bookings, service
from payment_service.providers import ProviderRejected
from payment_service.resources import resources_of
from ticketing_common.messaging import MessageContext, PermanentFailure, Subscription
from ticketing_common.messaging.contracts import BookingCancelled, BookingCreated, RefundRequested

logger = logging.getLogger("payment.consumers")


async def on_booking_created(ctx: MessageContext, payload: BookingCreated) -> None:
    """Keep the pending booking's amount, buyer and event, so initialize asks nobody."""
    await payable_bookings.record_created(ctx.session, payload)


async def on_booking_cancelled(ctx: MessageContext, payload: BookingCancelled) -> None:
    """A booking that left pending can no longer be paid. A confirmed one's cancellation
    changes nothing here: its money goes back through ``refund_requested``."""
    if payload.previous_status == "pending":
        await payable_bookings.record_closed(ctx.session, payload)


async def on_refund_requested(ctx: MessageContext, payload: RefundRequested) -> None:
    """Give the money back for a booking that cannot keep it.

    A provider that cannot be reached raises and the message is retried with back-off; a
    provider that refuses the refund will refuse it again, so the message is parked in the
    dead-letter queue for a person to look at.
    """
    try:
        await service.refund_booking(ctx.session, resources_of(ctx.app).provider, payload)
    except ProviderRejected as exc:
        logger.error(
            "provider refused the refund",
            extra={"booking_id": payload.booking_id, "error": str(exc)},
        )
        raise PermanentFailure(f"provider refused the refund: {exc}") from exc


SUBSCRIPTIONS: list[Subscription[Any]] = [
    Subscription("booking_created", on_booking_created),
    Subscription("booking_cancelled", on_booking_cancelled),
    Subscription("refund_requested", on_refund_requested),
]
