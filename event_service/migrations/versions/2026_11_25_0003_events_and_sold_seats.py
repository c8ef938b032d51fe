"""events, sold seats and released bookings

Revision ID: event_0003
Revises: event_0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "event_0003"
down_revision = "event_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("organizer_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("seats_per_row", sa.Integer(), nullable=False),
        sa.Column("price_normal", sa.Numeric(12, 2), nullable=False),
        sa.Column("price_vip", sa.Numeric(12, 2), nullable=False),
        sa.Column("price_vvip", sa.Numeric(12, 2), nullable=False),
        sa.Column("seats_normal", sa.Integer(), nullable=False),
        sa.Column("seats_vip", sa.Integer(), nullable=False),
        sa.Column("seats_vvip", sa.Integer(), nullable=False),
        sa.Column("sold_normal", sa.Integer(), nullable=False),
        sa.Column("sold_vip", sa.Integer(), nullable=False),
        sa.Column("sold_vvip", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("seats_per_row BETWEEN 1 AND 1000", name="seats_per_row_range"),
        sa.CheckConstraint(
            "price_normal >= 0 AND price_vip >= 0 AND price_vvip >= 0", name="prices_non_negative"
        ),
        sa.CheckConstraint(
            "seats_normal >= 0 AND seats_vip >= 0 AND seats_vvip >= 0", name="seats_non_negative"
        ),
        sa.CheckConstraint("seats_normal + seats_vip + seats_vvip >= 1", name="at_least_one_seat"),
        sa.CheckConstraint("sold_normal BETWEEN 0 AND seats_normal", name="sold_normal_within"),
        sa.CheckConstraint("sold_vip BETWEEN 0 AND seats_vip", name="sold_vip_within"),
        sa.CheckConstraint("sold_vvip BETWEEN 0 AND seats_vvip", name="sold_vvip_within"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_events_organizer_id", "events", ["organizer_id"])
    op.create_index("ix_events_date", "events", ["date"])
    op.create_index("ix_events_created_at_id", "events", ["created_at", "id"])

    op.create_table(
        "event_seats_sold",
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("seat_id", sa.String(32), nullable=False),
        sa.Column("ticket_class", sa.String(8), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), nullable=False),
        sa.Column("hold_token", sa.String(128), nullable=False),
        sa.Column("sold_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ticket_class IN ('normal', 'vip', 'vvip')", name="ticket_class_known"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_id", "seat_id"),
    )
    op.create_index("ix_event_seats_sold_booking", "event_seats_sold", ["booking_id"])

    op.create_table(
        "event_released_bookings",
        sa.Column("booking_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("booking_id"),
    )


def downgrade() -> None:
    op.drop_table("event_released_bookings")
    op.drop_index("ix_event_seats_sold_booking", table_name="event_seats_sold")
    op.drop_table("event_seats_sold")
    op.drop_index("ix_events_created_at_id", table_name="events")
    op.drop_index("ix_events_date", table_name="events")
    op.drop_index("ix_events_organizer_id", table_name="events")
    op.drop_table("events")
