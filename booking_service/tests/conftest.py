"""booking_service beside a real, in-process event_service, on real PostgreSQL/Redis/RabbitMQ.

booking_service's internal HTTP client is pointed at the event_service app through an
ASGI transport, so every hold, release and confirm runs the real seat gate. Both apps
get databases, a Redis db and a RabbitMQ vhost of their own, apart from the other
services' test suites (which may run at the same time).

Nothing is truncated between tests: every test makes its own event and its own users
(fresh ids), which also keeps late messages of one test from touching the next.
"""

from __future__ import annotations

import itertools
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import Field
from redis.asyncio import Redis
from sqlalchemy import select

from booking_service import saga
from booking_service.app import create_app
from booking_service.resources import resources_of
from booking_service.settings import BookingSettings
from event_service.app import create_app as create_event_app
from event_service.settings import EventSettings
from ticketing_common.messaging.contracts import PaymentFailed, PaymentSucceeded
from ticketing_common.messaging.schema import outbox_messages
from ticketing_common.security import SERVICE_TOKEN_HEADER, issue_token
from ticketing_common.testing import fresh_database, route_internal_calls, running_app

REDIS_DB = 5
VHOST = "ticketing_pytest_booking"
HOLD_TTL_SECONDS = 30

_user_ids = itertools.count(uuid.uuid4().int % 1_000_000 * 1000 + 1)


class EventSettingsBesideBooking(EventSettings):
    """event_service as booking's tests run it: a database of its own name."""

    db_name: str = Field("event_db_for_booking", alias="DB_NAME")


def _ensure_vhost(name: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], capture_output=True, check=False)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        capture_output=True,
        check=True,
    )


def _fresh_database(service: str, settings_cls: type[Any]) -> Any:
    """``fresh_database``, retried: other suites add and drop RabbitMQ vhosts meanwhile."""
    for attempt in range(5):
        try:
            return fresh_database(service, settings_cls)
        except subprocess.CalledProcessError:
            if attempt == 4:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def _isolated(base: Any, settings_cls: type[Any], **overrides: Any) -> Any:
    """Settings on our own Redis db and vhost, with small pools (PostgreSQL is shared)."""
    return settings_cls(
        DB_NAME=base.db_name,
        REDIS_DB=REDIS_DB,
        RABBITMQ_VHOST=VHOST,
        APP_ENV="test",
        DB_POOL_SIZE=5,
        DB_MAX_OVERFLOW=5,
        **overrides,
    )


@pytest.fixture(scope="session")
def booking_settings() -> BookingSettings:
    _ensure_vhost(VHOST)
    base = _fresh_database("booking_service", BookingSettings)
    settings: BookingSettings = _isolated(
        base,
        BookingSettings,
        HOLD_TTL_SECONDS=HOLD_TTL_SECONDS,
        # Tests drive expiry themselves (expire_once); the loop still runs, rarely.
        BOOKING_EXPIRY_INTERVAL_SECONDS=3600,
    )
    return settings


@pytest.fixture(scope="session")
def event_settings() -> EventSettings:
    base = _fresh_database("event_service", EventSettingsBesideBooking)
    # Tests make the waiting lists' offers themselves (offer_once); the loop runs rarely.
    settings: EventSettings = _isolated(
        base, EventSettingsBesideBooking, WAITLIST_TICK_SECONDS=3600
    )
    return settings


