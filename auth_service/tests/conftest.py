"""auth_service in-process, on real PostgreSQL, Redis and RabbitMQ of its own.

The app runs once per session (``running_app``); before each test every table is emptied,
this suite's Redis db is flushed and the admin is seeded again, so each test starts from
a fresh service with only the admin in it. Passwords hash with cheap argon2 parameters
here, except in the event-loop benchmark, which builds its own app with the real ones.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from auth_service.app import create_app
from auth_service.models import Base
from auth_service.service import ensure_admin
from auth_service.settings import AuthSettings
from auth_service.tests.support import AuthClient
from ticketing_common.messaging import MESSAGING_TABLES
from ticketing_common.testing import fresh_database, running_app, truncate_all

REDIS_DB = 4
VHOST = "ticketing_pytest_auth"
CHEAP_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 1024, "ARGON2_PARALLELISM": 1}


def _ensure_vhost(name: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], capture_output=True, check=False)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        capture_output=True,
        check=True,
    )


@pytest.fixture(scope="session")
def base_settings() -> AuthSettings:
    _ensure_vhost(VHOST)
    settings: AuthSettings = fresh_database("auth_service", AuthSettings)  # type: ignore[assignment]
    return settings


def isolated_settings(base: AuthSettings, upload_dir: Path, **overrides: object) -> AuthSettings:
    values: dict[str, object] = {
        "DB_NAME": base.db_name,
        "REDIS_DB": REDIS_DB,
        "RABBITMQ_VHOST": VHOST,
        "APP_ENV": "test",
        "UPLOAD_DIR": upload_dir,
        "ADMIN_EMAIL": "admin@example.com",
        "ADMIN_PASSWORD": "Admin-Password-1",
        **overrides,
    }
    return AuthSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(base_settings: AuthSettings, tmp_path_factory: pytest.TempPathFactory) -> AuthSettings:
    return isolated_settings(base_settings, tmp_path_factory.mktemp("uploads"), **CHEAP_ARGON2)


@pytest.fixture(scope="session")
async def app(settings: AuthSettings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with running_app(application) as client:
        application.state.test_client = client
        yield application


@pytest.fixture(scope="session")
async def engine(settings: AuthSettings) -> AsyncIterator[AsyncEngine]:
    db = create_async_engine(settings.database_url)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
async def redis(settings: AuthSettings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
async def _fresh_service(app: FastAPI, settings: AuthSettings, redis: Redis) -> None:
    await truncate_all(settings, Base.metadata, extra_tables=MESSAGING_TABLES)
    await redis.flushdb()
    async with app.state.sessionmaker() as session, session.begin():
        await ensure_admin(session, settings, app.state.passwords)


@pytest.fixture
def client(app: FastAPI) -> httpx.AsyncClient:
    test_client: httpx.AsyncClient = app.state.test_client
    return test_client


@pytest.fixture
def auth(client: httpx.AsyncClient, engine: AsyncEngine, settings: AuthSettings) -> AuthClient:
    return AuthClient(client, engine, settings)
