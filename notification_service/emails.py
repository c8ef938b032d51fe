"""What each email says: a subject, a plain-text part and an HTML part (plus attachments).

The plain-text part is the one tools and tests read, so its key lines are fixed:
``Your verification code: <code>`` and ``Your password reset code: <code>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from html import escape

from notification_service.tickets import (
    TicketDetails,
    booking_reference,
    format_amount,
    format_event_date,
)

PDF_CONTENT_TYPE = "application/pdf"


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)


def _when(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC"


def _layout(heading: str, paragraphs: list[str]) -> str:
    """A minimal, client-safe HTML body (inline styles only); ``paragraphs`` are HTML."""
    body = "".join(f'<p style="margin:0 0 14px">{p}</p>' for p in paragraphs)
    return (
        '<!DOCTYPE html><html><body style="margin:0;padding:24px;background:#f3f4f6;'
        'font-family:Helvetica,Arial,sans-serif;color:#111827">'
        '<div style="max-width:560px;margin:0 auto;background:#ffffff;padding:28px;'
        'border-radius:8px">'
        f'<h1 style="font-size:20px;margin:0 0 18px">{escape(heading)}</h1>{body}'
        '<p style="margin:24px 0 0;font-size:12px;color:#6b7280">Ticketing. You receive this '
        "email because of an action on your account.</p></div></body></html>"
    )


def _code_block(code: str) -> str:
    return (
        '<span style="display:inline-block;font-size:28px;letter-spacing:6px;'
        f'font-weight:bold;padding:8px 16px;background:#f3f4f6">{escape(code)}</span>'
    )


def verification_email(
    code: str, expires_at: datetime, verify_url: str | None = None
) -> RenderedEmail:
    """The 6-digit code, and (when the message carries it) the original's link to the
    front end's verification page; either verifies."""
    link = f"Or open this link to verify: {verify_url}\n\n" if verify_url else ""
    text = (
        "Welcome to Ticketing!\n\n"
        f"Your verification code: {code}\n\n"
        f"{link}"
        f"Enter it to verify your email address. It expires at {_when(expires_at)}.\n"
        "If you did not create an account, ignore this email.\n"
    )
    paragraphs = ["Welcome to Ticketing! Your verification code:", _code_block(code)]
    if verify_url:
        href = escape(verify_url, quote=True)
        paragraphs.append(f'Or <a href="{href}">verify your email address</a>.')
    html = _layout(
        "Verify your email address",
        [
            *paragraphs,
            f"Enter it to verify your email address. It expires at {escape(_when(expires_at))}.",
            "If you did not create an account, ignore this email.",
        ],
    )
    return RenderedEmail("Verify your email address", text, html)


def password_reset_email(code: str, expires_at: datetime) -> RenderedEmail:
    text = (
        "Someone asked to reset the password of your Ticketing account.\n\n"
        f"Your password reset code: {code}\n\n"
        f"It expires at {_when(expires_at)}. If it was not you, ignore this email: "
        "your password stays as it is.\n"
    )
    html = _layout(
        "Password reset code",
        [
            "Someone asked to reset the password of your Ticketing account. "
            "Your password reset code:",
            _code_block(code),
            f"It expires at {escape(_when(expires_at))}. If it was not you, ignore this email: "
            "your password stays as it is.",
        ],
    )
    return RenderedEmail("Password reset code", text, html)


def _seat_lines(details: TicketDetails) -> list[str]:
    return [
        f"{s.seat_id} ({s.ticket_class.upper()}, row {s.row}, seat {s.number}): "
        f"{format_amount(s.price, details.currency)}"
        for s in details.seats
    ]


def ticket_email(details: TicketDetails, pdf: bytes) -> RenderedEmail:
    when = format_event_date(details.event_date)
    total = format_amount(details.total_amount, details.currency)
    ref = booking_reference(details.booking_id)
    seats = _seat_lines(details)
    text = (
        f"Your booking {ref} is confirmed.\n\n"
        f"Event: {details.event_title}\nDate: {when}\nVenue: {details.venue}\n\n"
        "Seats:\n" + "".join(f"  - {line}\n" for line in seats) + f"\nAmount paid: {total}\n\n"
        "Your ticket is attached as a PDF, with one QR code per seat: show each at the entrance.\n"
    )
    seat_items = "".join(f"<li>{escape(line)}</li>" for line in seats)
    html = _layout(
        f"Your ticket for {details.event_title}",
        [
            f"Your booking <b>{ref}</b> is confirmed.",
            f"<b>{escape(details.event_title)}</b><br>{escape(when)}<br>{escape(details.venue)}",
            f'Seats:<ul style="margin:6px 0">{seat_items}</ul>',
            f"Amount paid: <b>{escape(total)}</b>",
            "Your ticket is attached as a PDF, with one QR code per seat: "
            "show each at the entrance.",
        ],
    )
    attachment = Attachment(f"ticket-{details.booking_id}.pdf", PDF_CONTENT_TYPE, pdf)
    return RenderedEmail(f"Your ticket for {details.event_title}", text, html, (attachment,))


_CANCELLATION_REASONS = {
    "expired": (
        "Your reservation for {title} expired",
        "The seats were held for you, but payment did not arrive in time, so they "
        "have been released.",
    ),
    "cancelled": (
        "Your booking for {title} was cancelled",
        "Your booking has been cancelled and its seats released.",
    ),
    "payment_failed": (
        "Payment failed: your booking for {title} was cancelled",
        "The payment for your booking did not go through, so the booking was "
        "cancelled and its seats released. You can book again at any time.",
    ),
}


