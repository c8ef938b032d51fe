"""event_service tables (its own database: event_db).

PostgreSQL is the truth about what is sold: one row per sold seat, unique per event, and
per-class sold counters that a CHECK keeps within capacity. Holds live only in Redis.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ticketing_common.db import TYPE_ANNOTATION_MAP, TimestampMixin, service_metadata, utcnow

TICKET_CLASSES = ("normal", "vip", "vvip")
Money = Numeric(12, 2)


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map: ClassVar[dict[Any, Any]] = TYPE_ANNOTATION_MAP


class Event(TimestampMixin, Base):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("seats_per_row BETWEEN 1 AND 1000", name="seats_per_row_range"),
        CheckConstraint(
            "price_normal >= 0 AND price_vip >= 0 AND price_vvip >= 0", name="prices_non_negative"
        ),
        CheckConstraint(
            "seats_normal >= 0 AND seats_vip >= 0 AND seats_vvip >= 0", name="seats_non_negative"
        ),
        CheckConstraint("seats_normal + seats_vip + seats_vvip >= 1", name="at_least_one_seat"),
        CheckConstraint("sold_normal BETWEEN 0 AND seats_normal", name="sold_normal_within"),
        CheckConstraint("sold_vip BETWEEN 0 AND seats_vip", name="sold_vip_within"),
        CheckConstraint("sold_vvip BETWEEN 0 AND seats_vvip", name="sold_vvip_within"),
        CheckConstraint("max_tickets_per_buyer >= 1", name="max_tickets_per_buyer_positive"),
        CheckConstraint(
            "queue_admit_per_minute BETWEEN 1 AND 60000", name="queue_admit_per_minute_range"
        ),
        Index("ix_events_created_at_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    organizer_id: Mapped[int] = mapped_column(BigInteger, index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    date: Mapped[datetime] = mapped_column(index=True)
    location: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    seats_per_row: Mapped[int] = mapped_column(Integer, default=10)
    price_normal: Mapped[Decimal] = mapped_column(Money)
    price_vip: Mapped[Decimal] = mapped_column(Money)
    price_vvip: Mapped[Decimal] = mapped_column(Money)
    seats_normal: Mapped[int] = mapped_column(Integer)
    seats_vip: Mapped[int] = mapped_column(Integer)
    seats_vvip: Mapped[int] = mapped_column(Integer)
    sold_normal: Mapped[int] = mapped_column(Integer, default=0)
    sold_vip: Mapped[int] = mapped_column(Integer, default=0)
    sold_vvip: Mapped[int] = mapped_column(Integer, default=0)
    #: the organizer's cap on one buyer's tickets (pending and paid) for the event; NULL: none
    max_tickets_per_buyer: Mapped[int | None] = mapped_column(Integer)
    #: the on-sale's waiting room (issue 20): buyers queue and book only once admitted
    queue_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: when the sale opens: arrivals before it are shuffled, later ones queue in order
    onsale_at: Mapped[datetime | None] = mapped_column()
    #: buyers admitted per minute; NULL: the service's default (``queue_admit_per_minute``)
    queue_admit_per_minute: Mapped[int | None] = mapped_column(Integer)


class SoldSeat(Base):
    """A seat sold to a booking: the primary key makes a second sale impossible."""

    __tablename__ = "event_seats_sold"
    __table_args__ = (
        CheckConstraint("ticket_class IN ('normal', 'vip', 'vvip')", name="ticket_class_known"),
        Index("ix_event_seats_sold_booking", "booking_id"),
    )

    event_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    seat_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ticket_class: Mapped[str] = mapped_column(String(8))
    booking_id: Mapped[int] = mapped_column(BigInteger)
    hold_token: Mapped[str] = mapped_column(String(128))
    sold_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReleasedBooking(Base):
    """A confirmed booking whose seats went back on sale (cancelled after payment).

    A late or redelivered ``booking_confirmed`` for it must not sell its seats again.
    """

    __tablename__ = "event_released_bookings"

    booking_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger)
    released_at: Mapped[datetime] = mapped_column(default=utcnow)


class WaitlistEntry(Base):
    """A buyer waiting for seats of a sold-out class (issue 19).

    ``waiting`` → ``offering`` (a replica is asking booking_service for the offer's pending
    booking; a claim older than a minute is taken over, with the same idempotency key) →
    ``offered`` (the booking holds the seats until ``offer_expires_at``) → ``booked``
    (paid) or ``lapsed`` (not paid in time, cancelled, or the payment failed). ``left``: the
    buyer left the list; ``refused``: the buyer could not have the seats (a per-buyer limit,
    the event started), with the ``reason``. One active entry per account and class.
    """

    __tablename__ = "event_waitlist_entries"
    __table_args__ = (
        CheckConstraint("ticket_class IN ('normal', 'vip', 'vvip')", name="ticket_class_known"),
        CheckConstraint(
            "status IN ('waiting', 'offering', 'offered', 'booked', 'lapsed', 'left', 'refused')",
            name="status_known",
        ),
        CheckConstraint("seat_count BETWEEN 1 AND 100", name="seat_count_range"),
        Index(
            "uq_event_waitlist_entries_active",
            "event_id",
            "ticket_class",
            "user_id",
            unique=True,
            postgresql_where=text("status IN ('waiting', 'offering', 'offered')"),
        ),
        Index(
            "ix_event_waitlist_entries_queue",
            "event_id",
            "ticket_class",
            "id",
            postgresql_where=text("status IN ('waiting', 'offering')"),
        ),
        Index(
            "ix_event_waitlist_entries_booking",
            "booking_id",
            postgresql_where=text("status = 'offered'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("events.id", ondelete="CASCADE"))
    ticket_class: Mapped[str] = mapped_column(String(8))
    seat_count: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(BigInteger)
    buyer_email: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column()
    booking_id: Mapped[int | None] = mapped_column(BigInteger)
    offered_at: Mapped[datetime | None] = mapped_column()
    offer_expires_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    reason: Mapped[str | None] = mapped_column(String(200))
