"""Dependencies shared by payment_service's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from payment_service.providers import SimulatedProvider
from payment_service.resources import PaymentResources, resources_of
from ticketing_common.errors import NotFound


async def get_resources(request: Request) -> PaymentResources:
    return resources_of(request.app)


async def get_simulated_provider(request: Request) -> SimulatedProvider:
    """The hosted checkout pages exist only while the simulated provider is in use."""
    provider = resources_of(request.app).provider
    if not isinstance(provider, SimulatedProvider):
        raise NotFound("the hosted checkout belongs to the simulated provider, which is off")
    return provider


ResourcesDep = Annotated[PaymentResources, Depends(get_resources)]
SimulatedDep = Annotated[SimulatedProvider, Depends(get_simulated_provider)]
