"""bookings: bookings, their seats (one active booking per seat), idempotency keys, refunds

Revision ID: booking_0003
Revises: booking_0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "booking_0003"
down_revision = "booking_0002"
branch_labels = None
depends_on = None

_STATUSES = "'pending', 'confirmed', 'expired', 'cancelled', 'failed'"


def upgrade() -> None:
    op.create_table(
        "bookings",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("organizer_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total_amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("hold_token", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payment_tx_ref", sa.String(100), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bookings"),
        sa.UniqueConstraint("hold_token", name="uq_bookings_hold_token"),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name="ck_bookings_status"),
        sa.CheckConstraint("total_amount >= 0", name="ck_bookings_total_amount_not_negative"),
    )
    op.create_index("ix_bookings_event_id", "bookings", ["event_id"])
    op.create_index("ix_bookings_user_id_id", "bookings", ["user_id", "id"])
    op.create_index("ix_bookings_organizer_id_event_id", "bookings", ["organizer_id", "event_id"])
    op.create_index(
        "ix_bookings_pending_expires_at",
        "bookings",
        ["expires_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )

    op.create_table(
        "booking_seats",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("seat_id", sa.String(32), nullable=False),
        sa.Column("ticket_class", sa.String(8), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("price", sa.Numeric(12, 2), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_booking_seats"),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            ondelete="CASCADE",
            name="fk_booking_seats_booking_id_bookings",
        ),
        sa.UniqueConstraint("booking_id", "seat_id", name="uq_booking_seats_booking_id_seat_id"),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name="ck_booking_seats_status"),
        sa.CheckConstraint(
            "ticket_class IN ('normal', 'vip', 'vvip')", name="ck_booking_seats_ticket_class"
        ),
    )
    # The last line of defence against a double sale (DESIGN §6).
    op.create_index(
        "uq_booking_seats_active_seat",
        "booking_seats",
        ["event_id", "seat_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('pending', 'confirmed')"),
    )

    op.create_table(
        "booking_idempotency_keys",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("request_fingerprint", sa.String(64), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name="pk_booking_idempotency_keys"),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            ondelete="CASCADE",
            name="fk_booking_idempotency_keys_booking_id_bookings",
        ),
    )
    op.create_index(
        "ix_booking_idempotency_keys_booking_id", "booking_idempotency_keys", ["booking_id"]
    )

    op.create_table(
        "booking_refunds",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), nullable=False),
        sa.Column("tx_ref", sa.String(100), nullable=False),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_booking_refunds"),
        sa.UniqueConstraint("tx_ref", name="uq_booking_refunds_tx_ref"),
    )
    op.create_index("ix_booking_refunds_booking_id", "booking_refunds", ["booking_id"])


def downgrade() -> None:
    op.drop_table("booking_refunds")
    op.drop_table("booking_idempotency_keys")
    op.drop_table("booking_seats")
    op.drop_table("bookings")