@dataclass(frozen=True)
class Actor:
    user_id: int
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Stack:
    """The two apps and clients on them, with the steps tests keep repeating."""

    settings: BookingSettings
    app: FastAPI
    client: httpx.AsyncClient
    event_app: FastAPI
    events: httpx.AsyncClient
    admin: Actor = field(init=False)

    def __post_init__(self) -> None:
        self.admin = self.actor("admin")

    def actor(self, role: str = "user") -> Actor:
        user_id = next(_user_ids)
        token, _ = issue_token(
            secret=self.settings.jwt_secret,
            user_id=user_id,
            role=role,
            token_type="access",
            ttl=timedelta(minutes=15),
            email=f"{role}-{user_id}@example.com",
        )
        return Actor(user_id, role, token)

    async def create_event(self, organizer: Actor | None = None, **overrides: Any) -> int:
        organizer = organizer or self.actor("organizer")
        body = {
            "title": "Concert",
            "description": "A test concert",
            "date": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            "location": "Addis Ababa",
            "price_normal": "100.00",
            "price_vip": "250.00",
            "price_vvip": "500.00",
            "seats_normal": 20,
            "seats_vip": 10,
            "seats_vvip": 4,
            "seats_per_row": 10,
            **overrides,
        }
        response = await self.events.post("/api/events", json=body, headers=organizer.headers)
        assert response.status_code == 201, response.text
        return int(response.json()["event"]["id"])

    async def book(
        self,
        buyer: Actor,
        event_id: int,
        seats: list[str] | None = None,
        *,
        key: str | None = None,
        **body: Any,
    ) -> httpx.Response:
        payload: dict[str, Any] = {"event_id": event_id, **body}
        if seats is not None:
            payload["seats"] = [{"id": seat} for seat in seats]
        headers = dict(buyer.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.client.post("/api/bookings", json=payload, headers=headers)

    async def booked(self, buyer: Actor, event_id: int, seats: list[str]) -> dict[str, Any]:
        response = await self.book(buyer, event_id, seats)
        assert response.status_code == 201, response.text
        booking: dict[str, Any] = response.json()["booking"]
        return booking

    async def seat_statuses(self, event_id: int) -> dict[str, str]:
        """event_service's public seat map: seat id → available/held/sold."""
        response = await self.events.get(f"/api/events/{event_id}/seats")
        assert response.status_code == 200, response.text
        return {seat["seat_id"]: seat["status"] for seat in response.json()["seats"]}

    async def release_hold(self, event_id: int, token: str) -> None:
        response = await self.events.delete(
            f"/internal/events/{event_id}/holds/{token}",
            headers={SERVICE_TOKEN_HEADER: self.settings.service_token},
        )
        assert response.status_code == 204, response.text

    async def booking(self, booking_id: int) -> dict[str, Any]:
        response = await self.client.get(
            f"/internal/bookings/{booking_id}",
            headers={SERVICE_TOKEN_HEADER: self.settings.service_token},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def settle(self, booking: dict[str, Any], **overrides: Any) -> str:
        """Run the ``payment_success`` handling for the booking, committed."""
        payment = PaymentSucceeded(
            **{
                "payment_id": booking["id"],
                "booking_id": booking["id"],
                "user_id": booking["user_id"],
                "tx_ref": f"tx-{uuid.uuid4().hex[:16]}",
                "amount": Decimal(str(booking["total_amount"])),
                "currency": booking["currency"],
                "provider": "simulated",
                "paid_at": datetime.now(UTC),
                **overrides,
            }
        )
        async with self.app.state.sessionmaker() as session, session.begin():
            return await saga.settle_payment(session, resources_of(self.app).events, payment)

    async def fail(self, booking: dict[str, Any]) -> str:
        payment = PaymentFailed(
            payment_id=booking["id"],
            booking_id=booking["id"],
            user_id=booking["user_id"],
            tx_ref=f"tx-{uuid.uuid4().hex[:16]}",
            reason="card declined",
        )
        async with self.app.state.sessionmaker() as session, session.begin():
            return await saga.fail_booking(session, resources_of(self.app).events, payment)

    async def outbox(self, routing_key: str, **payload_fields: Any) -> list[dict[str, Any]]:
        """Payloads booking_service wrote to its outbox under ``routing_key``, oldest first."""
        async with self.app.state.sessionmaker() as session:
            rows = await session.scalars(
                select(outbox_messages.c.envelope)
                .where(outbox_messages.c.routing_key == routing_key)
                .order_by(outbox_messages.c.id)
            )
            payloads = [envelope["payload"] for envelope in rows]
        return [p for p in payloads if all(p.get(k) == v for k, v in payload_fields.items())]


@pytest.fixture(scope="session")
async def stack(
    booking_settings: BookingSettings, event_settings: EventSettings
) -> AsyncIterator[Stack]:
    redis = Redis(db=REDIS_DB)
    await redis.flushdb()
    await redis.aclose()
    event_app = create_event_app(event_settings)
    booking_app = create_app(booking_settings)
    async with running_app(event_app) as events, running_app(booking_app) as client:
        await route_internal_calls(booking_app, httpx.ASGITransport(app=event_app))
        await route_internal_calls(event_app, httpx.ASGITransport(app=booking_app))
        yield Stack(booking_settings, booking_app, client, event_app, events)
