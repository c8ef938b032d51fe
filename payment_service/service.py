"""Payments: settle them exactly once, refund them (opening one: :mod:`.initialize`).

Every way a payment's outcome arrives (the buyer's verify, the provider's callback, the
reconciler) goes through :func:`settle_payment`: it asks the provider, then changes the
payment under a row lock only while it is still pending, writing ``payment_success`` or
``payment_failed`` to the outbox in that same transaction. However many of them race,
one wins and the others find the payment already settled.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payment_service.metrics import PAYMENT_CALLBACKS, PAYMENTS
from payment_service.models import Payment, PaymentStatus, Refund, RefundOutcome
from payment_service.providers import (
    PaymentProvider,
    ProviderError,
    ProviderStatus,
    ProviderTransaction,
    ProviderTransactionNotFound,
)
from payment_service.schemas import CallbackBody
from payment_service.settings import PaymentSettings
from payment_service.webhooks import InvalidSignature, StaleSignature, check_signature
from ticketing_common.db import on_commit, release_connection, utcnow
from ticketing_common.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceUnavailable
from ticketing_common.messaging import publish
from ticketing_common.messaging.contracts import (
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    RefundRequested,
)
from ticketing_common.security import Principal

logger = logging.getLogger("payment.service")

STATUS_MESSAGES = {
    PaymentStatus.PENDING: "payment pending",
    PaymentStatus.SUCCESS: "payment successful",
    PaymentStatus.FAILED: "payment failed",
    PaymentStatus.REFUNDED: "payment refunded",
}


class BookingNotPayable(Conflict):
    code = "booking_not_payable"


class PaymentAlreadyMade(Conflict):
    code = "payment_already_made"


def status_message(payment: Payment) -> str:
    return STATUS_MESSAGES[PaymentStatus(payment.status)]


def _count_after_commit(session: AsyncSession, outcome: str) -> None:
    """Count a payment outcome only once the transaction that made it has committed."""
    on_commit(session, PAYMENTS.labels(outcome).inc)


def new_tx_ref(booking_id: int) -> str:
    return f"tkt-{booking_id}-{secrets.token_hex(12)}"


# Settle: verify, callback and reconciler all end here


async def _get_payment(session: AsyncSession, tx_ref: str) -> Payment:
    payment = (
        await session.execute(select(Payment).where(Payment.tx_ref == tx_ref))
    ).scalar_one_or_none()
    if payment is None:
        raise NotFound("payment not found")
    return payment


async def _ask_provider(provider: PaymentProvider, payment: Payment) -> ProviderTransaction | None:
    try:
        return await provider.verify(payment.tx_ref)
    except ProviderTransactionNotFound:
        logger.warning("provider does not know the payment yet", extra={"tx_ref": payment.tx_ref})
        return None
    except ProviderError as exc:
        raise ServiceUnavailable("payment provider unavailable, try again shortly") from exc


def _mismatch(payment: Payment, observed: ProviderTransaction) -> str | None:
    if observed.amount != payment.amount or observed.currency != payment.currency:
        return (
            f"provider reports {observed.amount} {observed.currency}, "
            f"expected {payment.amount} {payment.currency}"
        )
    return None


async def _record_outcome(
    session: AsyncSession, payment_id: int, observed: ProviderTransaction | None
) -> Payment:
    """Apply what the provider said, under a row lock, once."""
    payment = (
        await session.execute(
            select(Payment)
            .where(Payment.id == payment_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    if payment.status != PaymentStatus.PENDING:
        return payment
    now = utcnow()
    payment.last_checked_at = now
    if observed is None or observed.status == ProviderStatus.PENDING:
        await session.flush()
        return payment
    reason = None
    if observed.status != ProviderStatus.SUCCESS:
        reason = f"provider reports {observed.status}"
    elif (mismatch := _mismatch(payment, observed)) is not None:
        logger.error("payment amount mismatch", extra={"tx_ref": payment.tx_ref, "why": mismatch})
        reason = mismatch
    payment.provider_reference = observed.reference or payment.provider_reference
    if reason is None:
        payment.status = PaymentStatus.SUCCESS
        payment.paid_at = now
        await publish(
            session,
            "payment_success",
            PaymentSucceeded(
                payment_id=payment.id,
                booking_id=payment.booking_id,
                user_id=payment.user_id,
                tx_ref=payment.tx_ref,
                amount=payment.amount,
                currency=payment.currency,
                provider=payment.provider,
                paid_at=now,
            ),
        )
    else:
        payment.status = PaymentStatus.FAILED
        payment.failed_at = now
        payment.failure_reason = reason[:200]
        await publish(
            session,
            "payment_failed",
            PaymentFailed(
                payment_id=payment.id,
                booking_id=payment.booking_id,
                user_id=payment.user_id,
                tx_ref=payment.tx_ref,
                reason=payment.failure_reason,
            ),
        )
    await session.flush()
    _count_after_commit(session, payment.status)
    logger.info("payment settled", extra={"tx_ref": payment.tx_ref, "status": payment.status})
    return payment


async def settle_payment(
    session: AsyncSession, provider: PaymentProvider, payment: Payment
) -> Payment:
    """Ask the provider about a pending payment and record the answer; settled ones stay."""
    if payment.status != PaymentStatus.PENDING:
        return payment
    await release_connection(session)  # no pooled connection waits on the provider
    observed = await _ask_provider(provider, payment)
    return await _record_outcome(session, payment.id, observed)


async def verify_payment(
    session: AsyncSession, *, provider: PaymentProvider, principal: Principal, tx_ref: str
) -> Payment:
    payment = await _get_payment(session, tx_ref)
    if payment.user_id != principal.user_id and not principal.is_admin:
        raise Forbidden("you can only verify your own payments")
    return await settle_payment(session, provider, payment)


async def handle_callback(
    session: AsyncSession,
    *,
    provider: PaymentProvider,
    settings: PaymentSettings,
    body: bytes,
    signature: str | None,
) -> Payment:
    """A provider's signed callback: check it, then settle the payment it names."""
    try:
        check_signature(
            settings.payment_webhook_secret,
            signature,
            body,
            now=time.time(),
            max_age_seconds=settings.payment_callback_max_age_seconds,
        )
    except InvalidSignature:
        PAYMENT_CALLBACKS.labels("bad_signature").inc()
        raise
    except StaleSignature:
        PAYMENT_CALLBACKS.labels("stale").inc()
        raise
    try:
        callback = CallbackBody.model_validate(json.loads(body))
    except ValueError as exc:
        raise BadRequest("callback body must be JSON with a tx_ref") from exc
    try:
        payment = await _get_payment(session, callback.tx_ref)
    except NotFound:
        PAYMENT_CALLBACKS.labels("unknown_payment").inc()
        raise
    PAYMENT_CALLBACKS.labels("accepted").inc()
    return await settle_payment(session, provider, payment)


