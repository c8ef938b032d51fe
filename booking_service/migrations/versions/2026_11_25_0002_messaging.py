"""messaging: outbox and inbox tables

Revision ID: booking_0002
Revises: booking_0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from ticketing_common.messaging.schema import create_messaging_tables, drop_messaging_tables

revision = "booking_0002"
down_revision = "booking_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
