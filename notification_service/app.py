"""notification_service application factory.

Run with ``python -m ticketing_common.serve notification_service``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from notification_service.api import router
from notification_service.consumers import SUBSCRIPTIONS
from notification_service.resources import notification_resources_lifecycle
from notification_service.settings import NotificationSettings, get_settings
from ticketing_common.app import Lifecycle, create_service_app
from ticketing_common.messaging import MessagingSettings, messaging_lifecycle


def _internal_client_over(transport: httpx.AsyncBaseTransport) -> Lifecycle:
    """Send internal calls through ``transport`` (tests run the other services in-process)."""

    @contextlib.asynccontextmanager
    async def lifecycle(app: FastAPI) -> AsyncIterator[None]:
        # Before the consumers start: no message is handled over the real network.
        await app.state.http.use_transport(transport)
        yield

    return lifecycle


def create_app(
    settings: NotificationSettings | None = None,
    *,
    messaging: MessagingSettings | None = None,
    internal_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    messaging = messaging or MessagingSettings()
    lifecycles: list[Lifecycle] = []
    if internal_transport is not None:
        lifecycles.append(_internal_client_over(internal_transport))
    lifecycles += [
        notification_resources_lifecycle(settings, messaging),
        messaging_lifecycle(subscriptions=SUBSCRIPTIONS, relay=False, config=messaging),
    ]
    return create_service_app(
        settings=settings,
        routers=[router],
        description="Emails (verification, password reset, tickets, cancellations, refunds) "
        "and PDF tickets with signed QR codes.",
        lifecycles=lifecycles,
    )
