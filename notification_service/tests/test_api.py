"""``/api/notifications``: the caller's notification log and the PDF ticket download."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking_service.settings import BookingSettings
from notification_service import ticket_store
from notification_service.models import Ticket
from notification_service.tests.pdf import pdf_text, qr_codes
from notification_service.tests.stack import Stack, User
from notification_service.tickets import render_ticket_pdf
from ticketing_common.db import create_engine
from ticketing_common.tickets import verify_ticket_code


@pytest.fixture(scope="module")
async def confirmed(stack: Stack) -> tuple[User, dict[str, Any], dict[str, Any]]:
    """A buyer with a paid booking whose ticket email has arrived."""
    buyer = await stack.register("ticket-owner")
    event = await stack.create_event(title="Sunset Sessions")
    booking = await stack.book(buyer, event["id"], ["normal-1-1", "normal-1-2"])
    await stack.pay(booking)
    await stack.smtp.wait_for(buyer.email, "Your ticket")
    return buyer, event, booking


async def test_the_owner_downloads_the_ticket_of_a_confirmed_booking(
    stack: Stack, confirmed: tuple[User, dict[str, Any], dict[str, Any]]
) -> None:
    buyer, _, booking = confirmed

    response = await stack.notifications.get(
        f"/api/notifications/tickets/{booking['id']}/pdf", headers=buyer.headers
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert f"ticket-{booking['id']}.pdf" in response.headers["content-disposition"]
    text = pdf_text(response.content)
    assert "Sunset Sessions" in text
    assert {"normal-1-1", "normal-1-2"} <= set(text.split())
    secret = stack.settings.ticket_signing_secret
    seats = {verify_ticket_code(code, secret) for code in qr_codes(response.content)}
    assert {(seat.booking_id, seat.seat_id) for seat in seats} == {
        (booking["id"], "normal-1-1"),
        (booking["id"], "normal-1-2"),
    }


async def test_the_download_is_the_same_ticket_as_the_email_attachment(
    stack: Stack, confirmed: tuple[User, dict[str, Any], dict[str, Any]]
) -> None:
    buyer, _, booking = confirmed
    [message] = stack.smtp.to(buyer.email, "Your ticket")
    [attachment] = list(message.iter_attachments())

    response = await stack.notifications.get(
        f"/api/notifications/tickets/{booking['id']}/pdf", headers=buyer.headers
    )

    assert response.content == attachment.get_content()


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The booking id of every PDF rendered while the test runs."""
    rendered: list[int] = []

    def counting(details: Any, *args: Any) -> bytes:
        rendered.append(details.booking_id)
        return render_ticket_pdf(details, *args)

    monkeypatch.setattr(ticket_store, "render_ticket_pdf", counting)
    return rendered


async def stored_tickets(sessionmaker: async_sessionmaker[AsyncSession], booking_id: int) -> int:
    async with sessionmaker() as session:
        count: int = (
            await session.execute(
                select(func.count()).select_from(Ticket).where(Ticket.booking_id == booking_id)
            )
        ).scalar_one()
    return count


async def download(stack: Stack, user: User, booking_id: int) -> Any:
    return await stack.notifications.get(
        f"/api/notifications/tickets/{booking_id}/pdf", headers=user.headers
    )


async def paid_booking(stack: Stack, prefix: str) -> tuple[User, dict[str, Any], dict[str, Any]]:
    """A buyer whose booking was paid and whose ticket email (and so its PDF) went out."""
    buyer = await stack.register(prefix)
    event = await stack.create_event()
    booking = await stack.book(buyer, event["id"], ["vip-1-1"])
    await stack.pay(booking)
    await stack.smtp.wait_for(buyer.email, "Your ticket")
    return buyer, event, booking


async def test_the_stored_ticket_is_served_again_without_rendering(
    stack: Stack,
    confirmed: tuple[User, dict[str, Any], dict[str, Any]],
    renders: list[int],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    buyer, _, booking = confirmed
    [message] = stack.smtp.to(buyer.email, "Your ticket")
    [attachment] = list(message.iter_attachments())

    first = await download(stack, buyer, booking["id"])
    second = await download(stack, stack.admin, booking["id"])

    assert first.status_code == second.status_code == 200
    assert first.content == second.content == attachment.get_content()
    assert renders == [], "rendered once, when the email was composed"
    assert await stored_tickets(sessionmaker, booking["id"]) == 1


async def test_an_older_booking_is_rendered_on_its_first_download_and_then_kept(
    stack: Stack,
    renders: list[int],
    sessionmaker: async_sessionmaker[AsyncSession],
    booking_settings: BookingSettings,
) -> None:
    """Confirmed before tickets were kept and before bookings carried their event: the
    first downloads (several at once) render it from event_service's answer, store it
    once and all succeed; later ones re-serve it."""
    buyer, event, booking = await paid_booking(stack, "older")
    async with sessionmaker.begin() as session:
        await session.execute(delete(Ticket).where(Ticket.booking_id == booking["id"]))
    engine = create_engine(booking_settings)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE bookings SET event_title = NULL, event_starts_at = NULL, venue = NULL,"
                " buyer_email = NULL WHERE id = :id"
            ),
            {"id": booking["id"]},
        )
    await engine.dispose()
    renders.clear()  # the email's
    calls_before = len(stack.notification_calls)

    firsts = await asyncio.gather(*(download(stack, buyer, booking["id"]) for _ in range(3)))
    rendered = len(renders)
    again = await download(stack, buyer, booking["id"])

    assert [r.status_code for r in firsts] == [200, 200, 200]
    assert firsts[0].content == firsts[1].content == firsts[2].content == again.content
    assert event["title"] in " ".join(pdf_text(again.content).split())
    assert 1 <= rendered <= 3
    assert len(renders) == rendered, "the kept ticket is re-served"
    assert await stored_tickets(sessionmaker, booking["id"]) == 1
    assert f"/internal/events/{event['id']}" in stack.notification_calls[calls_before:]


