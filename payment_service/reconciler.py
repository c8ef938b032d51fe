"""The reconcile loop: asks the provider about payments left pending too long.

A callback can be lost and a buyer can close the tab before verify; the provider still
knows the outcome, so this loop settles such payments and a paid booking is never lost.
Runs in every replica; each pass claims its batch with ``SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from payment_service import service
from payment_service.settings import PaymentSettings

logger = logging.getLogger("payment.reconciler")


async def reconcile_once(app: FastAPI) -> int:
    settings: PaymentSettings = app.state.settings
    return await service.reconcile_pending_payments(
        app.state.sessionmaker, app.state.payment_provider, settings
    )


async def run_reconcile_loop(app: FastAPI) -> None:
    settings: PaymentSettings = app.state.settings
    while True:
        await asyncio.sleep(settings.payment_reconcile_interval_seconds)
        try:
            settled = await reconcile_once(app)
        except Exception:
            logger.exception("reconcile pass failed; retrying next interval")
            continue
        if settled:
            logger.info("settled stale pending payments", extra={"count": settled})


@contextlib.asynccontextmanager
async def reconciler_lifecycle(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(run_reconcile_loop(app), name="payment-reconcile-loop")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
