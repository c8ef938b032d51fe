"""bookings carry their event's title, start and venue and the buyer's email

Revision ID: booking_0004
Revises: booking_0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "booking_0004"
down_revision = "booking_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable without defaults: adding them rewrites nothing, and older rows stay NULL.
    op.add_column("bookings", sa.Column("event_title", sa.String(200), nullable=True))
    op.add_column(
        "bookings", sa.Column("event_starts_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("bookings", sa.Column("venue", sa.String(200), nullable=True))
    op.add_column("bookings", sa.Column("buyer_email", sa.String(320), nullable=True))


def downgrade() -> None:
    for column in ("buyer_email", "venue", "event_starts_at", "event_title"):
        op.drop_column("bookings", column)
