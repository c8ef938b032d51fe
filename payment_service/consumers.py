"""What payment_service does with other services' messages: refund requests."""

from __future__ import annotations

import logging

from payment_service import service
from payment_service.providers import PaymentProvider, ProviderRejected
from ticketing_common.messaging import MessageContext, PermanentFailure, Subscription
from ticketing_common.messaging.contracts import RefundRequested

logger = logging.getLogger("payment.consumers")


async def on_refund_requested(ctx: MessageContext, payload: RefundRequested) -> None:
    """Give the money back for a booking that cannot keep it.

    A provider that cannot be reached raises and the message is retried with back-off; a
    provider that refuses the refund will refuse it again, so the message is parked in the
    dead-letter queue for a person to look at.
    """
    provider: PaymentProvider = ctx.app.state.payment_provider
    try:
        await service.refund_booking(ctx.session, provider, payload)
    except ProviderRejected as exc:
        logger.error(
            "provider refused the refund",
            extra={"booking_id": payload.booking_id, "error": str(exc)},
        )
        raise PermanentFailure(f"provider refused the refund: {exc}") from exc


SUBSCRIPTIONS = [Subscription("refund_requested", on_refund_requested)]
