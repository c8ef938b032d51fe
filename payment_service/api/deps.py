"""Dependencies shared by payment_service's routes."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from payment_service.providers import PaymentProvider, SimulatedProvider, get_provider
from payment_service.settings import PaymentSettings
from ticketing_common.db import pg_pool_of
from ticketing_common.errors import NotFound
from ticketing_common.http_client import InternalClient


async def get_settings(request: Request) -> PaymentSettings:
    settings: PaymentSettings = request.app.state.settings
    return settings


async def get_http(request: Request) -> InternalClient:
    http: InternalClient = request.app.state.http
    return http


async def get_pg(request: Request) -> asyncpg.Pool:
    return pg_pool_of(request.app)


async def get_simulated_provider(request: Request) -> SimulatedProvider:
    """The hosted checkout pages exist only while the simulated provider is in use."""
    provider = request.app.state.payment_provider
    if not isinstance(provider, SimulatedProvider):
        raise NotFound("the hosted checkout belongs to the simulated provider, which is off")
    return provider


SettingsDep = Annotated[PaymentSettings, Depends(get_settings)]
HttpDep = Annotated[InternalClient, Depends(get_http)]
PgDep = Annotated[asyncpg.Pool, Depends(get_pg)]
ProviderDep = Annotated[PaymentProvider, Depends(get_provider)]
SimulatedDep = Annotated[SimulatedProvider, Depends(get_simulated_provider)]
