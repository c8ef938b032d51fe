"""messaging: outbox and inbox tables

Revision ID: payment_0002
Revises: payment_0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from ticketing_common.messaging.schema import create_messaging_tables, drop_messaging_tables

revision = "payment_0002"
down_revision = "payment_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
