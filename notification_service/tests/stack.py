"""The real auth, event and booking apps beside notification_service, all in-process.

Internal calls between them go through
:class:`ticketing_common.testing.InProcessNetwork`, which routes ``http://<name>.internal``
to that app, so every lookup runs the real endpoint on
the real database. Messages travel through the real RabbitMQ (a vhost of this suite's
own), so a booking confirmed by booking_service reaches notification_service as in
production: outbox, relay, exchange, queue, consumer.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aio_pika
import httpx
from fastapi import FastAPI

from notification_service.tests.smtp import SmtpSink
from ticketing_common.messaging.contracts import Payload, PaymentSucceeded
from ticketing_common.messaging.envelope import CONTENT_TYPE, draft_envelope, encode_envelope
from ticketing_common.security import SERVICE_TOKEN_HEADER, issue_token
from ticketing_common.settings import ServiceSettings
from ticketing_common.testing import InProcessNetwork

SERVICE_URLS = {
    "AUTH_SERVICE_URL": "http://auth.internal",
    "EVENT_SERVICE_URL": "http://event.internal",
    "BOOKING_SERVICE_URL": "http://booking.internal",
    "PAYMENT_SERVICE_URL": "http://payment.internal",
}
PASSWORD = "Correct-Horse-9"


def code_in(message: EmailMessage, label: str) -> str:
    """The code on the ``<label>: <code>`` line of the plain-text part."""
    body = message.get_body(("plain",))
    assert body is not None
    match = re.search(rf"^{re.escape(label)}: (\S+)\s*$", body.get_content(), re.MULTILINE)
    assert match is not None, f"no {label!r} line in {body.get_content()!r}"
    return match.group(1)


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Stack:
    settings: ServiceSettings
    smtp: SmtpSink
    auth: httpx.AsyncClient
    events: httpx.AsyncClient
    bookings: httpx.AsyncClient
    notifications: httpx.AsyncClient
    notification_app: FastAPI
    #: the network notification_service's internal calls go through
    notification_network: InProcessNetwork
    admin: User = field(init=False)

    @property
    def notification_calls(self) -> list[str]:
        """The internal calls notification_service made (paths, in order)."""
        return self.notification_network.paths

    def __post_init__(self) -> None:
        self.admin = self.token_holder(role="admin")

    def token_holder(self, *, role: str = "user", user_id: int | None = None) -> User:
        """Someone with a valid access token (no account behind it unless ``user_id``)."""
        user_id = user_id or uuid.uuid4().int % 10**9 + 10**9
        token, _ = issue_token(
            secret=self.settings.jwt_secret,
            user_id=user_id,
            role=role,
            token_type="access",
            ttl=timedelta(minutes=15),
            email=f"{role}-{user_id}@example.com",
        )
        return User(user_id, f"{role}-{user_id}@example.com", role, token)

    async def register(self, prefix: str = "buyer") -> User:
        """Register through auth_service and verify with the code that was emailed."""
        email = f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
        response = await self.auth.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD, "role": "user"}
        )
        assert response.status_code == 201, response.text
        user_id = int(response.json()["user"]["id"])
        [message] = await self.smtp.wait_for(email, "Verify your email")
        code = code_in(message, "Your verification code")
        verified = await self.auth.post(
            "/api/auth/verify-email", json={"email": email, "code": code}
        )
        assert verified.status_code == 200, verified.text
        return User(user_id, email, "user", verified.json()["access_token"])

    async def create_event(self, **overrides: Any) -> dict[str, Any]:
        organizer = self.token_holder(role="organizer")
        body = {
            "title": f"Ethio-Jazz Night {uuid.uuid4().hex[:6]}",
            "description": "Live music",
            "date": (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0).isoformat(),
            "location": "Millennium Hall, Addis Ababa",
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
        event: dict[str, Any] = response.json()["event"]
        return event

    async def book(self, buyer: User, event_id: int, seat_ids: list[str]) -> dict[str, Any]:
        response = await self.bookings.post(
            "/api/bookings",
            json={"event_id": event_id, "seats": [{"id": s} for s in seat_ids]},
            headers=buyer.headers,
        )
        assert response.status_code == 201, response.text
        booking: dict[str, Any] = response.json()["booking"]
        return booking

    async def booking(self, booking_id: int) -> dict[str, Any]:
        response = await self.bookings.get(
            f"/internal/bookings/{booking_id}",
            headers={SERVICE_TOKEN_HEADER: self.settings.service_token},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def pay(self, booking: dict[str, Any]) -> None:
        """What payment_service announces once the provider took the money."""
        await self.publish(
            "payment_success",
            PaymentSucceeded(
                payment_id=int(booking["id"]),
                booking_id=int(booking["id"]),
                user_id=int(booking["user_id"]),
                tx_ref=f"tx-{uuid.uuid4().hex[:16]}",
                amount=booking["total_amount"],
                currency=booking["currency"],
                provider="simulated",
                paid_at=datetime.now(UTC),
            ),
        )

    async def publish(self, routing_key: str, payload: Payload) -> uuid.UUID:
        """Put a domain event on the exchange as a producer's relay would."""
        [message_id] = await self.publish_all([(routing_key, payload)])
        return message_id

    async def publish_all(self, events: list[tuple[str, Payload]]) -> list[uuid.UUID]:
        """Publish several events back to back on one channel (they arrive as a burst)."""
        drafts = [(key, draft_envelope(key, payload)) for key, payload in events]
        connection = await aio_pika.connect(self.settings.rabbitmq_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(self.settings.rabbitmq_exchange)
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            encode_envelope(draft, producer="tests"),
                            content_type=CONTENT_TYPE,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            message_id=draft["message_id"],
                            type=key,
                        ),
                        routing_key=key,
                    )
                    for key, draft in drafts
                )
            )
        return [uuid.UUID(draft["message_id"]) for _, draft in drafts]
