"""Emails as the other services cause them: real apps, real RabbitMQ, real SMTP server."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from html import escape
from urllib.parse import parse_qs, urlsplit

import aio_pika
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification_service.models import Notification
from notification_service.tests.pdf import pdf_text, qr_codes
from notification_service.tests.stack import PASSWORD, Stack, code_in
from notification_service.tickets import format_event_date
from ticketing_common.messaging.contracts import (
    BookedSeat,
    BookingCancelled,
    BookingConfirmed,
    EmailVerification,
    PasswordReset,
    PaymentRefunded,
    RefundRequested,
)
from ticketing_common.messaging.topology import dead_letter_queue_name
from ticketing_common.tickets import verify_ticket_code

SEATS = ["vip-1-4", "vip-1-5", "normal-2-3"]


def ticket_pdf(message: EmailMessage) -> bytes:
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    content = attachment.get_content()
    assert isinstance(content, bytes)
    return content


def calls_about(stack: Stack, *, user_id: int, event_id: int, booking_id: int) -> list[str]:
    """The internal calls notification_service made for this user, event or booking."""
    mine = (f"/internal/users/{user_id}", f"/internal/events/{event_id}")
    return [
        path
        for path in stack.notification_calls
        if path in mine or path == f"/internal/bookings/{booking_id}"
    ]


def plain_text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    text: str = body.get_content()
    return text


async def no_more_than(stack: Stack, recipient: str, subject: str, count: int) -> None:
    """Give a duplicate time to show up, then check it did not."""
    await asyncio.sleep(1.5)
    assert len(stack.smtp.to(recipient, subject)) == count


async def test_registering_delivers_a_verification_code_that_verifies_the_account(
    stack: Stack,
) -> None:
    user = await stack.register()  # registers, reads the code from the email, verifies

    me = await stack.auth.get("/api/auth/me", headers=user.headers)

    assert me.status_code == 200
    assert me.json()["is_verified"] is True


async def test_the_verification_email_links_to_the_front_end_and_its_token_verifies(
    stack: Stack,
) -> None:
    email = f"linked-{uuid.uuid4().hex[:10]}@example.com"
    registered = await stack.auth.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "role": "user"}
    )
    assert registered.status_code == 201, registered.text

    [message] = await stack.smtp.wait_for(email, "Verify your email")
    [link] = re.findall(r"http://localhost:3000/verify-email\?\S+", plain_text(message))
    query = parse_qs(urlsplit(link).query)
    verified = await stack.auth.post(
        "/api/auth/verify-email", json={"email": query["email"][0], "code": query["token"][0]}
    )

    assert query["email"] == [email]
    assert verified.status_code == 200, verified.text
    html = message.get_body(("html",))
    assert html is not None
    assert f'href="{escape(link, quote=True)}"' in html.get_content()


async def test_forgot_password_delivers_a_code_that_resets_the_password(stack: Stack) -> None:
    user = await stack.register()

    response = await stack.auth.post("/api/auth/forgot-password", json={"email": user.email})
    assert response.status_code == 200
    [message] = await stack.smtp.wait_for(user.email, "Password reset code")
    code = code_in(message, "Your password reset code")
    reset = await stack.auth.post(
        "/api/auth/reset-password",
        json={"email": user.email, "code": code, "new_password": "Brand-New-Pass-7"},
    )
    login = await stack.auth.post(
        "/api/auth/login", json={"email": user.email, "password": "Brand-New-Pass-7"}
    )
    old_login = await stack.auth.post(
        "/api/auth/login", json={"email": user.email, "password": PASSWORD}
    )

    assert reset.status_code == 200, reset.text
    assert login.status_code == 200, login.text
    assert old_login.status_code == 401


async def test_a_paid_booking_delivers_one_email_with_the_pdf_ticket(stack: Stack) -> None:
    buyer = await stack.register()
    event = await stack.create_event()
    booking = await stack.book(buyer, event["id"], SEATS)

    await stack.pay(booking)

    [message] = await stack.smtp.wait_for(buyer.email, "Your ticket")
    assert event["title"] in message["Subject"]
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == f"ticket-{booking['id']}.pdf"
    text = pdf_text(ticket_pdf(message))
    assert event["title"] in " ".join(text.split())
    assert set(SEATS) <= set(text.split())
    assert f"ETB {Decimal(booking['total_amount']):,.2f}" in text
    secret = stack.settings.ticket_signing_secret
    signed = [verify_ticket_code(code, secret) for code in qr_codes(ticket_pdf(message))]
    assert {(s.booking_id, s.event_id) for s in signed} == {(booking["id"], event["id"])}
    assert sorted(s.seat_id or "" for s in signed) == sorted(SEATS), "one QR code per seat"
    await no_more_than(stack, buyer.email, "Your ticket", 1)


async def test_a_paid_booking_is_emailed_from_the_message_alone(stack: Stack) -> None:
    buyer = await stack.register()
    event = await stack.create_event(location="Ghion Hotel Garden, Addis Ababa")
    booking = await stack.book(buyer, event["id"], ["vvip-1-2", "normal-1-4"])

    await stack.pay(booking)

    [message] = await stack.smtp.wait_for(buyer.email, "Your ticket")
    text = plain_text(message)
    assert f"Event: {event['title']}" in text
    assert "Venue: Ghion Hotel Garden, Addis Ababa" in text
    assert f"Date: {format_event_date(datetime.fromisoformat(event['date']))}" in text
    assert "vvip-1-2 (VVIP, row 1, seat 2)" in text
    assert f"Amount paid: ETB {Decimal(booking['total_amount']):,.2f}" in text
    assert (
        calls_about(stack, user_id=buyer.id, event_id=event["id"], booking_id=booking["id"]) == []
    ), "a v2 booking_confirmed needs no other service"


async def test_a_confirmation_from_before_v2_is_emailed_from_lookups(stack: Stack) -> None:
    """A v1 message (no event details, no email) still in a queue after the upgrade."""
    buyer = await stack.register()
    event = await stack.create_event(location="Entoto Park")
    booking_id = uuid.uuid4().int % 10**9 + 10**9

    await stack.publish(
        "booking_confirmed",
        BookingConfirmed(
            booking_id=booking_id,
            user_id=buyer.id,
            event_id=event["id"],
            hold_token="v1-token",
            seats=[
                BookedSeat(
                    seat_id="vip-1-7", ticket_class="vip", row=1, number=7, price=Decimal("250")
                )
            ],
            total_amount=Decimal("250.00"),
            currency="ETB",
            confirmed_at=datetime.now(UTC),
        ),
    )

    [message] = await stack.smtp.wait_for(buyer.email, "Your ticket")
    assert event["title"] in message["Subject"]
    assert "Venue: Entoto Park" in plain_text(message)
    [code] = qr_codes(ticket_pdf(message))
    signed = verify_ticket_code(code, stack.settings.ticket_signing_secret)
    assert (signed.booking_id, signed.event_id, signed.seat_id) == (
        booking_id,
        event["id"],
        "vip-1-7",
    )
    assert sorted(
        calls_about(stack, user_id=buyer.id, event_id=event["id"], booking_id=booking_id)
    ) == [f"/internal/events/{event['id']}", f"/internal/users/{buyer.id}"]


async def test_smtp_down_during_a_confirmation_then_up_delivers_exactly_one_email(
    stack: Stack,
) -> None:
    buyer = await stack.register()
    event = await stack.create_event()
    booking = await stack.book(buyer, event["id"], ["vvip-1-1"])
    stack.smtp.mode = "down"
    refused_before = stack.smtp.refused

    await stack.pay(booking)
    while stack.smtp.refused == refused_before:  # bounded by the test timeout
        await asyncio.sleep(0.05)
    stack.smtp.mode = "accept"

    await stack.smtp.wait_for(buyer.email, "Your ticket")
    await no_more_than(stack, buyer.email, "Your ticket", 1)
    listed = await stack.notifications.get("/api/notifications", headers=buyer.headers)
    [ticket] = [n for n in listed.json()["notifications"] if n["type"] == "booking_confirmed"]
    assert ticket["status"] == "sent"
    assert ticket["attempts"] >= 2


async def test_cancelling_a_booking_emails_the_buyer(stack: Stack) -> None:
    buyer = await stack.register()
    event = await stack.create_event()
    booking = await stack.book(buyer, event["id"], ["normal-1-9"])

    response = await stack.bookings.post(
        f"/api/bookings/{booking['id']}/cancel", headers=buyer.headers
    )

    assert response.status_code == 200, response.text
    [message] = await stack.smtp.wait_for(buyer.email, "was cancelled")
    assert event["title"] in message["Subject"]
    text = plain_text(message)
    assert "normal-1-9" in text
    assert f"BK-{booking['id']:08d}" in text
    assert (
        calls_about(stack, user_id=buyer.id, event_id=event["id"], booking_id=booking["id"]) == []
    ), "a v2 booking_cancelled needs no other service"


async def test_a_cancellation_from_before_v2_is_emailed_from_lookups(stack: Stack) -> None:
    buyer = await stack.register()
    event = await stack.create_event()
    booking_id = uuid.uuid4().int % 10**9 + 10**9

    await stack.publish(
        "booking_cancelled",
        BookingCancelled(
            booking_id=booking_id,
            user_id=buyer.id,
            event_id=event["id"],
            hold_token="v1-token",
            seat_ids=["vip-2-1"],
            previous_status="pending",
            reason="expired",
        ),
    )

    [message] = await stack.smtp.wait_for(buyer.email, "expired")
    assert message["Subject"] == f"Your reservation for {event['title']} expired"
    assert "vip-2-1" in plain_text(message)
    assert sorted(
        calls_about(stack, user_id=buyer.id, event_id=event["id"], booking_id=booking_id)
    ) == [f"/internal/events/{event['id']}", f"/internal/users/{buyer.id}"]


async def test_a_payment_that_came_too_late_is_announced_as_a_refund(stack: Stack) -> None:
    buyer = await stack.register()
    late = RefundRequested(
        booking_id=424_242,
        user_id=buyer.id,
        amount=Decimal("500.00"),
        currency="ETB",
        reason="booking_not_pending",
    )
    by_user = RefundRequested(
        booking_id=434_343,
        user_id=buyer.id,
        amount=Decimal("100.00"),
        currency="ETB",
        reason="cancelled_by_user",
    )

    await stack.publish("refund_requested", by_user)
    await stack.publish("refund_requested", late)
    await stack.publish(
        "payment_refunded",
        PaymentRefunded(
            payment_id=1,
            booking_id=424_242,
            user_id=buyer.id,
            tx_ref="tx-late",
            amount=Decimal("500.00"),
            currency="ETB",
            refunded_at=datetime.now(UTC),
        ),
    )

    [requested] = await stack.smtp.wait_for(buyer.email, "will be refunded")
    [processed] = await stack.smtp.wait_for(buyer.email, "has been processed")
    assert "BK-00424242" in requested["Subject"]
    assert "ETB 500.00" in plain_text(requested)
    assert "BK-00424242" in processed["Subject"]
    await no_more_than(stack, buyer.email, "BK-00434343", 0)  # told by its cancellation email


async def test_a_burst_on_several_queues_delivers_each_email_exactly_once(stack: Stack) -> None:
    """Two queues with a full prefetch each: many handlers at once, every email once."""
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    verifications = [f"burst-v-{uuid.uuid4().hex[:10]}@example.com" for _ in range(40)]
    resets = [f"burst-r-{uuid.uuid4().hex[:10]}@example.com" for _ in range(40)]

    await stack.publish_all(
        [
            (
                "email_verification",
                EmailVerification(
                    user_id=900_000 + n, email=email, code=f"{n:06d}", expires_at=expires
                ),
            )
            for n, email in enumerate(verifications)
        ]
        + [
            (
                "password_reset",
                PasswordReset(
                    user_id=950_000 + n, email=email, code=f"{n:06d}", expires_at=expires
                ),
            )
            for n, email in enumerate(resets)
        ]
    )

    for n, email in enumerate(verifications):
        [message] = await stack.smtp.wait_for(email, "Verify your email", timeout=30)
        assert code_in(message, "Your verification code") == f"{n:06d}"
    for n, email in enumerate(resets):
        [message] = await stack.smtp.wait_for(email, "Password reset code", timeout=30)
        assert code_in(message, "Your password reset code") == f"{n:06d}"
    await asyncio.sleep(1)
    assert all(len(stack.smtp.to(email)) == 1 for email in verifications + resets)


async def test_a_confirmation_for_an_unknown_user_is_retried_then_failed_and_dead_lettered(
    stack: Stack, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ghost_user_id = 987_654_321
    message_id = await stack.publish(
        "booking_confirmed",
        BookingConfirmed(
            booking_id=999_999,
            user_id=ghost_user_id,
            event_id=999_999,
            hold_token="h",
            seats=[
                BookedSeat(
                    seat_id="vip-1-1", ticket_class="vip", row=1, number=1, price=Decimal("250.00")
                )
            ],
            total_amount=Decimal("250.00"),
            currency="ETB",
            confirmed_at=datetime.now(UTC),
        ),
    )

    row = await _wait_for_status(sessionmaker, message_id, "failed")
    parked = await _dead_lettered(stack, message_id)

    assert row.attempts == 3
    assert "user not found" in (row.last_error or "")
    assert parked


async def _wait_for_status(
    sessionmaker: async_sessionmaker[AsyncSession], message_id: uuid.UUID, status: str
) -> Notification:
    for _ in range(200):
        async with sessionmaker() as session:
            row = (
                await session.execute(
                    select(Notification).where(Notification.message_id == message_id)
                )
            ).scalar_one_or_none()
        if row is not None and row.status == status:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"notification of {message_id} never became {status}")


async def _dead_lettered(stack: Stack, message_id: uuid.UUID) -> bool:
    connection = await aio_pika.connect(stack.settings.rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(dead_letter_queue_name("notification_service"))
        for _ in range(100):
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            await message.ack()
            if message.message_id == str(message_id):
                return True
    return False


async def test_moving_an_event_with_tickets_out_emails_every_holder(stack: Stack) -> None:
    held = await stack.register()
    paid = await stack.register()
    event = await stack.create_event()
    organizer = stack.token_holder(role="organizer", user_id=event["organizer_id"])
    pending = await stack.book(held, event["id"], ["normal-1-1"])
    confirmed = await stack.book(paid, event["id"], ["vip-1-1"])
    await stack.pay(confirmed)
    await stack.smtp.wait_for(paid.email, "ticket")
    new_date = (datetime.now(UTC) + timedelta(days=60)).replace(microsecond=0)

    moved = await stack.events.put(
        f"/api/events/{event['id']}",
        json={"date": new_date.isoformat(), "location": "Ghion Hotel Garden"},
        headers=organizer.headers,
    )

    assert moved.status_code == 200, moved.text
    for buyer, booking in ((held, pending), (paid, confirmed)):
        [message] = await stack.smtp.wait_for(buyer.email, "has changed")
        text = plain_text(message)
        assert event["title"] in message["Subject"]
        assert f"BK-{booking['id']:08d}" in text
        assert format_event_date(new_date) in text
        assert "Venue: Ghion Hotel Garden (was Millennium Hall, Addis Ababa)" in text
        listed = await stack.notifications.get("/api/notifications", headers=buyer.headers)
        assert listed.status_code == 200, listed.text
        assert [
            n["booking_id"] for n in listed.json()["notifications"] if n["type"] == "event_changed"
        ] == [booking["id"]]
    assert "stay valid" in plain_text((await stack.smtp.wait_for(paid.email, "has changed"))[0])
    await no_more_than(stack, held.email, "has changed", 1)
