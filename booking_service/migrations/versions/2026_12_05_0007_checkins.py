"""ticket_checkins and checkin_scans: tickets checked in at the door, and every scan

Revision ID: booking_0007
Revises: booking_0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "booking_0007"
down_revision = "booking_0006"
branch_labels = None
depends_on = None

_RESULTS = "'ok', 'already_checked_in', 'invalid', 'cancelled', 'wrong_event'"


def upgrade() -> None:
    op.create_table(
        "ticket_checkins",
        sa.Column("booking_id", sa.BigInteger(), nullable=False),
        sa.Column("seat_id", sa.String(32), nullable=False),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_in_by", sa.BigInteger(), nullable=False),
        sa.Column("device", sa.String(64), nullable=True),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("booking_id", "seat_id", name="pk_ticket_checkins"),
        sa.ForeignKeyConstraint(
            ["booking_id", "seat_id"],
            ["booking_seats.booking_id", "booking_seats.seat_id"],
            ondelete="CASCADE",
            name="fk_ticket_checkins_booking_id_booking_seats",
        ),
    )
    op.create_table(
        "checkin_scans",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("booking_id", sa.BigInteger(), nullable=True),
        sa.Column("seat_id", sa.String(32), nullable=True),
        sa.Column("result", sa.String(24), nullable=False),
        sa.Column("scanned_by", sa.BigInteger(), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("device", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_checkin_scans"),
        sa.CheckConstraint(f"result IN ({_RESULTS})", name="ck_checkin_scans_result"),
    )
    op.create_index("ix_checkin_scans_event_id_id", "checkin_scans", ["event_id", "id"])


def downgrade() -> None:
    op.drop_table("checkin_scans")
    op.drop_table("ticket_checkins")
