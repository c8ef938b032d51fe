"""The ticket: its signed reference and the PDF that carries it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from notification_service.tests.pdf import pdf_text, qr_codes
from notification_service.tickets import (
    InvalidTicketReference,
    TicketDetails,
    TicketSeat,
    render_ticket_pdf,
    sign_ticket_reference,
    verify_ticket_reference,
)

SECRET = "ticket-test-secret"


def details(**overrides: object) -> TicketDetails:
    seats = [
        TicketSeat("vip-1-4", "vip", 1, 4, Decimal("250.00")),
        TicketSeat("vip-1-5", "vip", 1, 5, Decimal("250.00")),
        TicketSeat("normal-2-10", "normal", 2, 10, Decimal("100.00")),
    ]
    base = TicketDetails(
        booking_id=4821,
        event_id=17,
        event_title="Ethio-Jazz Night & Friends <live>",
        event_date=datetime(2026, 12, 12, 19, 30, tzinfo=UTC),
        venue="Millennium Hall, Addis Ababa",
        seats=seats,
        total_amount=Decimal("1600.00"),
        currency="ETB",
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def test_a_signed_reference_verifies_to_its_booking_and_event() -> None:
    reference = sign_ticket_reference(4821, 17, SECRET)

    assert reference.startswith("TKT1.4821.17.")
    assert verify_ticket_reference(reference, SECRET).booking_id == 4821
    assert verify_ticket_reference(reference, SECRET).event_id == 17


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda r: r.replace("TKT1.4821.", "TKT1.4822."), id="other-booking"),
        pytest.param(lambda r: r.replace(".17.", ".18."), id="other-event"),
        pytest.param(lambda r: r[:-1] + ("A" if r[-1] != "A" else "B"), id="edited-signature"),
        pytest.param(lambda r: r.rsplit(".", 1)[0], id="no-signature"),
        pytest.param(lambda r: "TKT2" + r[4:], id="unknown-version"),
        pytest.param(lambda r: r + "x", id="trailing-garbage"),
        pytest.param(lambda r: "", id="empty"),
    ],
)
def test_a_tampered_reference_is_refused(tamper: object) -> None:
    reference = sign_ticket_reference(4821, 17, SECRET)
    assert callable(tamper)

    with pytest.raises(InvalidTicketReference):
        verify_ticket_reference(tamper(reference), SECRET)


def test_a_reference_signed_with_another_secret_is_refused() -> None:
    forged = sign_ticket_reference(4821, 17, "someone-elses-secret")

    with pytest.raises(InvalidTicketReference):
        verify_ticket_reference(forged, SECRET)


def test_the_pdf_shows_event_venue_date_reference_every_seat_and_the_amount() -> None:
    text = pdf_text(render_ticket_pdf(details(), sign_ticket_reference(4821, 17, SECRET)))

    assert "Ethio-Jazz Night & Friends <live>" in " ".join(text.split())
    assert "Millennium Hall, Addis Ababa" in text
    assert "Saturday 12 December 2026, 19:30 UTC" in text
    assert "BK-00004821" in text
    for seat_id in ("vip-1-4", "vip-1-5", "normal-2-10"):
        assert seat_id in text
    assert "VIP" in text
    assert "NORMAL" in text
    assert "ETB 1,600.00" in text


def test_the_pdf_qr_code_decodes_to_the_signed_reference() -> None:
    reference = sign_ticket_reference(4821, 17, SECRET)

    codes = qr_codes(render_ticket_pdf(details(), reference))

    assert codes == [reference]
    assert verify_ticket_reference(codes[0], SECRET).booking_id == 4821


def test_a_booking_with_many_seats_flows_onto_further_pages() -> None:
    seats = [
        TicketSeat(f"normal-{r}-{n}", "normal", r, n, Decimal("100.00"))
        for r in range(1, 11)
        for n in range(1, 11)
    ]

    pdf = render_ticket_pdf(details(seats=seats, total_amount=Decimal("10000.00")), "TKT1.1.1.x")

    text = pdf_text(pdf)
    assert {seat.seat_id for seat in seats} <= set(text.split())
    assert "ETB 10,000.00" in text


def test_rendering_the_same_ticket_twice_gives_the_same_bytes() -> None:
    reference = sign_ticket_reference(4821, 17, SECRET)

    assert render_ticket_pdf(details(), reference) == render_ticket_pdf(details(), reference)
