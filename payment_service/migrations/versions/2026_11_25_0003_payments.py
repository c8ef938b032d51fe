"""payments, refunds and the simulated provider's ledger

Revision ID: payment_0003
Revises: payment_0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "payment_0003"
down_revision = "payment_0002"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(12, 2)
STATUSES = "status IN ('pending', 'success', 'failed', 'refunded')"


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=None if nullable else sa.func.now(),
    )


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("booking_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("tx_ref", sa.String(64), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("checkout_url", sa.Text),
        sa.Column("provider_reference", sa.String(100)),
        sa.Column("email", sa.String(320)),
        sa.Column("first_name", sa.String(100)),
        sa.Column("last_name", sa.String(100)),
        sa.Column("failure_reason", sa.String(200)),
        _timestamp("paid_at", nullable=True),
        _timestamp("failed_at", nullable=True),
        _timestamp("refunded_at", nullable=True),
        sa.Column("refund_reference", sa.String(100)),
        _timestamp("last_checked_at", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_payments"),
        sa.UniqueConstraint("tx_ref", name="uq_payments_tx_ref"),
        sa.CheckConstraint(STATUSES, name="ck_payments_status_known"),
        sa.CheckConstraint("amount > 0", name="ck_payments_amount_positive"),
    )
    op.create_index("ix_payments_booking_id", "payments", ["booking_id"])
    op.create_index("ix_payments_user_id", "payments", ["user_id"])
    op.create_index(
        "uq_payments_active_booking",
        "payments",
        ["booking_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('pending', 'success')"),
    )
    op.create_index(
        "ix_payments_pending_created_at",
        "payments",
        ["created_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )

    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("booking_id", sa.Integer, nullable=False),
        sa.Column("payment_id", sa.Integer),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.String(50), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("provider_reference", sa.String(100)),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_refunds"),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name="fk_refunds_payment_id_payments"
        ),
        sa.CheckConstraint(
            "outcome IN ('refunded', 'nothing_to_refund')", name="ck_refunds_outcome_known"
        ),
    )
    op.create_index("ix_refunds_booking_id", "refunds", ["booking_id"])
    op.create_index(
        "uq_refunds_refunded_payment",
        "refunds",
        ["payment_id"],
        unique=True,
        postgresql_where=sa.text("outcome = 'refunded'"),
    )

    op.create_table(
        "simulated_provider_transactions",
        sa.Column("tx_ref", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(40), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("customer_email", sa.String(320)),
        sa.Column("customer_name", sa.String(200)),
        sa.Column("return_url", sa.Text),
        sa.Column("callback_url", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("refund_reference", sa.String(40)),
        _timestamp("created_at"),
        _timestamp("completed_at", nullable=True),
        _timestamp("refunded_at", nullable=True),
        sa.PrimaryKeyConstraint("tx_ref", name="pk_simulated_provider_transactions"),
        sa.UniqueConstraint("reference", name="uq_simulated_provider_transactions_reference"),
        sa.CheckConstraint(STATUSES, name="ck_simulated_provider_transactions_status_known"),
    )


def downgrade() -> None:
    op.drop_table("simulated_provider_transactions")
    op.drop_table("refunds")
    op.drop_table("payments")
