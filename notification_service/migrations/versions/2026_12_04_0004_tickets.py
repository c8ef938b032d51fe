"""tickets: each confirmed booking's PDF, rendered once and re-served

Revision ID: notification_0004
Revises: notification_0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "notification_0004"
down_revision = "notification_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("booking_id", sa.BigInteger(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("booking_id", name=op.f("pk_tickets")),
    )
    # The PDF's streams are already deflated: PostgreSQL's own compression would only
    # spend CPU finding that out. EXTERNAL keeps it out of line, uncompressed.
    op.execute("ALTER TABLE tickets ALTER COLUMN pdf SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("tickets")
