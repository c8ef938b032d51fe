"""notification_service on a real PostgreSQL and a real SMTP server (aiosmtpd).

The service gets its own test database (``notification_db_pytest``), Redis db and
RabbitMQ vhost, apart from the other services' suites. Nothing is truncated between
tests: each test makes its own message ids and user ids.
"""

from __future__ import annotations

import itertools
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from pydantic import Field
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.app import create_app as create_auth_app
from auth_service.settings import AuthSettings
from booking_service.app import create_app as create_booking_app
from booking_service.settings import BookingSettings
from event_service.app import create_app as create_event_app
from event_service.settings import EventSettings
from notification_service.app import create_app
from notification_service.mailer import create_mailer
from notification_service.models import Notification
from notification_service.service import Notifier
from notification_service.settings import NotificationSettings
from notification_service.tests.smtp import SmtpSink, smtp_sink
from notification_service.tests.stack import SERVICE_URLS, Stack
from ticketing_common.db import create_engine, create_pg_pool, create_sessionmaker
from ticketing_common.messaging import MessagingSettings
from ticketing_common.testing import (
    InProcessNetwork,
    fresh_database,
    route_internal_calls,
    running_app,
)

REDIS_DB = 6
VHOST = "ticketing_pytest_notification"

_user_ids = itertools.count(uuid.uuid4().int % 1_000_000 * 1000 + 1)


def new_user_id() -> int:
    return next(_user_ids)


def reset_vhost(name: str) -> None:
    """A vhost with no queues left over from an earlier run (no stale messages)."""
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True, check=False)
    ensure_vhost(name)


def ensure_vhost(name: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], capture_output=True, check=False)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        capture_output=True,
        check=True,
    )


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpSink]:
    with smtp_sink() as sink:
        yield sink


@pytest.fixture(autouse=True)
def _smtp_answers_normally(smtp: SmtpSink) -> Iterator[None]:
    smtp.mode = "accept"
    yield
    smtp.mode = "accept"


@pytest.fixture(scope="session")
def notification_settings(smtp: SmtpSink) -> NotificationSettings:
    ensure_vhost(VHOST)
    base = fresh_database("notification_service", NotificationSettings)
    return NotificationSettings(
        DB_NAME=base.db_name,
        REDIS_DB=REDIS_DB,
        RABBITMQ_VHOST=VHOST,
        APP_ENV="test",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=smtp.port,
        SMTP_EMAIL="tickets@example.com",
        SMTP_TIMEOUT_SECONDS=5,
    )


@pytest.fixture(scope="session")
async def sessionmaker(
    notification_settings: NotificationSettings,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(notification_settings)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
async def pg(notification_settings: NotificationSettings) -> AsyncIterator[asyncpg.Pool]:
    """The raw pool delivery state and stored tickets use (as the app's notifier does)."""
    pool = await create_pg_pool(notification_settings)
    yield pool
    await pool.close()


@pytest.fixture
async def notifier(
    notification_settings: NotificationSettings, pg: asyncpg.Pool
) -> AsyncIterator[Notifier]:
    mailer = create_mailer(notification_settings)
    yield Notifier(
        pg=pg, mailer=mailer, settings=notification_settings, messaging=MessagingSettings()
    )
    await mailer.aclose()


async def notification_of(
    sessionmaker: async_sessionmaker[AsyncSession], message_id: uuid.UUID
) -> Notification:
    async with sessionmaker() as session:
        return (
            await session.execute(select(Notification).where(Notification.message_id == message_id))
        ).scalar_one()


# -- the other services, in-process ---------------------------------------------------------


class AuthBesideNotification(AuthSettings):
    db_name: str = Field("auth_db_for_notification", alias="DB_NAME")


class EventBesideNotification(EventSettings):
    db_name: str = Field("event_db_for_notification", alias="DB_NAME")


class BookingBesideNotification(BookingSettings):
    db_name: str = Field("booking_db_for_notification", alias="DB_NAME")


#: short back-offs and a small budget, so retry and dead-letter paths finish quickly
FAST_MESSAGING = MessagingSettings(max_attempts=3, retry_delays=(0.3, 0.6), startup_wait=10)


def _beside(service: str, settings_cls: type[Any], **overrides: Any) -> Any:
    base = fresh_database(service, settings_cls)
    return settings_cls(
        DB_NAME=base.db_name,
        REDIS_DB=REDIS_DB,
        RABBITMQ_VHOST=VHOST,
        APP_ENV="test",
        **SERVICE_URLS,
        **overrides,
    )


@pytest.fixture(scope="session")
def auth_settings() -> AuthSettings:
    settings: AuthSettings = _beside(
        "auth_service",
        AuthBesideNotification,
        ARGON2_TIME_COST=1,
        ARGON2_MEMORY_COST=1024,
        ADMIN_EMAIL="admin@example.com",
    )
    return settings


@pytest.fixture(scope="session")
def event_settings() -> EventSettings:
    settings: EventSettings = _beside("event_service", EventBesideNotification)
    return settings


@pytest.fixture(scope="session")
def booking_settings() -> BookingSettings:
    settings: BookingSettings = _beside("booking_service", BookingBesideNotification)
    return settings


@pytest.fixture(scope="session")
async def stack(
    notification_settings: NotificationSettings,
    auth_settings: AuthSettings,
    event_settings: EventSettings,
    booking_settings: BookingSettings,
    smtp: SmtpSink,
) -> AsyncIterator[Stack]:
    """auth, event, booking and notification apps running together on one vhost."""
    reset_vhost(VHOST)
    redis = Redis(db=REDIS_DB)
    await redis.flushdb()
    await redis.aclose()
    settings = notification_settings.model_copy(
        update={
            "auth_service_url": SERVICE_URLS["AUTH_SERVICE_URL"],
            "event_service_url": SERVICE_URLS["EVENT_SERVICE_URL"],
            "booking_service_url": SERVICE_URLS["BOOKING_SERVICE_URL"],
        }
    )
    auth_app = create_auth_app(auth_settings)
    event_app = create_event_app(event_settings)
    booking_app = create_booking_app(booking_settings)
    apps = {"auth.internal": auth_app, "event.internal": event_app, "booking.internal": booking_app}
    # notification_service's calls go through a transport of their own, so a test can tell
    # them from those booking_service and event_service make to each other.
    from_notification = InProcessNetwork(apps, raise_app_exceptions=True)
    notification_app = create_app(
        settings, messaging=FAST_MESSAGING, internal_transport=from_notification
    )
    between_others = InProcessNetwork(apps, raise_app_exceptions=True)
    async with (
        running_app(auth_app) as auth,
        running_app(event_app) as events,
        running_app(booking_app) as bookings,
        running_app(notification_app) as notifications,
    ):
        for app in (booking_app, event_app):
            await route_internal_calls(app, between_others)
        yield Stack(
            settings,
            smtp,
            auth,
            events,
            bookings,
            notifications,
            notification_app,
            from_notification,
        )
