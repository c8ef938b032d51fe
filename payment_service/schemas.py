"""Request and response bodies of ``/api/payments``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from ticketing_common.pagination import MAX_ID


class InitializePaymentRequest(BaseModel):
    """What the buyer may say. Anything else (an ``amount``, say) is ignored: the amount
    and currency always come from the booking."""

    model_config = ConfigDict(extra="ignore")

    booking_id: int = Field(gt=0, le=MAX_ID)
    email: EmailStr | None = None
    # No NUL: PostgreSQL text cannot hold it (a 400 here, not a database error later).
    first_name: str | None = Field(None, max_length=100, pattern=r"^[^\x00]*$")
    last_name: str | None = Field(None, max_length=100, pattern=r"^[^\x00]*$")


class CheckoutResponse(BaseModel):
    checkout_url: str
    tx_ref: str


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    booking_id: int
    user_id: int
    tx_ref: str
    amount: Decimal
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
    created_at: datetime
    updated_at: datetime


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
