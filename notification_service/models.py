"""notification_service tables (its own database: notification_db)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ticketing_common.db import TYPE_ANNOTATION_MAP, TimestampMixin, service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map: ClassVar[dict[Any, Any]] = TYPE_ANNOTATION_MAP


class NotificationType(StrEnum):
    EMAIL_VERIFICATION = "email_verification"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a message type, not a secret
    BOOKING_CONFIRMED = "booking_confirmed"
    BOOKING_CANCELLED = "booking_cancelled"
    REFUND_REQUESTED = "refund_requested"
    PAYMENT_REFUNDED = "payment_refunded"
    EVENT_CHANGED = "event_changed"
    WAITLIST_OFFERED = "waitlist_offered"


class NotificationStatus(StrEnum):
    """A row is created ``sending`` (claimed by its first try) → ``sent``; a failed try
    goes to ``retrying`` (and back to ``sending`` on the next one) until the budget is
    spent and it becomes ``failed``. ``pending`` is claimable but no longer written: the
    claim that creates a row takes it in the same statement."""

    PENDING = "pending"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"


class Notification(TimestampMixin, Base):
    """One email the service owes someone, keyed by the message that asked for it."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("message_id", "type", name="uq_notifications_message_id_type"),
        CheckConstraint(
            "status IN ('pending', 'sending', 'retrying', 'sent', 'failed')", name="status"
        ),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_notifications_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    message_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    type: Mapped[str] = mapped_column(String(50))
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    booking_id: Mapped[int | None] = mapped_column(BigInteger)
    recipient: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default=NotificationStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    email_message_id: Mapped[str | None] = mapped_column(String(300))
    lease_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class Ticket(Base):
    """A booking's PDF ticket, rendered once (when its confirmation email is composed, or
    by the first download of an older booking) and re-served by every later download.

    It holds no owner or status on purpose: whether the booking is still the caller's and
    still confirmed is booking_service's to say at each download (a confirmed booking may
    be cancelled later), so the bytes are only what was printed.
    """

    __tablename__ = "tickets"

    booking_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
