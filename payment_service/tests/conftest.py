"""payment_service tests: the real app on a real PostgreSQL, RabbitMQ and Redis.

booking_service runs in-process next to it (its real ``/internal/bookings`` API on its own
migrated database), reached through the payment app's ordinary ``InternalClient``; the
network records every internal call. A booking is announced to payment_service as
booking_service does it, with ``booking_created`` through an outbox, the relay, RabbitMQ
and the consumer. The Chapa variant talks HTTP to a local fake Chapa server
(``fake_chapa.py``). The payment app publishes on an exchange of its own, so these tests
never feed other suites' queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import Field
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import selectinload

from booking_service.app import create_app as create_booking_app
from booking_service.models import Base as BookingBase
from booking_service.models import Booking, BookingSeat
from booking_service.settings import BookingSettings
from payment_service.app import create_app
from payment_service.models import Base, PayableBooking, Payment
from payment_service.providers import ProviderTransaction, SimulatedProvider
from payment_service.settings import PaymentSettings
from payment_service.tests.fake_chapa import SECRET_KEY, FakeChapa, serve_fake_chapa
from payment_service.webhooks import SIGNATURE_HEADER, sign
from ticketing_common.db import close_pg_pool, create_pg_pool, create_sessionmaker, utcnow
from ticketing_common.messaging import publish
from ticketing_common.messaging.contracts import (
    BookedSeat,
    BookingCancelled,
    BookingCreated,
    Payload,
)
from ticketing_common.messaging.schema import MESSAGING_TABLES, inbox_messages, outbox_messages
from ticketing_common.security import issue_token
from ticketing_common.testing import (
    InProcessNetwork,
    fresh_database,
    route_internal_calls,
    running_app,
    truncate_all,
)

TEST_EXCHANGE = "ticketing.events.payment_pytest"
PAYMENT_HOST = "payment.test"
BOOKING_HOST = "booking.test"
EVENT_HOST = "event.test"


class BookingSettingsForPayments(BookingSettings):
    """booking_service on a database of these tests' own, apart from its own suite's."""

    db_name: str = Field("booking_db_for_payments", alias="DB_NAME")


@pytest.fixture(scope="session")
def payment_settings() -> PaymentSettings:
    settings = fresh_database(
        "payment_service",
        PaymentSettings,
        RABBITMQ_EXCHANGE=TEST_EXCHANGE,
        PAYMENT_SERVICE_URL=f"http://{PAYMENT_HOST}",
        BOOKING_SERVICE_URL=f"http://{BOOKING_HOST}",
        EVENT_SERVICE_URL=f"http://{EVENT_HOST}",
        PUBLIC_BASE_URL="http://gateway.test",
        PAYMENT_RECONCILE_INTERVAL_SECONDS=3600,
    )
    assert isinstance(settings, PaymentSettings)
    return settings


@pytest.fixture(scope="session")
def booking_settings() -> BookingSettings:
    settings = fresh_database("booking_service", BookingSettingsForPayments)
    assert isinstance(settings, BookingSettings)
    return settings


@pytest.fixture(scope="session")
async def booking_engine(booking_settings: BookingSettings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(booking_settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def payment_engine(payment_settings: PaymentSettings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(payment_settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def booking_app(
    booking_settings: BookingSettings, booking_engine: AsyncEngine
) -> AsyncIterator[FastAPI]:
    """booking_service's real routes on its real database, without its background loops
    (its raw pool too: ``/internal/bookings/{id}`` reads through it)."""
    app = create_booking_app(booking_settings)
    app.state.engine = booking_engine
    app.state.sessionmaker = create_sessionmaker(booking_engine)
    app.state.pg = await create_pg_pool(booking_settings)
    yield app
    await close_pg_pool(app.state.pg)


@pytest.fixture(autouse=True)
async def _empty_tables(
    payment_settings: PaymentSettings, booking_settings: BookingSettings
) -> None:
    await truncate_all(payment_settings, Base.metadata, extra_tables=MESSAGING_TABLES)
    await truncate_all(booking_settings, BookingBase.metadata, extra_tables=MESSAGING_TABLES)


@pytest.fixture(scope="session")
async def fake_chapa() -> AsyncIterator[FakeChapa]:
    async with serve_fake_chapa() as fake:
        yield fake


@dataclass
class Buyer:
    user_id: int
    headers: dict[str, str]

    @property
    def email(self) -> str:
        return f"buyer{self.user_id}@example.com"


def booking_created(booking: Booking) -> BookingCreated:
    """The ``booking_created`` booking_service publishes for ``booking``."""
    assert booking.event_title is not None
    assert booking.event_starts_at is not None
    return BookingCreated(
        booking_id=booking.id,
        user_id=booking.user_id,
        buyer_email=booking.buyer_email,
        event_id=booking.event_id,
        organizer_id=booking.organizer_id,
        event_title=booking.event_title,
        event_starts_at=booking.event_starts_at,
        venue=booking.venue or "",
        seats=[BookedSeat.model_validate(s, from_attributes=True) for s in booking.seats],
        total_amount=booking.total_amount,
        currency=booking.currency,
        expires_at=booking.expires_at,
        created_at=booking.created_at,
    )


def booking_cancelled(booking: Booking, **changes: Any) -> BookingCancelled:
    """The ``booking_cancelled`` booking_service publishes when ``booking`` leaves pending."""
    fields: dict[str, Any] = {
        "booking_id": booking.id,
        "user_id": booking.user_id,
        "event_id": booking.event_id,
        "hold_token": booking.hold_token,
        "seat_ids": [seat.seat_id for seat in booking.seats],
        "previous_status": "pending",
        "reason": "cancelled",
        "event_title": booking.event_title,
        "buyer_email": booking.buyer_email,
    }
    return BookingCancelled.model_validate(fields | changes)


@dataclass
class Payments:
    """The running payment app and what a test does around it."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: PaymentSettings
    booking_engine: AsyncEngine
    payment_engine: AsyncEngine
    fake_chapa: FakeChapa | None
    #: the network of the app's internal calls (``network.sent`` lists them)
    network: InProcessNetwork

    @property
    def provider_name(self) -> str:
        return self.settings.payment_provider

    def buyer(self, user_id: int | None = None, role: str = "user") -> Buyer:
        user_id = user_id or int(uuid.uuid4().int % 1_000_000) + 1
        token, _ = issue_token(
            secret=self.settings.jwt_secret,
            user_id=user_id,
            role=role,
            token_type="access",
            ttl=timedelta(minutes=15),
            email=f"buyer{user_id}@example.com",
        )
        return Buyer(user_id, {"Authorization": f"Bearer {token}"})

    async def booking(
        self,
        buyer: Buyer,
        *,
        status: str = "pending",
        prices: tuple[str, ...] = ("150.00", "250.50"),
        currency: str = "ETB",
        event_id: int = 7,
        row: int = 1,
        event_title: str | None = "Tizita Night",
        expires_in: timedelta = timedelta(minutes=15),
        announced: bool = True,
    ) -> int:
        """A booking in booking_service's database, as its create flow would leave it.

        A pending one is announced to payment_service (``booking_created``, through the
        broker) unless ``announced=False``: the buyer then beats the message. No
        ``event_title`` makes a booking from before bookings kept their event's title.
        """
        seats = [
            BookingSeat(
                event_id=event_id,
                seat_id=f"vip-{row}-{n}",
                ticket_class="vip",
                row=row,
                number=n,
                price=Decimal(price),
                status=status,
            )
            for n, price in enumerate(prices, start=1)
        ]
        booking = Booking(
            user_id=buyer.user_id,
            event_id=event_id,
            organizer_id=99,
            status=status,
            total_amount=sum((s.price for s in seats), Decimal("0")),
            currency=currency,
            hold_token=uuid.uuid4().hex,
            expires_at=utcnow() + expires_in,
            event_title=event_title,
            event_starts_at=utcnow() + timedelta(days=30) if event_title else None,
            venue="Millennium Hall" if event_title else None,
            buyer_email=buyer.email if event_title else None,
            seats=seats,
        )
        async with create_sessionmaker(self.booking_engine)() as session, session.begin():
            session.add(booking)
        if announced and status == "pending":
            await self.announce(booking.id)
        return booking.id

    async def _stored_booking(self, booking_id: int) -> Booking:
        async with create_sessionmaker(self.booking_engine)() as session:
            booking = await session.get(Booking, booking_id, options=[selectinload(Booking.seats)])
            assert booking is not None
            return booking

    async def announce(self, booking_id: int) -> None:
        """booking_service's ``booking_created`` for the booking reaches payment_service."""
        await self.send("booking_created", booking_created(await self._stored_booking(booking_id)))

    async def cancel_booking(self, booking_id: int, **changes: Any) -> None:
        """booking_service ends the booking (``reason``: cancelled, expired, payment_failed)
        and says so with ``booking_cancelled``."""
        ended = {"expired": "expired", "payment_failed": "failed"}
        await self.set_booking_status(booking_id, ended.get(changes.get("reason", ""), "cancelled"))
        booking = await self._stored_booking(booking_id)
        await self.send("booking_cancelled", booking_cancelled(booking, **changes))

    async def send(self, routing_key: str, payload: Payload) -> None:
        """Deliver a message as its producer does (outbox, relay, broker) and wait until
        payment_service's consumer has handled it."""
        async with self.app.state.sessionmaker() as session, session.begin():
            message_id = await publish(session, routing_key, payload)
        async with asyncio.timeout(15):
            while True:
                async with self.payment_engine.connect() as conn:
                    handled = await conn.scalar(
                        select(func.count())
                        .select_from(inbox_messages)
                        .where(inbox_messages.c.message_id == message_id)
                    )
                if handled:
                    return
                await asyncio.sleep(0.01)

    async def payable_booking(self, booking_id: int) -> PayableBooking | None:
        async with create_sessionmaker(self.payment_engine)() as session:
            return await session.get(PayableBooking, booking_id)

    async def set_booking_status(self, booking_id: int, status: str) -> None:
        async with self.booking_engine.begin() as conn:
            await conn.execute(
                text("UPDATE bookings SET status = :s WHERE id = :id"),
                {"s": status, "id": booking_id},
            )
            await conn.execute(
                text("UPDATE booking_seats SET status = :s WHERE booking_id = :id"),
                {"s": status, "id": booking_id},
            )

    async def initialize(self, buyer: Buyer, booking_id: int, **extra: Any) -> httpx.Response:
        return await self.client.post(
            "/api/payments/initialize",
            json={"booking_id": booking_id, **extra},
            headers=buyer.headers,
        )

    async def open_checkout(self, buyer: Buyer, booking_id: int) -> str:
        response = await self.initialize(buyer, booking_id)
        assert response.status_code == 200, response.text
        tx_ref: str = response.json()["tx_ref"]
        return tx_ref

    async def verify(self, buyer: Buyer, tx_ref: str) -> httpx.Response:
        return await self.client.get(f"/api/payments/verify/{tx_ref}", headers=buyer.headers)

    async def buyer_pays_at_provider(self, tx_ref: str, outcome: str = "success") -> None:
        """The buyer decides at the provider; no callback reaches us (it is "in flight")."""
        if self.fake_chapa is not None:
            if outcome == "success":
                self.fake_chapa.pay(tx_ref)
            else:
                self.fake_chapa.decline(tx_ref)
            return
        async with self.payment_engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE simulated_provider_transactions SET status = :s, "
                    "completed_at = now() WHERE tx_ref = :t"
                ),
                {"s": outcome, "t": tx_ref},
            )

    async def callback(
        self,
        tx_ref: str,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        raw = body if body is not None else json.dumps({"tx_ref": tx_ref}).encode()
        signature = sign(
            secret or self.settings.payment_webhook_secret,
            raw,
            timestamp if timestamp is not None else int(time.time()),
        )
        return await self.client.post(
            "/api/payments/callback",
            content=raw,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
        )

    async def callbacks_delivered(self) -> None:
        """Wait for the simulated provider's callbacks in flight (it posts them behind the
        buyer's redirect, as a real gateway sends webhooks)."""
        provider = self.app.state.payment_provider
        if isinstance(provider, SimulatedProvider):
            async with asyncio.timeout(30):
                await provider.callbacks_delivered()

    async def payment(self, tx_ref: str) -> Payment:
        async with create_sessionmaker(self.payment_engine)() as session:
            found = await session.scalar(select(Payment).where(Payment.tx_ref == tx_ref))
            assert found is not None
            return found

    async def outbox(self, routing_key: str) -> list[dict[str, Any]]:
        async with self.payment_engine.connect() as conn:
            rows = await conn.execute(
                select(outbox_messages.c.envelope)
                .where(outbox_messages.c.routing_key == routing_key)
                .order_by(outbox_messages.c.id)
            )
            return [row.envelope for row in rows]

    async def count(self, table: str) -> int:
        async with self.payment_engine.connect() as conn:
            result = await conn.scalar(select(func.count()).select_from(text(table)))
            return int(result or 0)


def verify_together(monkeypatch: pytest.MonkeyPatch, payments: Payments, parties: int) -> None:
    """Hold every provider verify until ``parties`` of them have asked: each settle has
    then read the payment as pending before any of them records an outcome."""
    provider = payments.app.state.payment_provider
    verify, arrived, everyone = provider.verify, 0, asyncio.Event()

    async def together(tx_ref: str) -> ProviderTransaction:
        nonlocal arrived
        arrived += 1
        if arrived >= parties:
            everyone.set()
        await asyncio.wait_for(everyone.wait(), 10)
        observed: ProviderTransaction = await verify(tx_ref)
        return observed

    monkeypatch.setattr(provider, "verify", together)


PaymentsFactory = Callable[..., contextlib.AbstractAsyncContextManager[Payments]]


@pytest.fixture
def payments_factory(
    payment_settings: PaymentSettings,
    booking_app: FastAPI,
    booking_engine: AsyncEngine,
    payment_engine: AsyncEngine,
    fake_chapa: FakeChapa,
) -> PaymentsFactory:
    """Start the payment app with settings overrides (by field name):
    ``async with payments_factory("chapa", payment_return_url=...) as payments``;
    ``callbacks_held=asyncio.Event()`` holds the simulated provider's callbacks until set."""

    @contextlib.asynccontextmanager
    async def start(provider: str = "simulated", **overrides: Any) -> AsyncIterator[Payments]:
        fake: FakeChapa | None = None
        if provider == "chapa":
            fake = fake_chapa
            fake.reset()
            overrides = {
                "chapa_base_url": fake.base_url,
                "chapa_secret_key": SECRET_KEY,
                "chapa_retries": 2,
                "chapa_timeout_seconds": 2.0,
                **overrides,
            }
        callbacks_held: asyncio.Event | None = overrides.pop("callbacks_held", None)
        fields = {**payment_settings.model_dump(), "payment_provider": provider, **overrides}
        settings = PaymentSettings(**fields)
        app = create_app(settings)
        if fake is None:  # the simulated provider's callbacks reach this app in-process
            app.state.provider_transport = InProcessNetwork(
                {PAYMENT_HOST: app}, callbacks_held, raise_app_exceptions=True
            )
        async with running_app(app) as client:
            network = InProcessNetwork({BOOKING_HOST: booking_app}, raise_app_exceptions=True)
            await route_internal_calls(app, network)
            yield Payments(app, client, settings, booking_engine, payment_engine, fake, network)

    return start


@pytest.fixture(params=["simulated", "chapa"])
async def payments(
    payments_factory: PaymentsFactory, request: pytest.FixtureRequest
) -> AsyncIterator[Payments]:
    """The payment app with each provider in turn: the same contract holds for both."""
    async with payments_factory(request.param) as running:
        yield running


@pytest.fixture
async def simulated(payments_factory: PaymentsFactory) -> AsyncIterator[Payments]:
    async with payments_factory("simulated") as running:
        yield running
