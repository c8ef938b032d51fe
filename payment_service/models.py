"""payment_service tables (its own database: payment_db)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Numeric, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ticketing_common.db import TYPE_ANNOTATION_MAP, TimestampMixin, service_metadata, utcnow

Money = Numeric(12, 2)


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map: ClassVar[dict[Any, Any]] = TYPE_ANNOTATION_MAP


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"
    REFUNDED = "refunded"


class Payment(TimestampMixin, Base):
    """This service's record of one attempt to pay for one booking.

    ``pending → success | failed`` and ``success → refunded``; the transition out of
    ``pending`` happens once, under a row lock, together with its outbox message.
    """

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'success', 'failed', 'refunded')", name="status_known"
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        # A booking has at most one active (pending or paid) payment: initializing again
        # answers it, and concurrent initializes make one.
        Index(
            "uq_payments_active_booking",
            "booking_id",
            unique=True,
            postgresql_where=text("status IN ('pending', 'success')"),
        ),
        Index(
            "ix_payments_pending_created_at",
            "created_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(index=True)
    user_id: Mapped[int] = mapped_column(index=True)
    tx_ref: Mapped[str] = mapped_column(String(64), unique=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=PaymentStatus.PENDING)
    provider: Mapped[str] = mapped_column(String(20))
    checkout_url: Mapped[str | None] = mapped_column(Text)
    provider_reference: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    paid_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
    refund_reference: Mapped[str | None] = mapped_column(String(100))
    last_checked_at: Mapped[datetime | None]
    #: When an initialize last asked the provider to open this payment's checkout, while
    #: ``checkout_url`` is still unknown: a request in flight, which concurrent initializes
    #: wait for. NULL once that request failed, so the next initialize asks again at once.
    checkout_requested_at: Mapped[datetime | None]


class PayableStatus(StrEnum):
    PENDING = "pending"
    CLOSED = "closed"


class PayableBooking(Base):
    """This service's own record of a booking it may be asked to charge.

    ``booking_created`` fills it and ``booking_cancelled`` (of a pending booking) closes
    it, so initialize asks booking_service nothing. Messages may arrive in any order: a
    cancellation that comes first leaves a closed row without the amount (a tombstone),
    and the creation that follows does not reopen it. When a buyer is faster than the
    outbox relay, initialize fetches the booking once and stores it here.
    """

    __tablename__ = "payable_bookings"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'closed')", name="status_known"),
        CheckConstraint(
            "status = 'closed' OR (amount IS NOT NULL AND currency IS NOT NULL "
            "AND expires_at IS NOT NULL)",
            name="pending_has_amount",
        ),
    )

    booking_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    event_title: Mapped[str | None] = mapped_column(String(200))
    #: the seats in words, for the provider's checkout page
    description: Mapped[str | None] = mapped_column(Text)
    buyer_email: Mapped[str | None] = mapped_column(String(320))
    expires_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RefundOutcome(StrEnum):
    REFUNDED = "refunded"
    NOTHING_TO_REFUND = "nothing_to_refund"


class Refund(Base):
    """Each refund request handled, including those that found nothing paid to refund."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("outcome IN ('refunded', 'nothing_to_refund')", name="outcome_known"),
        Index(
            "uq_refunds_refunded_payment",
            "payment_id",
            unique=True,
            postgresql_where=text("outcome = 'refunded'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(50))
    outcome: Mapped[str] = mapped_column(String(20))
    provider_reference: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SimulatedTransaction(Base):
    """The simulated provider's own ledger: what "the bank" knows, apart from our records.

    Only :mod:`payment_service.providers.simulated` touches it, through its own pool of
    connections, so verifying a payment really asks another party instead of re-reading
    ``payments``.
    """

    __tablename__ = "simulated_provider_transactions"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'success', 'failed', 'refunded')", name="status_known"
        ),
    )

    tx_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    return_url: Mapped[str | None] = mapped_column(Text)
    callback_url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    refund_reference: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
