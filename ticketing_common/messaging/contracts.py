"""The domain events services exchange: routing keys and payload schemas.

One schema per routing key; consumers validate the payload against it and a message
that does not fit is dead-lettered instead of crashing the consumer. Amounts travel as
decimal strings, never floats; timestamps as ISO-8601 UTC.

Messages carry what their consumers need, so a consumer calls no other service for them.
A contract only grows: a field added later is optional (``None`` in a message written
before it existed, still waiting in a queue), and its consumer handles both versions.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from ticketing_common.seats import TicketClass


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class EmailVerification(Payload):
    user_id: int
    email: EmailStr
    code: str = Field(min_length=4, max_length=128)
    expires_at: datetime
    #: since v2: the original's link, ``FRONTEND_URL/verify-email?token=…&email=…``, whose
    #: token ``/api/auth/verify-email`` takes as the code (the original's front end
    #: verifies only through it)
    verify_url: str | None = None


class PasswordReset(Payload):
    user_id: int
    email: EmailStr
    code: str = Field(min_length=6, max_length=6)
    expires_at: datetime


class AuditLog(Payload):
    action: str = Field(min_length=1, max_length=100)
    service: str
    actor_user_id: int | None = None
    target_type: str | None = None
    target_id: str | None = None
    ip: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class BookedSeat(Payload):
    seat_id: str
    ticket_class: TicketClass
    row: int
    number: int
    price: Decimal


class BookingCreated(Payload):
    """A pending booking: payment_service keeps its own record of what it may charge."""

    booking_id: int
    user_id: int
    buyer_email: str | None = None
    event_id: int
    organizer_id: int
    event_title: str
    event_starts_at: datetime
    venue: str
    seats: list[BookedSeat] = Field(min_length=1)
    total_amount: Decimal
    currency: str
    expires_at: datetime
    created_at: datetime


class BookingConfirmed(Payload):
    """A paid booking. Since v2 it carries what the ticket and its email print (event
    title, start, venue, the buyer's email); a v1 message has them ``None``."""

    booking_id: int
    user_id: int
    event_id: int
    hold_token: str
    seats: list[BookedSeat] = Field(min_length=1)
    total_amount: Decimal
    currency: str
    tx_ref: str | None = None
    confirmed_at: datetime
    # v2
    event_title: str | None = None
    event_starts_at: datetime | None = None
    venue: str | None = None
    buyer_email: str | None = None


class BookingCancelled(Payload):
    """A booking left the active states; its seats go back on sale."""

    booking_id: int
    user_id: int
    event_id: int
    hold_token: str
    seat_ids: list[str]
    previous_status: Literal["pending", "confirmed"]
    reason: Literal["expired", "cancelled", "payment_failed"]
    refund_requested: bool = False
    # v2: what the cancellation email prints, so notification_service asks nobody
    event_title: str | None = None
    buyer_email: str | None = None


class PaymentSucceeded(Payload):
    payment_id: int
    booking_id: int
    user_id: int
    tx_ref: str
    amount: Decimal
    currency: str
    provider: str
    paid_at: datetime


class PaymentFailed(Payload):
    payment_id: int
    booking_id: int
    user_id: int
    tx_ref: str
    reason: str


class RefundRequested(Payload):
    booking_id: int
    user_id: int
    amount: Decimal
    currency: str
    reason: Literal["booking_not_pending", "cancelled_by_user", "cancelled_by_admin"]
    tx_ref: str | None = None


class PaymentRefunded(Payload):
    payment_id: int
    booking_id: int
    user_id: int
    tx_ref: str
    amount: Decimal
    currency: str
    refunded_at: datetime


class EventChanged(Payload):
    """An organizer moved an event (its date) or changed its venue.

    event_service publishes it in the update's transaction for every such change, whether
    or not tickets are out (a hold can land between its check and the commit): consumers
    find the bookings it concerns (booking_service keeps their start and venue current,
    notification_service tells every ticket holder). Dates are ISO-8601 UTC.
    """

    event_id: int
    organizer_id: int
    title: str
    old_date: datetime
    new_date: datetime
    old_venue: str
    new_venue: str
    changed_at: datetime


class BookingEventChanged(Payload):
    """The event of a pending or confirmed booking moved or changed venue: booking_service
    sends one per booking when it applies an ``event_changed``, so notification_service
    tells each holder without asking anyone who they are."""

    booking_id: int
    user_id: int
    buyer_email: str | None = None
    status: Literal["pending", "confirmed"]
    event_id: int
    event_title: str
    old_date: datetime
    new_date: datetime
    old_venue: str
    new_venue: str
    changed_at: datetime


class WaitlistOffered(Payload):
    """Seats came free for a waiting list's entry: a pending booking holds them for the
    buyer until ``expires_at``; notification_service emails the buyer the link to pay."""

    entry_id: int
    booking_id: int
    user_id: int
    buyer_email: str | None = None
    event_id: int
    event_title: str
    event_starts_at: datetime
    venue: str
    ticket_class: TicketClass
    seat_ids: list[str] = Field(min_length=1)
    total_amount: Decimal
    currency: str
    expires_at: datetime
    pay_url: str


#: routing key -> payload schema. The first five keep the original system's names.
CONTRACTS: dict[str, type[Payload]] = {
    "booking_confirmed": BookingConfirmed,
    "booking_created": BookingCreated,
    "payment_success": PaymentSucceeded,
    "email_verification": EmailVerification,
    "password_reset": PasswordReset,
    "audit_logs": AuditLog,
    "booking_cancelled": BookingCancelled,
    "payment_failed": PaymentFailed,
    "refund_requested": RefundRequested,
    "payment_refunded": PaymentRefunded,
    "event_changed": EventChanged,
    "booking_event_changed": BookingEventChanged,
    "waitlist_offered": WaitlistOffered,
}