async def test_a_booking_cancelled_after_its_ticket_was_sent_has_no_ticket(
    stack: Stack, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    buyer, _, booking = await paid_booking(stack, "cancels")
    assert (await download(stack, buyer, booking["id"])).status_code == 200

    cancelled = await stack.bookings.post(
        f"/api/bookings/{booking['id']}/cancel", headers=buyer.headers
    )
    response = await download(stack, buyer, booking["id"])

    assert cancelled.status_code == 200, cancelled.text
    assert await stored_tickets(sessionmaker, booking["id"]) == 1
    assert response.status_code == 409
    assert response.json()["details"] == {"status": "cancelled"}


async def test_an_admin_may_download_anyones_ticket(
    stack: Stack, confirmed: tuple[User, dict[str, Any], dict[str, Any]]
) -> None:
    _, _, booking = confirmed

    response = await stack.notifications.get(
        f"/api/notifications/tickets/{booking['id']}/pdf", headers=stack.admin.headers
    )

    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")


async def test_another_users_ticket_is_forbidden(
    stack: Stack, confirmed: tuple[User, dict[str, Any], dict[str, Any]]
) -> None:
    _, _, booking = confirmed
    stranger = stack.token_holder()

    response = await stack.notifications.get(
        f"/api/notifications/tickets/{booking['id']}/pdf", headers=stranger.headers
    )

    assert response.status_code == 403
    assert "owner" in response.json()["error"]


async def test_an_unknown_booking_is_not_found(stack: Stack) -> None:
    response = await stack.notifications.get(
        "/api/notifications/tickets/987654321/pdf", headers=stack.admin.headers
    )

    assert response.status_code == 404
    assert response.json()["error"] == "booking not found"


async def test_a_booking_not_yet_paid_has_no_ticket(stack: Stack) -> None:
    buyer = await stack.register("unpaid")
    event = await stack.create_event()
    booking = await stack.book(buyer, event["id"], ["vip-1-1"])

    response = await stack.notifications.get(
        f"/api/notifications/tickets/{booking['id']}/pdf", headers=buyer.headers
    )

    assert response.status_code == 409
    assert response.json()["details"] == {"status": "pending"}


@pytest.mark.parametrize("booking_id", ["0", "-3", "abc", str(2**63)])
async def test_a_malformed_booking_id_is_a_bad_request(stack: Stack, booking_id: str) -> None:
    response = await stack.notifications.get(
        f"/api/notifications/tickets/{booking_id}/pdf", headers=stack.admin.headers
    )

    assert response.status_code == 400


async def test_downloading_a_ticket_needs_a_token(stack: Stack) -> None:
    response = await stack.notifications.get("/api/notifications/tickets/1/pdf")

    assert response.status_code == 401


async def test_the_log_lists_only_the_callers_own_notifications_newest_first(
    stack: Stack, confirmed: tuple[User, dict[str, Any], dict[str, Any]]
) -> None:
    buyer, _, booking = confirmed
    other = await stack.register("someone-else")

    mine = await stack.notifications.get("/api/notifications", headers=buyer.headers)
    theirs = await stack.notifications.get("/api/notifications", headers=other.headers)

    assert mine.status_code == 200
    assert mine.headers["x-total-count"] == "2"
    listed = mine.json()["notifications"]
    assert [(n["type"], n["status"]) for n in listed] == [
        ("booking_confirmed", "sent"),
        ("email_verification", "sent"),
    ]
    assert listed[0]["booking_id"] == booking["id"]
    assert listed[0]["recipient"] == buyer.email
    assert listed[0]["subject"].startswith("Your ticket for")
    assert [n["type"] for n in theirs.json()["notifications"]] == ["email_verification"]


async def test_the_log_pages_with_limit_and_offset(
    stack: Stack, confirmed: tuple[User, dict[str, Any], dict[str, Any]]
) -> None:
    buyer, _, _ = confirmed

    page = await stack.notifications.get(
        "/api/notifications", params={"limit": 1, "offset": 1}, headers=buyer.headers
    )
    too_big = await stack.notifications.get(
        "/api/notifications", params={"limit": 1001}, headers=buyer.headers
    )

    assert page.headers["x-total-count"] == "2"
    assert [n["type"] for n in page.json()["notifications"]] == ["email_verification"]
    assert too_big.status_code == 400


async def test_the_log_needs_a_token(stack: Stack) -> None:
    response = await stack.notifications.get("/api/notifications")

    assert response.status_code == 401
