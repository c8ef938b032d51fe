"""What booking_service does with other services' messages: payment outcomes, and events
that moved or changed venue."""

from __future__ import annotations

import logging
from typing import Any

from booking_service import event_changes, saga
from booking_service.resources import resources_of
from ticketing_common.messaging import MessageContext, Subscription
from ticketing_common.messaging.contracts import EventChanged, PaymentFailed, PaymentSucceeded

logger = logging.getLogger("booking_service.consumers")


async def on_payment_success(ctx: MessageContext, payload: PaymentSucceeded) -> None:
    """Confirm the paid booking, or ask for a refund if it can no longer be confirmed."""
    outcome = await saga.settle_payment(ctx.session, resources_of(ctx.app).events, payload)
    logger.info(
        "payment settled",
        extra={"booking_id": payload.booking_id, "tx_ref": payload.tx_ref, "outcome": outcome},
    )


async def on_payment_failed(ctx: MessageContext, payload: PaymentFailed) -> None:
    """A failed payment ends its pending booking and frees the seats."""
    outcome = await saga.fail_booking(ctx.session, resources_of(ctx.app).events, payload)
    logger.info(
        "payment failed",
        extra={"booking_id": payload.booking_id, "tx_ref": payload.tx_ref, "outcome": outcome},
    )


async def on_event_changed(ctx: MessageContext, payload: EventChanged) -> None:
    """The event's bookings take its new date and venue; their holders are told."""
    changed = await event_changes.apply_event_change(ctx.session, payload)
    logger.info("event changed", extra={"event_id": payload.event_id, "bookings": changed})


SUBSCRIPTIONS: list[Subscription[Any]] = [
    Subscription("payment_success", on_payment_success),
    Subscription("payment_failed", on_payment_failed),
    Subscription("event_changed", on_event_changed),
]
