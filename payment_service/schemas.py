"""Request and response bodies of ``/api/payments``.

Payments keep the Go original's wire shape (ORIGINAL_API.md): gorm's ``ID``,
``CreatedAt``, ``UpdatedAt``, ``DeletedAt`` and ``amount`` as a JSON number; the port's
own fields are additions.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from ticketing_common.pagination import MAX_ID
from ticketing_common.wire import MAX_CLIENT_AMOUNT, GormFields, Money


class InitializePaymentRequest(BaseModel):
    """What the buyer may say; the original's body ``{booking_id, user_id, amount, email,
    first_name, last_name}`` is accepted. The amount and currency always come from the
    booking: an ``amount`` is only checked against it, and ``user_id`` is the token's."""

    model_config = ConfigDict(extra="ignore")

    booking_id: int = Field(gt=0, le=MAX_ID)
    user_id: int | None = Field(
        None, description="ignored: the payer is the token's user (the booking's owner)"
    )
    amount: Decimal | None = Field(
        None,
        ge=0,
        le=MAX_CLIENT_AMOUNT,
        allow_inf_nan=False,
        description="the amount the buyer expects to pay: accepted when it is the booking's "
        "total, refused with 409 `amount_mismatch` when it differs",
    )
    email: EmailStr | None = None
    # No NUL: PostgreSQL text cannot hold it (a 400 here, not a database error later).
    first_name: str | None = Field(None, max_length=100, pattern=r"^[^\x00]*$")
    last_name: str | None = Field(None, max_length=100, pattern=r"^[^\x00]*$")


class CheckoutResponse(BaseModel):
    checkout_url: str
    tx_ref: str


class PaymentOut(GormFields):
    """A payment: the original's fields (gorm's from :class:`GormFields`) and the port's."""

    model_config = ConfigDict(from_attributes=True)

    booking_id: int
    user_id: int
    tx_ref: str
    amount: Money
    currency: str
    status: str
    provider: str
    checkout_url: str | None
    provider_reference: str | None
    failure_reason: str | None
    paid_at: datetime | None
    failed_at: datetime | None
    refunded_at: datetime | None
    refund_reference: str | None


class PaymentResponse(BaseModel):
    message: str
    payment: PaymentOut


class CallbackBody(BaseModel):
    """A provider callback names the transaction; its outcome is then asked of the provider."""

    model_config = ConfigDict(extra="ignore")

    tx_ref: str = Field(min_length=1, max_length=64)


class CallbackAck(BaseModel):
    message: str
    status: str
