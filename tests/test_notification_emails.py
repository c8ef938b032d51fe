"""The emails a buyer receives, end to end through the gateway, caught by a real SMTP server."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx

from notification_service.tests.pdf import pdf_text, qr_codes
from tests.conftest import Mailbox
from tests.support_notification import (
    PASSWORD,
    TICKET_SIGNING_SECRET,
    book,
    code_in,
    create_event,
    pay,
    pdf_attachment,
    register_verified,
    wait_for_notification,
)
from ticketing_common.tickets import verify_ticket_code

SEATS = ["vip-1-4", "vip-1-5", "normal-2-3"]


async def test_registering_delivers_a_verification_code_that_verifies_the_account(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    buyer = await register_verified(client, mailbox, "verify")

    me = await client.get("/api/auth/me", headers=buyer.headers)
    login = await client.post("/api/auth/login", json={"email": buyer.email, "password": PASSWORD})

    assert me.json()["is_verified"] is True
    assert login.status_code == 200, login.text
    [message] = mailbox.matching(buyer.email, "Verify your email")
    assert message.get_body(("html",)) is not None


async def test_forgot_password_delivers_a_code_that_resets_the_password(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    buyer = await register_verified(client, mailbox, "forgot")

    asked = await client.post("/api/auth/forgot-password", json={"email": buyer.email})
    [message] = await mailbox.wait_for(buyer.email, "Password reset code")
    reset = await client.post(
        "/api/auth/reset-password",
        json={
            "email": buyer.email,
            "code": code_in(message, "Your password reset code"),
            "new_password": "Brand-New-Pass-7",
        },
    )
    login = await client.post(
        "/api/auth/login", json={"email": buyer.email, "password": "Brand-New-Pass-7"}
    )

    assert asked.status_code == 200
    assert reset.status_code == 200, reset.text
    assert login.status_code == 200, login.text


async def test_a_paid_booking_delivers_exactly_one_email_with_the_pdf_ticket(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    buyer = await register_verified(client, mailbox, "ticket")
    event = await create_event(client)
    booking = await book(client, buyer, event["id"], SEATS)

    await pay(client, buyer, booking)

    [message] = await mailbox.wait_for(buyer.email, "Your ticket", timeout=60)
    filename, pdf = pdf_attachment(message)
    assert filename == f"ticket-{booking['id']}.pdf"
    text = pdf_text(pdf)
    assert event["title"] in " ".join(text.split())
    assert set(SEATS) <= set(text.split())
    assert f"{Decimal(booking['total_amount']):,.2f}" in text
    signed = [verify_ticket_code(code, TICKET_SIGNING_SECRET) for code in qr_codes(pdf)]
    assert {(s.booking_id, s.event_id) for s in signed} == {(booking["id"], event["id"])}
    assert sorted(s.seat_id or "" for s in signed) == sorted(SEATS), "one QR code per seat"
    await asyncio.sleep(2)  # time for a duplicate to show up
    assert len(mailbox.matching(buyer.email, "Your ticket")) == 1


async def test_smtp_down_during_a_confirmation_then_up_delivers_exactly_one_email(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    buyer = await register_verified(client, mailbox, "smtp-down")
    event = await create_event(client)
    booking = await book(client, buyer, event["id"], ["vvip-1-2"])

    mailbox.down = True
    try:
        await pay(client, buyer, booking)
        failed_try = await wait_for_notification(
            client, buyer, "booking_confirmed", status="retrying", timeout=60
        )
    finally:
        mailbox.down = False

    await mailbox.wait_for(buyer.email, "Your ticket", timeout=60)
    sent = await wait_for_notification(client, buyer, "booking_confirmed", status="sent")
    await asyncio.sleep(2)
    assert len(mailbox.matching(buyer.email, "Your ticket")) == 1
    assert failed_try["attempts"] >= 1
    assert sent["attempts"] > failed_try["attempts"]
