"""The ticket: a signed reference a gate can verify, and the PDF that carries it as a QR code.

The reference is ``TKT1.<booking_id>.<event_id>.<signature>``, the signature being the
base64url HMAC-SHA256 of the part before it under ``TICKET_SIGNING_SECRET``. A gate needs
only the secret to tell a real ticket from a forged or edited one, and then looks the booking
up to see whether it is still confirmed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ticketing_common.errors import BadRequest

TICKET_REFERENCE_VERSION = "TKT1"
_REFERENCE = re.compile(r"^TKT1\.([1-9][0-9]{0,17})\.([1-9][0-9]{0,17})\.([A-Za-z0-9_-]{43})$")


class InvalidTicketReference(BadRequest):
    code = "invalid_ticket_reference"


@dataclass(frozen=True, slots=True)
class TicketReference:
    booking_id: int
    event_id: int


def _signature(payload: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_ticket_reference(booking_id: int, event_id: int, secret: str) -> str:
    payload = f"{TICKET_REFERENCE_VERSION}.{booking_id}.{event_id}"
    return f"{payload}.{_signature(payload, secret)}"


def verify_ticket_reference(reference: str, secret: str) -> TicketReference:
    """Return what a genuine reference names; raise :class:`InvalidTicketReference` otherwise."""
    match = _REFERENCE.match(reference.strip())
    if match is None:
        raise InvalidTicketReference("not a ticket reference")
    booking_id, event_id, signature = match.groups()
    expected = _signature(f"{TICKET_REFERENCE_VERSION}.{booking_id}.{event_id}", secret)
    if not hmac.compare_digest(signature, expected):
        raise InvalidTicketReference("ticket reference signature does not match")
    return TicketReference(booking_id=int(booking_id), event_id=int(event_id))


@dataclass(frozen=True, slots=True)
class TicketSeat:
    seat_id: str
    ticket_class: str
    row: int
    number: int
    price: Decimal


@dataclass(frozen=True, slots=True)
class TicketDetails:
    """Everything printed on a ticket, gathered from the booking and its event."""

    booking_id: int
    event_id: int
    event_title: str
    event_date: datetime
    venue: str
    seats: Sequence[TicketSeat]
    total_amount: Decimal
    currency: str


def format_amount(amount: Decimal, currency: str) -> str:
    return f"{currency} {amount:,.2f}"


def format_event_date(value: datetime) -> str:
    """``Saturday 12 December 2026, 19:30 UTC`` (times are stored and shown in UTC)."""
    zone = value.tzname() or "UTC"
    return f"{value:%A} {value.day} {value:%B %Y, %H:%M} {zone}"


def booking_reference(booking_id: int) -> str:
    return f"BK-{booking_id:08d}"


def qr_code_png(data: str) -> bytes:
    """A QR code as PNG, with a quiet zone wide enough for phone and gate scanners."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=8, border=4)
    code.add_data(data)
    code.make(fit=True)
    image = code.make_image(fill_color="black", back_color="white")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    return {
        "kicker": ParagraphStyle(
            "kicker", parent=base["Normal"], fontSize=9, textColor=colors.HexColor("#6b7280")
        ),
        "title": ParagraphStyle(
            "title", parent=base["Title"], alignment=0, fontSize=22, leading=26, spaceAfter=4
        ),
        "field": ParagraphStyle("field", parent=base["Normal"], fontSize=11, leading=15),
        "small": ParagraphStyle(
            "small",
            parent=base["Normal"],
            fontSize=8,
            leading=10,
            textColor=colors.HexColor("#4b5563"),
        ),
    }


def _seat_table(details: TicketDetails) -> Table:
    rows: list[list[Any]] = [["Seat", "Class", "Row", "Number", "Price"]]
    rows += [
        [
            s.seat_id,
            s.ticket_class.upper(),
            str(s.row),
            str(s.number),
            format_amount(s.price, details.currency),
        ]
        for s in details.seats
    ]
    rows.append(["", "", "", "Total paid", format_amount(details.total_amount, details.currency)])
    table = Table(rows, colWidths=[45 * mm, 28 * mm, 18 * mm, 28 * mm, 45 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#111827")),
                ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
                ("ROWBACKGROUNDS", (0, 1), (-1, -2), [colors.white, colors.HexColor("#f3f4f6")]),
                ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
                ("LINEABOVE", (0, -1), (-1, -1), 1, colors.HexColor("#111827")),
                ("ALIGN", (4, 0), (4, -1), "RIGHT"),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
                ("TOPPADDING", (0, 0), (-1, -1), 5),
            ]
        )
    )
    return table


def render_ticket_pdf(details: TicketDetails, reference: str) -> bytes:
    """Render the ticket; the same details always give the same bytes."""
    styles = _styles()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"Ticket {booking_reference(details.booking_id)}",
        author="Ticketing",
        invariant=True,
    )
    qr = Image(io.BytesIO(qr_code_png(reference)), width=48 * mm, height=48 * mm)
    facts = [
        Paragraph("EVENT TICKET", styles["kicker"]),
        Paragraph(escape(details.event_title), styles["title"]),
        Paragraph(f"<b>Date:</b> {escape(format_event_date(details.event_date))}", styles["field"]),
        Paragraph(f"<b>Venue:</b> {escape(details.venue)}", styles["field"]),
        Paragraph(
            f"<b>Booking reference:</b> {booking_reference(details.booking_id)}", styles["field"]
        ),
        Paragraph(
            f"<b>Amount paid:</b> {escape(format_amount(details.total_amount, details.currency))}",
            styles["field"],
        ),
    ]
    header = Table([[facts, qr]], colWidths=[118 * mm, 56 * mm])
    header.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story: list[Any] = [
        header,
        Paragraph(f"Ticket code: {reference}", styles["small"]),
        Spacer(1, 8 * mm),
        _seat_table(details),
        Spacer(1, 8 * mm),
        Paragraph(
            "Show the QR code at the entrance. It is valid only for the seats above "
            "and only while this booking stays confirmed.",
            styles["small"],
        ),
    ]
    doc.build(story)
    return buffer.getvalue()
