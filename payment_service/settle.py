"""Settle a payment exactly once: the buyer's verify, the provider's callback and the
reconciler all end in :func:`settle_payment`.

A payment already settled is answered from one indexed read; the provider is not asked.
A pending one is asked about (no pooled connection is held meanwhile), and the answer is
recorded by one statement, :data:`SETTLE`: an ``UPDATE ... WHERE status = 'pending'`` that
in the same statement inserts its ``payment_success`` or ``payment_failed`` into the outbox
and wakes the outbox relays. However many settles race, the row lock lets one of them
change the payment; the others re-check the row once it commits, find it no longer
pending, and write nothing, so one message goes out.

The statements run on asyncpg and commit on their own, as initialize's do: through the
ORM, a settle cost about a dozen round trips and most of its CPU.
"""

from __future__ import annotations

import logging
import time
import uuid

import asyncpg
import orjson

from payment_service.errors import InvalidSignature, StaleSignature
from payment_service.metrics import PAYMENT_CALLBACKS, PAYMENTS
from payment_service.models import PaymentStatus
from payment_service.providers import (
    PaymentProvider,
    ProviderError,
    ProviderStatus,
    ProviderTransaction,
    ProviderTransactionNotFound,
)
from payment_service.schemas import CallbackBody
from payment_service.settings import PaymentSettings
from payment_service.webhooks import check_signature
from ticketing_common.db import utcnow
from ticketing_common.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable
from ticketing_common.messaging.contracts import PaymentFailed, PaymentSucceeded
from ticketing_common.messaging.envelope import draft_envelope
from ticketing_common.messaging.outbox import NOTIFY_CHANNEL
from ticketing_common.security import Principal

logger = logging.getLogger("payment.settle")

#: what a payment's answer shows (``PaymentOut``)
COLUMNS = """id, booking_id, user_id, tx_ref, amount, currency, status, provider, checkout_url,
provider_reference, failure_reason, paid_at, failed_at, refunded_at, refund_reference,
created_at, updated_at"""

# (The f-strings below join constant column lists; every value is a parameter.)
FIND = f"SELECT {COLUMNS} FROM payments WHERE tx_ref = $1"  # noqa: S608
FIND_BY_ID = f"SELECT {COLUMNS} FROM payments WHERE id = $1"  # noqa: S608

# The provider's answer, once: only a payment still pending under this tx_ref changes, and
# the outbox row is written only by the statement that changed it.
SETTLE = f"""
WITH settled AS (
    UPDATE payments
    SET status = $3, paid_at = $4, failed_at = $5, failure_reason = $6,
        provider_reference = coalesce($7, provider_reference),
        last_checked_at = $8, updated_at = $8
    WHERE id = $1 AND tx_ref = $2 AND status = 'pending'
    RETURNING {COLUMNS}
), message AS (
    INSERT INTO outbox_messages (message_id, routing_key, envelope)
    SELECT $9, $10, $11::jsonb FROM settled
)
SELECT {COLUMNS}, pg_notify('{NOTIFY_CHANNEL}', '') AS notified FROM settled
"""  # noqa: S608

# The provider has no outcome yet: note when it was asked (the reconciler paces by it).
STILL_PENDING = f"""
UPDATE payments SET last_checked_at = now(), updated_at = now()
WHERE id = $1 AND status = 'pending'
RETURNING {COLUMNS}
"""  # noqa: S608

# A batch of long-pending payments, marked as being checked now; safe across replicas.
CLAIM_STALE = """
UPDATE payments SET last_checked_at = now(), updated_at = now()
WHERE id IN (
    SELECT id FROM payments
    WHERE status = 'pending'
      AND created_at < now() - make_interval(secs => $1)
      AND created_at > now() - make_interval(hours => $2)
      AND (last_checked_at IS NULL OR last_checked_at < now() - make_interval(secs => $3))
    ORDER BY last_checked_at ASC NULLS FIRST, id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
RETURNING tx_ref
"""


async def find_payment(pg: asyncpg.Pool, tx_ref: str) -> asyncpg.Record:
    payment = await pg.fetchrow(FIND, tx_ref)
    if payment is None:
        raise NotFound("payment not found")
    return payment


async def _ask_provider(provider: PaymentProvider, tx_ref: str) -> ProviderTransaction | None:
    try:
        return await provider.verify(tx_ref)
    except ProviderTransactionNotFound:
        logger.warning("provider does not know the payment yet", extra={"tx_ref": tx_ref})
        return None
    except ProviderError as exc:
        raise ServiceUnavailable("payment provider unavailable, try again shortly") from exc


def _failure(payment: asyncpg.Record, observed: ProviderTransaction) -> str | None:
    """Why the provider's answer fails the payment (``None``: it is paid, in full)."""
    if observed.status != ProviderStatus.SUCCESS:
        return f"provider reports {observed.status}"
    if observed.amount != payment["amount"] or observed.currency != payment["currency"]:
        mismatch = (
            f"provider reports {observed.amount} {observed.currency}, "
            f"expected {payment['amount']} {payment['currency']}"
        )
        logger.error(
            "payment amount mismatch", extra={"tx_ref": payment["tx_ref"], "why": mismatch}
        )
        return mismatch
    return None


