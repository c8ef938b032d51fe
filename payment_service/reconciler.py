"""The reconcile loop: asks the provider about payments left pending too long.

A callback can be lost and a buyer can close the tab before verify; the provider still
knows the outcome, so this loop settles such payments and a paid booking is never lost.
Runs in every replica; each pass claims its batch with ``SKIP LOCKED``.
"""

from __future__ import annotations

from fastapi import FastAPI

from payment_service import settle
from payment_service.resources import resources_of
from ticketing_common.background import periodic_lifecycle


async def reconcile_once(app: FastAPI) -> int:
    resources = resources_of(app)
    return await settle.reconcile_pending_payments(
        resources.pg, resources.provider, resources.settings
    )


def _interval(app: FastAPI) -> float:
    return float(resources_of(app).settings.payment_reconcile_interval_seconds)


def _batch_size(app: FastAPI) -> float:
    return float(resources_of(app).settings.payment_reconcile_batch)


reconciler_lifecycle = periodic_lifecycle(
    reconcile_once, name="payment-reconcile", interval=_interval, batch_size=_batch_size
)
