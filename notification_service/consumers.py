"""Message handlers: each message that owes someone an email becomes one notification.

Handlers are thin: they name the notification (message id + type) and say how to compose
its email; :func:`notification_service.service.deliver` does the rest. A try that fails
for a passing reason raises and is retried by the messaging layer with back-off; once
the notification is marked failed the message is dead-lettered.
"""

from __future__ import annotations

from typing import Any

from notification_service import emails, service
from notification_service.errors import DeliveryAbandoned
from notification_service.models import NotificationType
from notification_service.resources import resources_of
from notification_service.service import Compose, NotificationKey, OutgoingEmail
from ticketing_common.messaging import MessageContext, PermanentFailure, Subscription
from ticketing_common.messaging.contracts import (
    BookingCancelled,
    BookingConfirmed,
    BookingEventChanged,
    EmailVerification,
    PasswordReset,
    PaymentRefunded,
    RefundRequested,
    WaitlistOffered,
)


async def _deliver(
    ctx: MessageContext,
    type_: NotificationType,
    compose: Compose,
    *,
    user_id: int,
    booking_id: int | None = None,
) -> None:
    notifier = resources_of(ctx.app).notifier
    key = NotificationKey(ctx.envelope.message_id, type_, user_id=user_id, booking_id=booking_id)
    try:
        await service.deliver(
            notifier, key, compose, last_try=ctx.attempt >= notifier.messaging.max_attempts
        )
    except DeliveryAbandoned as exc:
        raise PermanentFailure(str(exc)) from exc


async def on_email_verification(ctx: MessageContext, payload: EmailVerification) -> None:
    async def compose() -> OutgoingEmail:
        return OutgoingEmail(
            str(payload.email),
            emails.verification_email(payload.code, payload.expires_at, payload.verify_url),
        )

    await _deliver(ctx, NotificationType.EMAIL_VERIFICATION, compose, user_id=payload.user_id)


async def on_password_reset(ctx: MessageContext, payload: PasswordReset) -> None:
    async def compose() -> OutgoingEmail:
        return OutgoingEmail(
            str(payload.email), emails.password_reset_email(payload.code, payload.expires_at)
        )

    await _deliver(ctx, NotificationType.PASSWORD_RESET, compose, user_id=payload.user_id)


async def on_booking_confirmed(ctx: MessageContext, payload: BookingConfirmed) -> None:
    async def compose() -> OutgoingEmail:
        return await service.ticket_email_for(
            resources_of(ctx.app).lookups, resources_of(ctx.app).tickets, payload
        )

    await _deliver(
        ctx,
        NotificationType.BOOKING_CONFIRMED,
        compose,
        user_id=payload.user_id,
        booking_id=payload.booking_id,
    )


async def on_booking_cancelled(ctx: MessageContext, payload: BookingCancelled) -> None:
    async def compose() -> OutgoingEmail:
        return await service.cancellation_email_for(resources_of(ctx.app).lookups, payload)

    await _deliver(
        ctx,
        NotificationType.BOOKING_CANCELLED,
        compose,
        user_id=payload.user_id,
        booking_id=payload.booking_id,
    )


async def on_refund_requested(ctx: MessageContext, payload: RefundRequested) -> None:
    """Only a payment that arrived too late needs this email: a cancellation already told
    the buyer about its refund."""
    if payload.reason != "booking_not_pending":
        return

    async def compose() -> OutgoingEmail:
        return await service.refund_requested_email_for(resources_of(ctx.app).lookups, payload)

    await _deliver(
        ctx,
        NotificationType.REFUND_REQUESTED,
        compose,
        user_id=payload.user_id,
        booking_id=payload.booking_id,
    )


async def on_payment_refunded(ctx: MessageContext, payload: PaymentRefunded) -> None:
    async def compose() -> OutgoingEmail:
        return await service.refund_processed_email_for(resources_of(ctx.app).lookups, payload)

    await _deliver(
        ctx,
        NotificationType.PAYMENT_REFUNDED,
        compose,
        user_id=payload.user_id,
        booking_id=payload.booking_id,
    )


async def on_booking_event_changed(ctx: MessageContext, payload: BookingEventChanged) -> None:
    """One email per booking whose event moved or changed venue."""

    async def compose() -> OutgoingEmail:
        return await service.event_changed_email_for(resources_of(ctx.app).lookups, payload)

    await _deliver(
        ctx,
        NotificationType.EVENT_CHANGED,
        compose,
        user_id=payload.user_id,
        booking_id=payload.booking_id,
    )


async def on_waitlist_offered(ctx: MessageContext, payload: WaitlistOffered) -> None:
    """Seats came free for a waiting-list entry: the buyer hears of the offer and its link."""

    async def compose() -> OutgoingEmail:
        return await service.waitlist_offer_email_for(resources_of(ctx.app).lookups, payload)

    await _deliver(
        ctx,
        NotificationType.WAITLIST_OFFERED,
        compose,
        user_id=payload.user_id,
        booking_id=payload.booking_id,
    )


SUBSCRIPTIONS: list[Subscription[Any]] = [
    Subscription("email_verification", on_email_verification),
    Subscription("password_reset", on_password_reset),
    Subscription("booking_confirmed", on_booking_confirmed),
    Subscription("booking_cancelled", on_booking_cancelled),
    Subscription("refund_requested", on_refund_requested),
    Subscription("payment_refunded", on_payment_refunded),
    Subscription("booking_event_changed", on_booking_event_changed),
    Subscription("waitlist_offered", on_waitlist_offered),
]
