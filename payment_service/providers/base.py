"""What payment_service needs from a payment provider, whichever one is configured."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol


class ProviderStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    """Everything a provider needs to open a hosted checkout for one payment."""

    tx_ref: str
    amount: Decimal
    currency: str
    title: str
    description: str
    return_url: str | None
    callback_url: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    checkout_url: str
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderTransaction:
    """What the provider says about a transaction right now."""

    tx_ref: str
    status: ProviderStatus
    amount: Decimal
    currency: str
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    tx_ref: str
    reference: str
    amount: Decimal
    refunded_at: datetime


class ProviderError(Exception):
    """The provider could not be asked (down, timed out, answered garbage): try later."""


class ProviderRejected(ProviderError):
    """The provider answered and refused the request: trying again will not help."""


class ProviderTransactionNotFound(ProviderRejected):
    """The provider has no transaction with this reference."""


class PaymentProvider(Protocol):
    """A payment provider: open a checkout, ask about a transaction, refund it.

    Every call is safe to repeat: ``initialize`` with the same ``tx_ref`` never opens a
    second charge and ``refund`` of a refunded transaction returns the first refund.
    ``idempotent_initialize`` says what a repeated ``initialize`` answers: the same
    checkout (True), or a refusal of the used ``tx_ref`` (False, as Chapa does), in which
    case a checkout whose answer was lost needs a new ``tx_ref``.
    """

    name: str
    idempotent_initialize: bool

    async def initialize(self, request: CheckoutRequest) -> CheckoutSession: ...

    async def verify(self, tx_ref: str) -> ProviderTransaction: ...

    async def refund(self, tx_ref: str, amount: Decimal, reason: str) -> ProviderRefund: ...

    async def aclose(self) -> None: ...
