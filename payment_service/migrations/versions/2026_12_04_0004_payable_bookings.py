"""payable_bookings: this service's own record of each booking it may charge; payments
remember when a checkout was last requested of the provider

Revision ID: payment_0004
Revises: payment_0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "payment_0004"
down_revision = "payment_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payable_bookings",
        sa.Column("booking_id", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.Numeric(12, 2)),
        sa.Column("currency", sa.String(3)),
        sa.Column("event_title", sa.String(200)),
        sa.Column("description", sa.Text),
        sa.Column("buyer_email", sa.String(320)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("booking_id", name="pk_payable_bookings"),
        sa.CheckConstraint(
            "status IN ('pending', 'closed')", name="ck_payable_bookings_status_known"
        ),
        sa.CheckConstraint(
            "status = 'closed' OR (amount IS NOT NULL AND currency IS NOT NULL "
            "AND expires_at IS NOT NULL)",
            name="ck_payable_bookings_pending_has_amount",
        ),
    )
    # Nullable without a default: adding it rewrites nothing.
    op.add_column(
        "payments", sa.Column("checkout_requested_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("payments", "checkout_requested_at")
    op.drop_table("payable_bookings")
