"""The simulated provider: a local stand-in for a hosted-checkout payment gateway.

It keeps its own ledger (``simulated_provider_transactions``) through its own small
connection pool, as a real provider is another system with its own records: verifying a
payment asks that ledger, never ``payments``. The buyer decides the outcome on the hosted
checkout page (or ``SIMULATED_FORCE_OUTCOME`` decides it in tests); the provider then
posts a signed callback to payment_service in the background, as a real gateway delivers
its webhooks: the buyer's redirect never waits for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from decimal import Decimal

import httpx
from sqlalchemy import select, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payment_service.models import SimulatedTransaction
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
from ticketing_common.db import utcnow

logger = logging.getLogger("payment.simulated")

CALLBACK_ATTEMPTS = 3
CALLBACK_TIMEOUT_SECONDS = 5.0
#: how long shutdown waits for callbacks still in flight before dropping them
CALLBACK_DRAIN_SECONDS = 5.0
#: callbacks posted at once; the rest queue, as a gateway's webhook dispatcher paces its
#: deliveries (unbounded, an on-sale's callbacks would crowd out the buyers' own requests)
CALLBACKS_AT_ONCE = 4


def _reference(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


class SimulatedProvider:
    name = "simulated"
    #: a repeated initialize of a ``tx_ref`` answers the checkout it opened the first time
    idempotent_initialize = True

    def __init__(
        self,
        settings: PaymentSettings,
        engine: AsyncEngine,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._callbacks = httpx.AsyncClient(timeout=CALLBACK_TIMEOUT_SECONDS, transport=transport)
        self._deliveries: set[asyncio.Task[None]] = set()
        self._delivering = asyncio.Semaphore(CALLBACKS_AT_ONCE)

    async def aclose(self) -> None:
        if self._deliveries:
            await asyncio.wait(set(self._deliveries), timeout=CALLBACK_DRAIN_SECONDS)
        for task in self._deliveries:
            task.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        await self._callbacks.aclose()
        await self._engine.dispose()

    async def callbacks_delivered(self) -> None:
        """Wait for the callbacks in flight (a lost one is the reconciler's to settle)."""
        if self._deliveries:
            await asyncio.wait(set(self._deliveries))

    async def initialize(self, request: CheckoutRequest) -> CheckoutSession:
        """Record the transaction once per ``tx_ref`` and answer its hosted page.

        One statement, committing on its own (no BEGIN/COMMIT round trips): the insert,
        or else the reference of the transaction this ``tx_ref`` opened before, so a
        repeated initialize answers the same checkout.
        """
        name = " ".join(p for p in (request.first_name, request.last_name) if p) or None
        inserted = (
            insert(SimulatedTransaction)
            .values(
                tx_ref=request.tx_ref,
                reference=_reference("SIM"),
                amount=request.amount,
                currency=request.currency,
                title=request.title,
                description=request.description,
                customer_email=request.email,
                customer_name=name,
                return_url=request.return_url,
                callback_url=request.callback_url,
                status=ProviderStatus.PENDING,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=[SimulatedTransaction.tx_ref])
            .returning(SimulatedTransaction.reference)
            .cte("inserted")
        )
        known = select(SimulatedTransaction.reference).where(
            SimulatedTransaction.tx_ref == request.tx_ref
        )
        async with self._engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            reference = await conn.scalar(union_all(select(inserted.c.reference), known))
            if reference is None:  # a concurrent initialize of this tx_ref committed it
                reference = (await conn.execute(known)).scalar_one()
        return CheckoutSession(
            checkout_url=f"{self._settings.checkout_base_url}/{request.tx_ref}",
            reference=reference,
        )

    async def verify(self, tx_ref: str) -> ProviderTransaction:
        async with self._sessions() as session:
            txn = await self._get(session, tx_ref)
        return ProviderTransaction(
            tx_ref=txn.tx_ref,
            status=ProviderStatus(txn.status),
            amount=txn.amount,
            currency=txn.currency,
            reference=txn.reference,
        )

    async def refund(self, tx_ref: str, amount: Decimal, reason: str) -> ProviderRefund:
        async with self._sessions.begin() as session:
            txn = await self._get(session, tx_ref, for_update=True)
            if txn.status == ProviderStatus.SUCCESS:
                if amount != txn.amount:
                    raise ProviderRejected(f"refund of {amount} does not match {txn.amount}")
                txn.status = ProviderStatus.REFUNDED
                txn.refund_reference = _reference("SIMR")
                txn.refunded_at = utcnow()
            elif txn.status != ProviderStatus.REFUNDED:
                raise ProviderRejected(f"transaction {tx_ref} is {txn.status}, not paid")
            assert txn.refund_reference is not None
            assert txn.refunded_at is not None
        logger.info("simulated refund", extra={"tx_ref": tx_ref, "reason": reason})
        return ProviderRefund(
            tx_ref=tx_ref,
            reference=txn.refund_reference,
            amount=txn.amount,
            refunded_at=txn.refunded_at,
        )

    # The hosted checkout page's side of the provider.

    async def checkout(self, tx_ref: str) -> SimulatedTransaction:
        async with self._sessions() as session:
            return await self._get(session, tx_ref)

    async def complete(self, tx_ref: str, outcome: ForcedOutcome) -> SimulatedTransaction:
        """Record the buyer's choice once, then post the signed callback.

        A second click changes nothing (the first outcome stands) and sends no new callback.
        """
        outcome = self._settings.simulated_force_outcome or outcome
        async with self._sessions.begin() as session:
            txn = await self._get(session, tx_ref, for_update=True)
            decided = txn.status == ProviderStatus.PENDING
            if decided:
                txn.status = outcome
                txn.completed_at = utcnow()
        if decided:
            delivery = asyncio.create_task(self._deliver(txn))
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)
        return txn

    async def _deliver(self, txn: SimulatedTransaction) -> None:
        try:
            async with self._delivering:
                await self._post_callback(txn)
        except Exception:
            logger.exception("callback delivery crashed", extra={"tx_ref": txn.tx_ref})

    async def _post_callback(self, txn: SimulatedTransaction) -> None:
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
            try:
                response = await self._callbacks.post(
                    txn.callback_url,
                    content=body,
                    headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
                )
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 500:
                    if response.status_code >= 400:
                        logger.warning(
                            "callback refused",
                            extra={"tx_ref": txn.tx_ref, "status": response.status_code},
                        )
                    return
                error = f"status {response.status_code}"
            if attempt + 1 < CALLBACK_ATTEMPTS:
                await asyncio.sleep(0.2 * 2**attempt)
        logger.warning("callback not delivered", extra={"tx_ref": txn.tx_ref, "error": error})

    @staticmethod
    async def _get(
        session: AsyncSession, tx_ref: str, *, for_update: bool = False
    ) -> SimulatedTransaction:
        query = select(SimulatedTransaction).where(SimulatedTransaction.tx_ref == tx_ref)
        if for_update:
            query = query.with_for_update()
        txn = (await session.execute(query)).scalar_one_or_none()
        if txn is None:
            raise ProviderTransactionNotFound(f"no transaction {tx_ref}")
        return txn
