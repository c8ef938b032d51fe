"""The simulated provider: a local stand-in for a hosted-checkout payment gateway.

It keeps its own ledger (``simulated_provider_transactions``) through its own small
connection pool, as a real provider is another system with its own records: verifying a
payment asks that ledger, never ``payments``. The buyer decides the outcome on the hosted
checkout page (or ``SIMULATED_FORCE_OUTCOME`` decides it in tests); the provider then
posts a signed callback to payment_service in the background, as a real gateway delivers
its webhooks: the buyer's redirect never waits for it.

Every call of the on-sale's path (open a checkout, the buyer's decision, a verify) is one
statement on asyncpg that commits on its own: the provider's share of a purchase is CPU
of this process, so it costs no ORM and no BEGIN/COMMIT round trips. A decision is taken
by ``UPDATE ... WHERE status = 'pending'``, so of two racing clicks exactly one decides.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg
import httpx

from payment_service.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    ProviderRefund,
    ProviderRejected,
    ProviderStatus,
    ProviderTransaction,
    ProviderTransactionNotFound,
)
from payment_service.settings import ForcedOutcome, PaymentSettings
from payment_service.webhooks import SIGNATURE_HEADER, sign
from ticketing_common.db import close_pg_pool, create_pg_pool
from ticketing_common.http_client import (
    AiohttpTransport,
    HttpxTransport,
    Transport,
    TransportFault,
)

logger = logging.getLogger("payment.simulated")

#: the ledger's own pool, apart from the service's: it stands for another system
POOL_SIZE = 10
CALLBACK_ATTEMPTS = 3
#: how long shutdown waits for callbacks still in flight before dropping them
CALLBACK_DRAIN_SECONDS = 5.0
#: how long shutdown then waits for the cancelled ones to end
CALLBACK_CANCEL_SECONDS = 1.0
#: callbacks posted at once; the rest queue, as a gateway's webhook dispatcher paces its
#: deliveries (unbounded, an on-sale's callbacks would crowd out the buyers' own requests)
CALLBACKS_AT_ONCE = 4

_ENTRY = """tx_ref, reference, amount, currency, title, description, customer_email,
customer_name, return_url, callback_url, status"""

# The transaction, once per tx_ref: the insert, or else the reference of the one this
# tx_ref opened before (a concurrent insert not yet visible answers nothing: ask again).
OPEN = """
WITH inserted AS (
    INSERT INTO simulated_provider_transactions
        (tx_ref, reference, amount, currency, title, description, customer_email,
         customer_name, return_url, callback_url, status, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', now())
    ON CONFLICT (tx_ref) DO NOTHING
    RETURNING reference
)
SELECT reference FROM inserted
UNION ALL
SELECT reference FROM simulated_provider_transactions WHERE tx_ref = $1
"""
REFERENCE = "SELECT reference FROM simulated_provider_transactions WHERE tx_ref = $1"
ENTRY = f"SELECT {_ENTRY} FROM simulated_provider_transactions WHERE tx_ref = $1"  # noqa: S608
STATE = """
SELECT status, amount, currency, reference, refund_reference, refunded_at
FROM simulated_provider_transactions WHERE tx_ref = $1
"""
DECIDE = f"""
UPDATE simulated_provider_transactions SET status = $2, completed_at = now()
WHERE tx_ref = $1 AND status = 'pending'
RETURNING {_ENTRY}
"""  # noqa: S608
REFUND = """
UPDATE simulated_provider_transactions
SET status = 'refunded', refund_reference = $3, refunded_at = now()
WHERE tx_ref = $1 AND status = 'success' AND amount = $2
RETURNING refund_reference, refunded_at
"""


def _reference(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One transaction as the provider's hosted pages show it."""

    tx_ref: str
    reference: str
    amount: Decimal
    currency: str
    title: str
    description: str
    customer_email: str | None
    customer_name: str | None
    return_url: str | None
    callback_url: str
    status: str


class SimulatedProvider:
    name = "simulated"
    #: a repeated initialize of a ``tx_ref`` answers the checkout it opened the first time
    idempotent_initialize = True

    def __init__(
        self,
        settings: PaymentSettings,
        pool: asyncpg.Pool,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._callbacks: Transport = (
            HttpxTransport(transport, settings.internal_http_timeout_seconds)
            if transport is not None
            else AiohttpTransport(settings)
        )
        self._deliveries: set[asyncio.Task[None]] = set()
        self._delivering = asyncio.Semaphore(CALLBACKS_AT_ONCE)

    @classmethod
    async def open(
        cls, settings: PaymentSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> SimulatedProvider:
        """The provider with its own pool of connections to its ledger."""
        pool = await create_pg_pool(
            settings,
            application_name=f"{settings.service_name}.simulated_provider",
            max_size=POOL_SIZE,
        )
        return cls(settings, pool, transport)

    async def aclose(self) -> None:
        """Let callbacks in flight finish for a while, then cancel them; shutdown never
        waits on one for good (a cancelled delivery that does not end is left behind:
        the reconciler settles its payment)."""
        if self._deliveries:
            await asyncio.wait(set(self._deliveries), timeout=CALLBACK_DRAIN_SECONDS)
        left = set(self._deliveries)
        for task in left:
            task.cancel()
        if left:
            _, stuck = await asyncio.wait(left, timeout=CALLBACK_CANCEL_SECONDS)
            if stuck:
                logger.warning("callbacks still in flight at shutdown", extra={"count": len(stuck)})
        await self._callbacks.aclose()
        await close_pg_pool(self._pool)

    async def callbacks_delivered(self) -> None:
        """Wait for the callbacks in flight (a lost one is the reconciler's to settle)."""
        if self._deliveries:
            await asyncio.wait(set(self._deliveries))

    async def initialize(self, request: CheckoutRequest) -> CheckoutSession:
        """Record the transaction once per ``tx_ref`` and answer its hosted page; a
        repeated initialize answers the same checkout."""
        name = " ".join(p for p in (request.first_name, request.last_name) if p) or None
        reference = await self._pool.fetchval(
            OPEN,
            request.tx_ref,
            _reference("SIM"),
            request.amount,
            request.currency,
            request.title,
            request.description,
            request.email,
            name,
            request.return_url,
            request.callback_url,
        )
        if reference is None:  # a concurrent initialize of this tx_ref committed it
            reference = await self._pool.fetchval(REFERENCE, request.tx_ref)
        return CheckoutSession(
            checkout_url=f"{self._settings.checkout_base_url}/{request.tx_ref}",
            reference=reference,
        )

    async def verify(self, tx_ref: str) -> ProviderTransaction:
        row = await self._pool.fetchrow(STATE, tx_ref)
        if row is None:
            raise ProviderTransactionNotFound(f"no transaction {tx_ref}")
        return ProviderTransaction(
            tx_ref=tx_ref,
            status=ProviderStatus(row["status"]),
            amount=row["amount"],
            currency=row["currency"],
            reference=row["reference"],
        )

    async def refund(self, tx_ref: str, amount: Decimal, reason: str) -> ProviderRefund:
        """Refund a paid transaction once; a refunded one answers its first refund."""
        for _ in range(2):  # a refund that lost a race answers the one that won
            row = await self._pool.fetchrow(STATE, tx_ref)
            if row is None:
                raise ProviderTransactionNotFound(f"no transaction {tx_ref}")
            if row["status"] == ProviderStatus.REFUNDED:
                return _refund(tx_ref, row["amount"], row["refund_reference"], row["refunded_at"])
            if row["status"] != ProviderStatus.SUCCESS:
                raise ProviderRejected(f"transaction {tx_ref} is {row['status']}, not paid")
            if amount != row["amount"]:
                raise ProviderRejected(f"refund of {amount} does not match {row['amount']}")
            refunded = await self._pool.fetchrow(REFUND, tx_ref, amount, _reference("SIMR"))
            if refunded is not None:
                logger.info("simulated refund", extra={"tx_ref": tx_ref, "reason": reason})
                return _refund(
                    tx_ref, amount, refunded["refund_reference"], refunded["refunded_at"]
                )
        raise ProviderRejected(f"transaction {tx_ref} changed while it was being refunded")

    # The hosted checkout page's side of the provider.

    async def checkout(self, tx_ref: str) -> LedgerEntry:
        row = await self._pool.fetchrow(ENTRY, tx_ref)
        if row is None:
            raise ProviderTransactionNotFound(f"no transaction {tx_ref}")
        return LedgerEntry(**row)

    async def complete(self, tx_ref: str, outcome: ForcedOutcome) -> LedgerEntry:
        """Record the buyer's choice once, then post the signed callback.

        A second click changes nothing (the first outcome stands) and sends no new callback.
        """
        outcome = self._settings.simulated_force_outcome or outcome
        decided = await self._pool.fetchrow(DECIDE, tx_ref, outcome)
        if decided is None:  # decided before (or unknown): read what stands, committed
            return await self.checkout(tx_ref)
        txn = LedgerEntry(**decided)
        delivery = asyncio.create_task(self._deliver(txn))
        self._deliveries.add(delivery)
        delivery.add_done_callback(self._deliveries.discard)
        return txn

    async def _deliver(self, txn: LedgerEntry) -> None:
        try:
            async with self._delivering:
                await self._post_callback(txn)
        except Exception:
            logger.exception("callback delivery crashed", extra={"tx_ref": txn.tx_ref})

    async def _post_callback(self, txn: LedgerEntry) -> None:
        """Deliver the callback with bounded retries; the reconciler covers a lost one."""
        body = json.dumps(
            {
                "event": f"charge.{txn.status}",
                "tx_ref": txn.tx_ref,
                "status": txn.status,
                "reference": txn.reference,
                "amount": str(txn.amount),
                "currency": txn.currency,
            },
            separators=(",", ":"),
        ).encode()
        for attempt in range(CALLBACK_ATTEMPTS):
            signature = sign(self._settings.payment_webhook_secret, body, int(time.time()))
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
            try:
                response = await self._callbacks.send("POST", txn.callback_url, body, headers)
            except TransportFault as exc:
                error = str(exc)
            else:
                if response.status < 500:
                    if response.status >= 400:
                        logger.warning(
                            "callback refused",
                            extra={"tx_ref": txn.tx_ref, "status": response.status},
                        )
                    return
                error = f"status {response.status}"
            if attempt + 1 < CALLBACK_ATTEMPTS:
                await asyncio.sleep(0.2 * 2**attempt)
        logger.warning("callback not delivered", extra={"tx_ref": txn.tx_ref, "error": error})


def _refund(tx_ref: str, amount: Decimal, reference: str, refunded_at: datetime) -> ProviderRefund:
    return ProviderRefund(
        tx_ref=tx_ref, reference=reference, amount=amount, refunded_at=refunded_at
    )
