"""bookings.client_seats: the original's ``seats`` string (the seats as the client sent them)

Revision ID: booking_0006
Revises: booking_0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "booking_0006"
down_revision = "booking_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("bookings", sa.Column("client_seats", sa.Text(), nullable=True))
    # Bookings made before: their seats in the stored order, as a count booking's are.
    op.execute(
        """
        UPDATE bookings b SET client_seats = (
            SELECT json_agg(json_build_object('id', s.seat_id, 'row', s."row",
                                              'number', s.number, 'price', s.price)
                            ORDER BY s.id)::text
            FROM booking_seats s WHERE s.booking_id = b.id
        )
        """
    )


def downgrade() -> None:
    op.drop_column("bookings", "client_seats")
