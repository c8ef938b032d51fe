"""payment_service application factory (`python -m ticketing_common.serve payment_service`)."""

from __future__ import annotations

from fastapi import FastAPI

from payment_service.api import router
from payment_service.consumers import SUBSCRIPTIONS
from payment_service.providers import provider_lifecycle
from payment_service.reconciler import reconciler_lifecycle
from payment_service.resources import payment_resources_lifecycle
from payment_service.settings import PaymentSettings, get_settings
from ticketing_common.app import create_service_app
from ticketing_common.db import pg_pool_lifecycle
from ticketing_common.messaging import messaging_lifecycle


def create_app(settings: PaymentSettings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings or get_settings(),
        routers=[router],
        description="Payments: provider checkout, verify, signed callbacks, refunds.",
        lifecycles=[
            pg_pool_lifecycle,
            provider_lifecycle,
            payment_resources_lifecycle,
            messaging_lifecycle(subscriptions=SUBSCRIPTIONS),
            reconciler_lifecycle,
        ],
    )
