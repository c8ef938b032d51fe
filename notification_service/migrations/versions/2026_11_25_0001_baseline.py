"""baseline: an empty notification_db, so every later migration has a root

Revision ID: notification_0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

revision = "notification_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
