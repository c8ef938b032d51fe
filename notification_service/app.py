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
from notification_service.details import Lookups
from notification_service.mailer import create_mailer
from notification_service.service import Notifier
from notification_service.settings import NotificationSettings, get_settings
from notification_service.ticket_store import TicketStore
from ticketing_common.app import Lifecycle, create_service_app
from ticketing_common.db import create_pg_pool
from ticketing_common.messaging import MessagingSettings, messaging_lifecycle


def _notifier(settings: NotificationSettings, messaging: MessagingSettings) -> Lifecycle:
    """Delivery state and stored tickets are single statements on a raw asyncpg pool of
    their own (up to ``DB_POOL_SIZE`` connections): the consumer's inbox transaction holds
    one of the app pool's connections for the whole handler, so taking a second one from
    the same pool could starve every handler at once under load. The lookups use
    ``app.state.http`` as it stands once earlier lifecycles ran.
    """

    @contextlib.asynccontextmanager
    async def lifecycle(app: FastAPI) -> AsyncIterator[None]:
        pg = await create_pg_pool(settings, application_name=f"{settings.service_name}.notifier")
        mailer = create_mailer(settings)
        app.state.notifier = Notifier(pg=pg, mailer=mailer, settings=settings, messaging=messaging)
        app.state.tickets = TicketStore(pg, settings)
        app.state.lookups = Lookups.of(app.state.http, settings)
        try:
            yield
        finally:
            await mailer.aclose()
            await pg.close()

    return lifecycle


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
        _notifier(settings, messaging),
        messaging_lifecycle(subscriptions=SUBSCRIPTIONS, relay=False, config=messaging),
    ]
    return create_service_app(
        settings=settings,
        routers=[router],
        description="Emails (verification, password reset, tickets, cancellations, refunds) "
        "and PDF tickets with signed QR codes.",
        lifecycles=lifecycles,
    )
