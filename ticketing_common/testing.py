"""Test fixtures shared by the services' own test suites (a pytest plugin).

Each service's tests run against a real PostgreSQL database of their own
(``<service db>_pytest``), created fresh and migrated once per test session, and every
table is emptied before each test, so a test never sees another test's rows. Redis db 2
and the RabbitMQ vhost ``ticketing_pytest`` keep unit tests apart from the running stacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import create_async_engine

from ticketing_common.http_client import InternalClient
from ticketing_common.migrations import upgrade
from ticketing_common.settings import ServiceSettings

PYTEST_DB_SUFFIX = "_pytest"
PYTEST_REDIS_DB = 2
PYTEST_VHOST = "ticketing_pytest"


def _psql(sql: str) -> None:
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "postgres",
        ],
        input=sql,
        text=True,
        check=True,
        capture_output=True,
    )


def _ensure_vhost(vhost: str = PYTEST_VHOST) -> None:
    """Create the vhost and grant guest on it; retried, as rabbitmqctl races other runs."""
    for attempt in range(5):
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], capture_output=True, check=False)
        granted = subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            capture_output=True,
            check=False,
        )
        if granted.returncode == 0:
            return
        time.sleep(0.5 * (attempt + 1))
    raise RuntimeError(f"could not grant guest on vhost {vhost}: {granted.stderr!r}")


def fresh_database(
    service: str, settings_cls: type[ServiceSettings], **overrides: Any
) -> ServiceSettings:
    """Drop and recreate ``<db>_pytest``, migrate it to head; return settings pointing at it."""
    base = settings_cls()
    db_name = base.db_name + PYTEST_DB_SUFFIX
    _psql(
        f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE);\n'
        f'CREATE DATABASE "{db_name}" OWNER ticketing;\n'
    )
    _ensure_vhost()
    settings = settings_cls(
        DB_NAME=db_name,
        REDIS_DB=PYTEST_REDIS_DB,
        RABBITMQ_VHOST=PYTEST_VHOST,
        APP_ENV="test",
        **overrides,
    )
    upgrade(service, settings)
    return settings


async def truncate_all(
    settings: ServiceSettings, metadata: MetaData, extra_tables: tuple[str, ...] = ()
) -> None:
    """Empty every table of the service (and ``extra_tables``) in one statement."""
    names = [t.name for t in metadata.sorted_tables] + list(extra_tables)
    if not names:
        return
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            existing = set(
                (
                    await conn.execute(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                    )
                ).scalars()
            )
            names = [n for n in names if n in existing]
            if names:
                quoted = ", ".join(f'"{n}"' for n in names)
                await conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give an httpx client talking to it in-process.

    Unhandled errors come back as the 500 a real server would send, not as exceptions.
    """
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def route_internal_calls(app: FastAPI, transport: httpx.AsyncBaseTransport) -> None:
    """Send a running app's internal calls through ``transport`` (to in-process apps).

    The app keeps its one ``InternalClient``; every typed client its lifecycles built on
    it (booking's EventsApi, event_service's BookingsApi, ...) follows the new route.
    """
    http: InternalClient = app.state.http
    await http.use_transport(transport)


class InProcessNetwork(httpx.AsyncBaseTransport):
    """A tiny network of in-process apps: each request goes to the app registered for its
    host (``network.add("booking.internal", app)``), and ``sent`` lists what was asked for
    (``"GET /internal/bookings/1"``), in order. With ``held``, every request waits until the
    event is set (a network that holds a callback in flight). An unhandled error comes
    back as the 500 a real server would send, unless ``raise_app_exceptions``."""

    def __init__(
        self,
        routes: Mapping[str, FastAPI] | None = None,
        held: asyncio.Event | None = None,
        *,
        raise_app_exceptions: bool = False,
    ) -> None:
        self._routes: dict[str, httpx.ASGITransport] = {}
        self._raise = raise_app_exceptions
        self._held = held
        self.held_now = 0
        self.sent: list[str] = []
        for host, app in (routes or {}).items():
            self.add(host, app)

    def add(self, host: str, app: FastAPI) -> None:
        self._routes[host] = httpx.ASGITransport(app=app, raise_app_exceptions=self._raise)

    @property
    def paths(self) -> list[str]:
        """The paths asked for, in order (``sent`` without the methods)."""
        return [entry.split(" ", 1)[1] for entry in self.sent]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        if self._held is not None:
            self.held_now += 1
            try:
                await self._held.wait()
            finally:
                self.held_now -= 1
        transport = self._routes.get(request.url.host)
        if transport is None:
            raise httpx.ConnectError(f"no service at {request.url.host}", request=request)
        return await transport.handle_async_request(request)
