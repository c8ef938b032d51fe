"""What every request and message handler of notification_service shares (one per app)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from notification_service.details import Lookups
from notification_service.mailer import create_mailer
from notification_service.service import Notifier
from notification_service.settings import NotificationSettings
from notification_service.ticket_store import TicketStore
from ticketing_common.app import Lifecycle
from ticketing_common.db import close_pg_pool, create_pg_pool
from ticketing_common.messaging import MessagingSettings


@dataclass(frozen=True)
class NotificationResources:
    settings: NotificationSettings
    #: delivery state, the mailer and the message settings
    notifier: Notifier
    #: rendered tickets, kept for later downloads
    tickets: TicketStore
    #: the other services' answers a message from before v2 still needs
    lookups: Lookups


def resources_of(app: Any) -> NotificationResources:
    resources: NotificationResources = app.state.notification_resources
    return resources


def notification_resources_lifecycle(
    settings: NotificationSettings, messaging: MessagingSettings
) -> Lifecycle:
    """Delivery state and stored tickets are single statements on a raw asyncpg pool of
    their own (up to ``DB_POOL_SIZE`` connections): the consumer's inbox transaction holds
    one of the app pool's connections for the whole handler, so taking a second one from
    the same pool could starve every handler at once under load. The lookups use the
    internal client as it stands once earlier lifecycles ran.
    """

    @contextlib.asynccontextmanager
    async def lifecycle(app: FastAPI) -> AsyncIterator[None]:
        pg = await create_pg_pool(settings, application_name=f"{settings.service_name}.notifier")
        mailer = create_mailer(settings)
        app.state.notification_resources = NotificationResources(
            settings=settings,
            notifier=Notifier(pg=pg, mailer=mailer, settings=settings, messaging=messaging),
            tickets=TicketStore(pg, settings),
            lookups=Lookups.of(app.state.http, settings),
        )
        try:
            yield
        finally:
            await mailer.aclose()
            await close_pg_pool(pg)

    return lifecycle
