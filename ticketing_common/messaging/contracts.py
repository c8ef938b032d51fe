"""The domain events services exchange: routing keys and payload schemas.

One schema per routing key; consumers validate the payload against it and a message
that does not fit is dead-lettered instead of crashing the consumer. Amounts travel as
decimal strings, never floats; timestamps as ISO-8601 UTC.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

TicketClass = Literal["normal", "vip", "vvip"]


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class EmailVerification(Payload):
    user_id: int
    email: EmailStr
    code: str = Field(min_length=4, max_length=128)
    expires_at: datetime


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


class BookingConfirmed(Payload):
    booking_id: int
    user_id: int
    event_id: int
    hold_token: str
    seats: list[BookedSeat] = Field(min_length=1)
    total_amount: Decimal
    currency: str
    tx_ref: str | None = None
    confirmed_at: datetime


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


#: routing key -> payload schema. The first five keep the original system's names.
CONTRACTS: dict[str, type[Payload]] = {
    "booking_confirmed": BookingConfirmed,
    "payment_success": PaymentSucceeded,
    "email_verification": EmailVerification,
    "password_reset": PasswordReset,
    "audit_logs": AuditLog,
    "booking_cancelled": BookingCancelled,
    "payment_failed": PaymentFailed,
    "refund_requested": RefundRequested,
    "payment_refunded": PaymentRefunded,
}
