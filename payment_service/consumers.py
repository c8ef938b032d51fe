"""What payment_service does with other services' messages: its record of the bookings it
may charge, and refund requests."""

from __future__ import annotations

import logging
from typing import Any

from payment_service import payable_bookings, service
from payment_service.providers import ProviderRejected
from payment_service.resources import resources_of
from ticketing_common.messaging import (
    MessageContext,
    OneStatement,
    PermanentFailure,
    Subscription,
)
from ticketing_common.messaging.contracts import RefundRequested

logger = logging.getLogger("payment.consumers")


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
    # Each one write, sent with its inbox row as one statement: initialize then asks
    # nobody for a booking announced, and a closed one can no longer be paid.
    Subscription(
        "booking_created",
        OneStatement(payable_bookings.RECORD_CREATED, payable_bookings.created_arguments),
    ),
    Subscription(
        "booking_cancelled",
        OneStatement(payable_bookings.RECORD_CLOSED, payable_bookings.closed_arguments),
    ),
    Subscription("refund_requested", on_refund_requested),
]
