"""What every request and message handler of payment_service shares (one per app)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from fastapi import FastAPI

from payment_service.providers import PaymentProvider
from payment_service.settings import PaymentSettings
from ticketing_common.db import pg_pool_of
from ticketing_common.http_client import InternalClient


@dataclass(frozen=True)
class PaymentResources:
    settings: PaymentSettings
    #: asyncpg for the purchase path (initialize, settle) and the reconciler
    pg: asyncpg.Pool
    provider: PaymentProvider
    #: only for a booking whose ``booking_created`` has not arrived yet
    http: InternalClient


def resources_of(app: Any) -> PaymentResources:
    resources: PaymentResources = app.state.payment_resources
    return resources


@contextlib.asynccontextmanager
async def payment_resources_lifecycle(app: FastAPI) -> AsyncIterator[None]:
    """Gather the pool, provider and client once; after the lifecycles that open them."""
    app.state.payment_resources = PaymentResources(
        settings=app.state.settings,
        pg=pg_pool_of(app),
        provider=app.state.payment_provider,
        http=app.state.http,
    )
    yield
