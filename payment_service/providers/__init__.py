"""Payment providers behind one interface; ``PAYMENT_PROVIDER`` picks one at start-up."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

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
    "provider_lifecycle",
]


async def create_provider(
    settings: PaymentSettings, transport: httpx.AsyncBaseTransport | None = None
) -> PaymentProvider:
    if settings.payment_provider == "chapa":
        return ChapaProvider(settings, transport=transport)
    return await SimulatedProvider.open(settings, transport=transport)


@contextlib.asynccontextmanager
async def provider_lifecycle(app: FastAPI) -> AsyncIterator[None]:
    """Open the configured provider as ``app.state.payment_provider`` for the app's life.

    ``app.state.provider_transport``, when a test sets it, carries the provider's outbound
    HTTP (Chapa calls, simulated callbacks) instead of the network.
    """
    transport = getattr(app.state, "provider_transport", None)
    provider = await create_provider(app.state.settings, transport=transport)
    app.state.payment_provider = provider
    try:
        yield
    finally:
        await provider.aclose()
