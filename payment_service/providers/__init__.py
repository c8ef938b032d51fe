"""Payment providers behind one interface; ``PAYMENT_PROVIDER`` picks one at start-up."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request

from payment_service.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    PaymentProvider,
    ProviderError,
    ProviderRefund,
    ProviderRejected,
    ProviderStatus,
    ProviderTransaction,
    ProviderTransactionNotFound,
)
from payment_service.providers.chapa import ChapaProvider
from payment_service.providers.simulated import SimulatedProvider
from payment_service.settings import PaymentSettings
from ticketing_common.db import create_engine

__all__ = [
    "ChapaProvider",
    "CheckoutRequest",
    "CheckoutSession",
    "PaymentProvider",
    "ProviderError",
    "ProviderRefund",
    "ProviderRejected",
    "ProviderStatus",
    "ProviderTransaction",
    "ProviderTransactionNotFound",
    "SimulatedProvider",
    "create_provider",
    "get_provider",
    "provider_lifecycle",
]

#: The simulated provider's own pool, apart from the service's: it stands for another system.
SIMULATED_POOL_SIZE = 5


def create_provider(
    settings: PaymentSettings, transport: httpx.AsyncBaseTransport | None = None
) -> PaymentProvider:
    if settings.payment_provider == "chapa":
        return ChapaProvider(settings, transport=transport)
    engine = create_engine(
        settings,
        pool_size=SIMULATED_POOL_SIZE,
        max_overflow=SIMULATED_POOL_SIZE,
        application_name=f"{settings.service_name}.simulated_provider",
    )
    return SimulatedProvider(settings, engine, transport=transport)


@contextlib.asynccontextmanager
async def provider_lifecycle(app: FastAPI) -> AsyncIterator[None]:
    """Open the configured provider as ``app.state.payment_provider`` for the app's life.

    ``app.state.provider_transport``, when a test sets it, carries the provider's outbound
    HTTP (Chapa calls, simulated callbacks) instead of the network.
    """
    transport = getattr(app.state, "provider_transport", None)
    provider = create_provider(app.state.settings, transport=transport)
    app.state.payment_provider = provider
    try:
        yield
    finally:
        await provider.aclose()


async def get_provider(request: Request) -> PaymentProvider:
    provider: PaymentProvider = request.app.state.payment_provider
    return provider
