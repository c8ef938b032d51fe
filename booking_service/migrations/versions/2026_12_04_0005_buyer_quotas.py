"""buyer_quotas: what one account holds and has bought of one event (per-buyer limits)

Revision ID: booking_0005
Revises: booking_0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "booking_0005"
down_revision = "booking_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "buyer_quotas",
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("held_seats", sa.Integer(), nullable=False),
        sa.Column("pending_bookings", sa.Integer(), nullable=False),
        sa.Column("tickets", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "user_id", name=op.f("pk_buyer_quotas")),
        sa.CheckConstraint("held_seats >= 0", name=op.f("ck_buyer_quotas_held_seats_not_negative")),
        sa.CheckConstraint(
            "pending_bookings >= 0", name=op.f("ck_buyer_quotas_pending_bookings_not_negative")
        ),
        sa.CheckConstraint("tickets >= 0", name=op.f("ck_buyer_quotas_tickets_not_negative")),
    )
    # The bookings made before the limits existed count against them too.
    op.execute(
        """
        INSERT INTO buyer_quotas (event_id, user_id, held_seats, pending_bookings, tickets)
        SELECT b.event_id, b.user_id,
               count(s.id) FILTER (WHERE b.status = 'pending'),
               count(DISTINCT b.id) FILTER (WHERE b.status = 'pending'),
               count(s.id)
        FROM bookings b JOIN booking_seats s ON s.booking_id = b.id
        WHERE b.status IN ('pending', 'confirmed')
        GROUP BY b.event_id, b.user_id
        """
    )


def downgrade() -> None:
    op.drop_table("buyer_quotas")
