"""Payments: what every step shares, and refunds (opening a payment is :mod:`.initialize`,
settling it :mod:`.settle`)."""

from __future__ import annotations

import logging
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from payment_service.metrics import PAYMENTS
from payment_service.models import Payment, PaymentStatus, Refund, RefundOutcome
from payment_service.providers import PaymentProvider
from ticketing_common.db import on_commit
from ticketing_common.messaging import publish
from ticketing_common.messaging.contracts import PaymentRefunded, RefundRequested

logger = logging.getLogger("payment.service")

STATUS_MESSAGES = {
    PaymentStatus.PENDING: "payment pending",
    PaymentStatus.SUCCESS: "payment successful",
    PaymentStatus.FAILED: "payment failed",
    PaymentStatus.REFUNDED: "payment refunded",
}


def status_message(status: str) -> str:
    return STATUS_MESSAGES[PaymentStatus(status)]


def _count_after_commit(session: AsyncSession, outcome: str) -> None:
    """Count a payment outcome only once the transaction that made it has committed."""
    on_commit(session, PAYMENTS.labels(outcome).inc)


def new_tx_ref(booking_id: int) -> str:
    return f"tkt-{booking_id}-{secrets.token_hex(12)}"


# Refund


async def _payment_to_refund(session: AsyncSession, request: RefundRequested) -> Payment | None:
    query = select(Payment).where(Payment.booking_id == request.booking_id)
    if request.tx_ref:
        query = query.where(Payment.tx_ref == request.tx_ref)
    else:
        query = query.where(
            Payment.status.in_((PaymentStatus.SUCCESS, PaymentStatus.REFUNDED))
        ).order_by((Payment.status == PaymentStatus.SUCCESS).desc(), Payment.id.desc())
    query = query.limit(1).with_for_update().execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one_or_none()


async def refund_booking(
    session: AsyncSession, provider: PaymentProvider, request: RefundRequested
) -> Refund | None:
    """Refund the booking's successful payment through the provider, once.

    Nothing paid (yet) is recorded as ``nothing_to_refund``; an already refunded payment
    is left alone and returns ``None``. Raises :class:`ProviderRejected` when the provider
    refuses and :class:`ProviderError` when it cannot be reached (worth a retry).
    """
    payment = await _payment_to_refund(session, request)
    if payment is not None and payment.status == PaymentStatus.REFUNDED:
        return None
    if payment is None or payment.status != PaymentStatus.SUCCESS:
        logger.info(
            "refund requested but nothing was paid",
            extra={"booking_id": request.booking_id, "reason": request.reason},
        )
        record = Refund(
            booking_id=request.booking_id,
            payment_id=payment.id if payment is not None else None,
            amount=request.amount,
            currency=request.currency,
            reason=request.reason,
            outcome=RefundOutcome.NOTHING_TO_REFUND,
        )
        session.add(record)
        return record

    if request.amount != payment.amount:
        logger.warning(
            "refund request amount differs from the payment; refunding what was paid",
            extra={"tx_ref": payment.tx_ref, "requested": str(request.amount)},
        )
    refunded = await provider.refund(payment.tx_ref, payment.amount, request.reason)
    payment.status = PaymentStatus.REFUNDED
    payment.refunded_at = refunded.refunded_at
    payment.refund_reference = refunded.reference
    record = Refund(
        booking_id=payment.booking_id,
        payment_id=payment.id,
        amount=payment.amount,
        currency=payment.currency,
        reason=request.reason,
        outcome=RefundOutcome.REFUNDED,
        provider_reference=refunded.reference,
    )
    session.add(record)
    await publish(
        session,
        "payment_refunded",
        PaymentRefunded(
            payment_id=payment.id,
            booking_id=payment.booking_id,
            user_id=payment.user_id,
            tx_ref=payment.tx_ref,
            amount=payment.amount,
            currency=payment.currency,
            refunded_at=refunded.refunded_at,
        ),
    )
    _count_after_commit(session, "refunded")
    logger.info("payment refunded", extra={"tx_ref": payment.tx_ref, "reason": request.reason})
    return record