async def _record_outcome(
    pg: asyncpg.Pool, payment: asyncpg.Record, observed: ProviderTransaction
) -> asyncpg.Record | None:
    """Run :data:`SETTLE`; ``None`` when the payment was no longer pending under its tx_ref.

    The message is drafted from the payment as read: what it carries (booking, buyer,
    amount, currency, provider) never changes once the payment exists.
    """
    now = utcnow()
    reason = _failure(payment, observed)
    message: PaymentSucceeded | PaymentFailed
    if reason is None:
        status, routing_key = PaymentStatus.SUCCESS, "payment_success"
        message = PaymentSucceeded(
            payment_id=payment["id"],
            booking_id=payment["booking_id"],
            user_id=payment["user_id"],
            tx_ref=payment["tx_ref"],
            amount=payment["amount"],
            currency=payment["currency"],
            provider=payment["provider"],
            paid_at=now,
        )
    else:
        status, routing_key, reason = PaymentStatus.FAILED, "payment_failed", reason[:200]
        message = PaymentFailed(
            payment_id=payment["id"],
            booking_id=payment["booking_id"],
            user_id=payment["user_id"],
            tx_ref=payment["tx_ref"],
            reason=reason,
        )
    draft = draft_envelope(routing_key, message)
    settled: asyncpg.Record | None = await pg.fetchrow(
        SETTLE,
        payment["id"],
        payment["tx_ref"],
        status.value,
        now if reason is None else None,
        now if reason is not None else None,
        reason,
        observed.reference or None,
        now,
        uuid.UUID(draft["message_id"]),
        routing_key,
        orjson.dumps(draft).decode(),
    )
    if settled is not None:
        PAYMENTS.labels(status.value).inc()
        logger.info("payment settled", extra={"tx_ref": payment["tx_ref"], "status": status})
    return settled


async def settle_payment(
    pg: asyncpg.Pool, provider: PaymentProvider, payment: asyncpg.Record
) -> asyncpg.Record:
    """Ask the provider about a pending payment and record the answer; settled ones stay."""
    if payment["status"] != PaymentStatus.PENDING:
        return payment
    observed = await _ask_provider(provider, payment["tx_ref"])
    if observed is None or observed.status == ProviderStatus.PENDING:
        recorded = await pg.fetchrow(STILL_PENDING, payment["id"])
    else:
        recorded = await _record_outcome(pg, payment, observed)
    if recorded is None:  # settled meanwhile (another verify, the callback, the reconciler)
        recorded = await pg.fetchrow(FIND_BY_ID, payment["id"])
    assert recorded is not None  # payments are never deleted
    return recorded


async def verify_payment(
    pg: asyncpg.Pool, *, provider: PaymentProvider, principal: Principal, tx_ref: str
) -> asyncpg.Record:
    payment = await find_payment(pg, tx_ref)
    if payment["user_id"] != principal.user_id and not principal.is_admin:
        raise Forbidden("you can only verify your own payments")
    return await settle_payment(pg, provider, payment)


async def handle_callback(
    pg: asyncpg.Pool,
    *,
    provider: PaymentProvider,
    settings: PaymentSettings,
    body: bytes,
    signature: str | None,
) -> asyncpg.Record:
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
        callback = CallbackBody.model_validate_json(body)
    except ValueError as exc:
        raise BadRequest("callback body must be JSON with a tx_ref") from exc
    try:
        payment = await find_payment(pg, callback.tx_ref)
    except NotFound:
        PAYMENT_CALLBACKS.labels("unknown_payment").inc()
        raise
    PAYMENT_CALLBACKS.labels("accepted").inc()
    return await settle_payment(pg, provider, payment)


# Reconcile: the backstop for a lost callback and a buyer who never came back


async def claim_stale_pending(pg: asyncpg.Pool, settings: PaymentSettings) -> list[str]:
    """Mark a batch of long-pending payments as being checked now; safe across replicas."""
    rows = await pg.fetch(
        CLAIM_STALE,
        settings.payment_reconcile_after_seconds,
        settings.payment_reconcile_window_hours,
        settings.payment_reconcile_interval_seconds,
        settings.payment_reconcile_batch,
    )
    return [row["tx_ref"] for row in rows]


async def reconcile_pending_payments(
    pg: asyncpg.Pool, provider: PaymentProvider, settings: PaymentSettings
) -> int:
    """Ask the provider about payments pending too long; return how many got settled."""
    settled = 0
    for tx_ref in await claim_stale_pending(pg, settings):
        try:
            payment = await settle_payment(pg, provider, await find_payment(pg, tx_ref))
        except ServiceUnavailable:
            logger.warning("provider unavailable while reconciling", extra={"tx_ref": tx_ref})
            continue
        except NotFound:  # its checkout was asked again under a new tx_ref meanwhile
            continue
        if payment["status"] != PaymentStatus.PENDING:
            settled += 1
    return settled
