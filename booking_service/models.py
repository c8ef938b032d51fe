"""booking_service tables (its own database: booking_db).

``booking_seats.status`` mirrors its booking's status so that a partial unique index can
guard the rule that matters most: a seat is in at most one active (pending or confirmed)
booking per event, even if the Redis gate were wiped.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ticketing_common.db import TYPE_ANNOTATION_MAP, TimestampMixin, service_metadata, utcnow

Money = Numeric(12, 2)


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map: ClassVar[dict[Any, Any]] = TYPE_ANNOTATION_MAP


class BookingStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FAILED = "failed"


ACTIVE_STATUSES = (BookingStatus.PENDING, BookingStatus.CONFIRMED)


class CheckinResult(StrEnum):
    """What a door learns of a scanned ticket code."""

    OK = "ok"
    ALREADY_CHECKED_IN = "already_checked_in"
    #: forged, altered or malformed; an unknown booking or seat; a booking never confirmed
    INVALID = "invalid"
    #: its booking was cancelled (and refunded) after it was paid
    CANCELLED = "cancelled"
    #: a ticket of another event than the one the door checks in
    WRONG_EVENT = "wrong_event"


_STATUS_VALUES = ", ".join(f"'{s.value}'" for s in BookingStatus)
_ACTIVE_SEAT = text("status IN ('pending', 'confirmed')")


class Booking(TimestampMixin, Base):
    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status"),
        CheckConstraint("total_amount >= 0", name="total_amount_not_negative"),
        Index("ix_bookings_user_id_id", "user_id", "id"),
        Index("ix_bookings_organizer_id_event_id", "organizer_id", "event_id"),
        Index(
            "ix_bookings_pending_expires_at",
            "expires_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int] = mapped_column(BigInteger, index=True)
    # The event's organizer when the booking was made: sales reads need no event lookup.
    organizer_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=BookingStatus.PENDING)
    total_amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    hold_token: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    payment_tx_ref: Mapped[str | None] = mapped_column(String(100))
    confirmed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    # The event and the buyer as the hold and the token named them when the booking was
    # made: what its messages carry, so payment and tickets ask no other service. NULL
    # for bookings made before the hold carried them.
    event_title: Mapped[str | None] = mapped_column(String(200))
    event_starts_at: Mapped[datetime | None]
    venue: Mapped[str | None] = mapped_column(String(200))
    buyer_email: Mapped[str | None] = mapped_column(String(320))
    # The original's ``seats`` string: JSON of ``[{id, row, number, price}]``, the seats in
    # the order the client sent them (the seats assigned, for a count) at the server's
    # prices. Written by the booking's one insert; NULL only for rows the migration that
    # added it could not fill (it fills them all).
    client_seats: Mapped[str | None] = mapped_column(Text)

    seats: Mapped[list[BookingSeat]] = relationship(
        back_populates="booking",
        lazy="selectin",
        order_by="BookingSeat.id",
        cascade="all, delete-orphan",
    )


class BookingSeat(Base):
    __tablename__ = "booking_seats"
    __table_args__ = (
        UniqueConstraint("booking_id", "seat_id"),
        CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status"),
        CheckConstraint("ticket_class IN ('normal', 'vip', 'vvip')", name="ticket_class"),
        Index(
            "uq_booking_seats_active_seat",
            "event_id",
            "seat_id",
            unique=True,
            postgresql_where=_ACTIVE_SEAT,
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("bookings.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(BigInteger)
    seat_id: Mapped[str] = mapped_column(String(32))
    ticket_class: Mapped[str] = mapped_column(String(8))
    row: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), default=BookingStatus.PENDING)

    booking: Mapped[Booking] = relationship(back_populates="seats")


class BookingIdempotencyKey(Base):
    """An ``Idempotency-Key`` a user sent with a booking that was created (valid 24 h).

    ``generation`` counts reuses of the key after it lapsed, so each use derives its own
    hold token while a retry within one use re-derives the same token.
    """

    __tablename__ = "booking_idempotency_keys"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    booking_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RefundRequest(Base):
    """A refund this service asked for: at most one per payment (``tx_ref``)."""

    __tablename__ = "booking_refunds"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # The booking the payment named; not a foreign key, as a payment may name an unknown one.
    booking_id: Mapped[int] = mapped_column(BigInteger, index=True)
    tx_ref: Mapped[str] = mapped_column(String(100), unique=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BuyerQuota(Base):
    """What one account has of one event, kept with every booking change (issue 17):
    seats in its pending bookings, its pending bookings, and its tickets (seats in pending
    and confirmed bookings). A booking is refused in the same statement that would store
    it once a limit is reached; the row lock orders one buyer's concurrent bookings."""

    __tablename__ = "buyer_quotas"
    __table_args__ = (
        CheckConstraint("held_seats >= 0", name="held_seats_not_negative"),
        CheckConstraint("pending_bookings >= 0", name="pending_bookings_not_negative"),
        CheckConstraint("tickets >= 0", name="tickets_not_negative"),
    )

    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    held_seats: Mapped[int] = mapped_column(Integer, default=0)
    pending_bookings: Mapped[int] = mapped_column(Integer, default=0)
    tickets: Mapped[int] = mapped_column(Integer, default=0)


class TicketCheckin(Base):
    """A seat let in at the door. One row per seat of a booking, ever (the primary key): of
    any number of doors scanning one ticket at once, one insert wins and the rest find it.
    An offline door's earlier scan, uploaded later, replaces the time and the scanner."""

    __tablename__ = "ticket_checkins"
    __table_args__ = (
        ForeignKeyConstraint(
            ["booking_id", "seat_id"],
            ["booking_seats.booking_id", "booking_seats.seat_id"],
            ondelete="CASCADE",
        ),
    )

    booking_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seat_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    checked_in_at: Mapped[datetime]
    #: the account that scanned it (the organizer, an admin)
    checked_in_by: Mapped[int] = mapped_column(BigInteger)
    device: Mapped[str | None] = mapped_column(String(64))
    offline: Mapped[bool] = mapped_column(Boolean)


_CHECKIN_RESULTS = ", ".join(f"'{r.value}'" for r in CheckinResult)


class CheckinScan(Base):
    """Every scan at a door, whatever its result: who scanned, when, what the code named
    (when it named anything genuine), the answer, and whether it came online or from an
    offline door's upload. Not tied to bookings: a forged code names none."""

    __tablename__ = "checkin_scans"
    __table_args__ = (
        CheckConstraint(f"result IN ({_CHECKIN_RESULTS})", name="result"),
        Index("ix_checkin_scans_event_id_id", "event_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    #: the ticket's event, else the event the door named, else unknown
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    booking_id: Mapped[int | None] = mapped_column(BigInteger)
    seat_id: Mapped[str | None] = mapped_column(String(32))
    result: Mapped[str] = mapped_column(String(24))
    scanned_by: Mapped[int] = mapped_column(BigInteger)
    #: when the door scanned it (an offline door's own clock)
    scanned_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    offline: Mapped[bool] = mapped_column(Boolean)
    device: Mapped[str | None] = mapped_column(String(64))
