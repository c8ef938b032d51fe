"""events: the on-sale's waiting room (queue_enabled, onsale_at, queue_admit_per_minute)

Revision ID: event_0005
Revises: event_0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "event_0005"
down_revision = "event_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "events",
        sa.Column("queue_enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("events", sa.Column("onsale_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("events", sa.Column("queue_admit_per_minute", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_events_queue_admit_per_minute_range"),
        "events",
        "queue_admit_per_minute BETWEEN 1 AND 60000",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_events_queue_admit_per_minute_range"), "events")
    op.drop_column("events", "queue_admit_per_minute")
    op.drop_column("events", "onsale_at")
    op.drop_column("events", "queue_enabled")