# Reconcile: the backstop for a lost callback and a buyer who never came back


async def claim_stale_pending(
    sessionmaker: async_sessionmaker[AsyncSession], settings: PaymentSettings
) -> list[str]:
    """Mark a batch of long-pending payments as being checked now; safe across replicas."""
    now = utcnow()
    stale = (
        select(Payment.id)
        .where(
            Payment.status == PaymentStatus.PENDING,
            Payment.created_at < now - timedelta(seconds=settings.payment_reconcile_after_seconds),
            Payment.created_at > now - timedelta(hours=settings.payment_reconcile_window_hours),
            or_(
                Payment.last_checked_at.is_(None),
                Payment.last_checked_at
                < now - timedelta(seconds=settings.payment_reconcile_interval_seconds),
            ),
        )
        .order_by(Payment.last_checked_at.asc().nulls_first(), Payment.id)
        .limit(settings.payment_reconcile_batch)
        .with_for_update(skip_locked=True)
    )
    async with sessionmaker.begin() as session:
        claimed = await session.execute(
            update(Payment)
            .where(Payment.id.in_(stale.scalar_subquery()))
            .values(last_checked_at=now)
            .returning(Payment.tx_ref)
        )
        return list(claimed.scalars())


async def reconcile_pending_payments(
    sessionmaker: async_sessionmaker[AsyncSession],
    provider: PaymentProvider,
    settings: PaymentSettings,
) -> int:
    """Ask the provider about payments pending too long; return how many got settled."""
    settled = 0
    for tx_ref in await claim_stale_pending(sessionmaker, settings):
        try:
            async with sessionmaker() as session:
                pending = await _get_payment(session, tx_ref)
                payment = await settle_payment(session, provider, pending)
                await session.commit()
        except ServiceUnavailable:
            logger.warning("provider unavailable while reconciling", extra={"tx_ref": tx_ref})
            continue
        if payment.status != PaymentStatus.PENDING:
            settled += 1
    return settled


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
