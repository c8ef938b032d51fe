"""events: the organizer's cap on one buyer's tickets

Revision ID: event_0004
Revises: event_0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "event_0004"
down_revision = "event_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("max_tickets_per_buyer", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_events_max_tickets_per_buyer_positive"), "events", "max_tickets_per_buyer >= 1"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_events_max_tickets_per_buyer_positive"), "events")
    op.drop_column("events", "max_tickets_per_buyer")
