"""event_waitlist_entries: waiting lists of sold-out classes and their offers (issue 19)

Revision ID: event_0006
Revises: event_0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "event_0006"
down_revision = "event_0005"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('waiting', 'offering', 'offered')"


def upgrade() -> None:
    op.create_table(
        "event_waitlist_entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("ticket_class", sa.String(length=8), nullable=False),
        sa.Column("seat_count", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("buyer_email", sa.String(length=320), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("booking_id", sa.BigInteger(), nullable=True),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "ticket_class IN ('normal', 'vip', 'vvip')",
            name=op.f("ck_event_waitlist_entries_ticket_class_known"),
        ),
        sa.CheckConstraint(
            "status IN ('waiting', 'offering', 'offered', 'booked', 'lapsed', 'left', 'refused')",
            name=op.f("ck_event_waitlist_entries_status_known"),
        ),
        sa.CheckConstraint(
            "seat_count BETWEEN 1 AND 100", name=op.f("ck_event_waitlist_entries_seat_count_range")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_event_waitlist_entries_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_waitlist_entries")),
    )
    op.create_index(
        "uq_event_waitlist_entries_active",
        "event_waitlist_entries",
        ["event_id", "ticket_class", "user_id"],
        unique=True,
        postgresql_where=sa.text(ACTIVE),
    )
    op.create_index(
        "ix_event_waitlist_entries_queue",
        "event_waitlist_entries",
        ["event_id", "ticket_class", "id"],
        postgresql_where=sa.text("status IN ('waiting', 'offering')"),
    )
    op.create_index(
        "ix_event_waitlist_entries_booking",
        "event_waitlist_entries",
        ["booking_id"],
        postgresql_where=sa.text("status = 'offered'"),
    )


def downgrade() -> None:
    op.drop_table("event_waitlist_entries")
