"""baseline: an empty booking_db, so every later migration has a root

Revision ID: booking_0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

revision = "booking_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