def cancellation_email(
    *,
    booking_id: int,
    event_title: str,
    seat_ids: list[str],
    reason: str,
    refund_requested: bool,
) -> RenderedEmail:
    subject_template, explanation = _CANCELLATION_REASONS.get(
        reason, _CANCELLATION_REASONS["cancelled"]
    )
    ref = booking_reference(booking_id)
    refund = (
        "A refund of the amount you paid has been requested; you will get another email "
        "when it is done."
        if refund_requested
        else ""
    )
    seats = ", ".join(seat_ids)
    text = (
        f"Booking {ref} for {event_title}.\n\n{explanation}\n"
        + (f"Seats: {seats}\n" if seats else "")
        + (f"\n{refund}\n" if refund else "")
    )
    paragraphs = [f"Booking <b>{ref}</b> for <b>{escape(event_title)}</b>.", escape(explanation)]
    if seats:
        paragraphs.append(f"Seats: {escape(seats)}")
    if refund:
        paragraphs.append(escape(refund))
    subject = subject_template.format(title=event_title)
    return RenderedEmail(subject, text, _layout(subject, paragraphs))


def refund_requested_email(*, booking_id: int, amount: Decimal, currency: str) -> RenderedEmail:
    ref = booking_reference(booking_id)
    total = format_amount(amount, currency)
    explanation = (
        f"Your payment of {total} for booking {ref} arrived after the booking could no "
        "longer be confirmed (its seats were released), so no ticket was issued. The full "
        "amount will be refunded; you will get another email when it is done."
    )
    subject = f"Your payment for booking {ref} will be refunded"
    return RenderedEmail(subject, explanation + "\n", _layout(subject, [escape(explanation)]))


def refund_processed_email(*, booking_id: int, amount: Decimal, currency: str) -> RenderedEmail:
    ref = booking_reference(booking_id)
    total = format_amount(amount, currency)
    explanation = (
        f"We have refunded {total} for booking {ref}. Depending on your bank it may take a "
        "few days to show on your statement."
    )
    subject = f"Your refund for booking {ref} has been processed"
    return RenderedEmail(subject, explanation + "\n", _layout(subject, [escape(explanation)]))


def event_changed_email(
    *,
    booking_id: int,
    event_title: str,
    status: str,
    old_date: datetime,
    new_date: datetime,
    old_venue: str,
    new_venue: str,
) -> RenderedEmail:
    """The organizer moved the event or changed its venue: what changed, old and new."""
    ref = booking_reference(booking_id)
    changes: list[str] = []
    if new_date != old_date:
        changes.append(f"Date: {format_event_date(new_date)} (was {format_event_date(old_date)})")
    if new_venue != old_venue:
        changes.append(f"Venue: {new_venue} (was {old_venue})")
    if status == "confirmed":
        keep = (
            "Your tickets stay valid for the new date and venue. If you can no longer "
            "attend, you can cancel the booking for a refund until the event starts."
        )
    else:
        keep = "Your seats are still held for you; the booking is confirmed once you pay."
    subject = f"{event_title} has changed"
    text = (
        f"The organizer changed {event_title} (booking {ref}).\n\n"
        + "".join(f"{line}\n" for line in changes)
        + f"\n{keep}\n"
    )
    paragraphs = [
        f"The organizer changed <b>{escape(event_title)}</b> (booking <b>{ref}</b>).",
        *(escape(line) for line in changes),
        escape(keep),
    ]
    return RenderedEmail(subject, text, _layout(subject, paragraphs))


def waitlist_offer_email(
    *,
    booking_id: int,
    event_title: str,
    event_starts_at: datetime,
    venue: str,
    seat_ids: list[str],
    amount: Decimal,
    currency: str,
    expires_at: datetime,
    pay_url: str,
) -> RenderedEmail:
    """Seats came free for the buyer's waiting-list entry: pay before the offer lapses."""
    ref = booking_reference(booking_id)
    seats = ", ".join(seat_ids)
    subject = f"Seats for {event_title} are yours until {_when(expires_at)}"
    text = (
        f"Seats came free for {event_title} ({format_event_date(event_starts_at)}, {venue}) "
        f"and you were next on the waiting list.\n\n"
        f"Booking: {ref}\nSeats: {seats}\nTotal: {format_amount(amount, currency)}\n\n"
        f"They are held for you until {_when(expires_at)}. Pay here: {pay_url}\n\n"
        "If you do not pay by then, they go to the next person on the list.\n"
    )
    href = escape(pay_url, quote=True)
    paragraphs = [
        f"Seats came free for <b>{escape(event_title)}</b> "
        f"({escape(format_event_date(event_starts_at))}, {escape(venue)}) and you were next "
        "on the waiting list.",
        f"Booking <b>{ref}</b><br>Seats: {escape(seats)}<br>"
        f"Total: {escape(format_amount(amount, currency))}",
        f"They are held for you until <b>{_when(expires_at)}</b>: "
        f'<a href="{href}">pay for them</a>.',
        "If you do not pay by then, they go to the next person on the list.",
    ]
    return RenderedEmail(subject, text, _layout(subject, paragraphs))
