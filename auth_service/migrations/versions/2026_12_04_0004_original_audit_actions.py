"""audit_logs: the original's action names (APPROVE_ORGANIZER, ...) for the actions it had

Revision ID: auth_0004
Revises: auth_0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "auth_0004"
down_revision = "auth_0003"
branch_labels = None
depends_on = None

# Written out rather than imported: a migration keeps the names it was written with.
RENAMED = {
    "organizer_approved": "APPROVE_ORGANIZER",
    "organizer_rejected": "REJECT_ORGANIZER",
    "organizer_reapplied": "REAPPLY_ORGANIZER",
    "user_deleted": "DELETE_USER",
    "event_created": "CREATE_EVENT",
    "booking_created": "CREATE_BOOKING",
    "booking_confirmed": "CONFIRM_BOOKING",
    "booking_cancelled": "CANCEL_BOOKING",
}

_RENAME = sa.text("UPDATE audit_logs SET action = :new WHERE action = :old")


def upgrade() -> None:
    for old, new in RENAMED.items():
        op.execute(_RENAME.bindparams(old=old, new=new))


def downgrade() -> None:
    for old, new in RENAMED.items():
        op.execute(_RENAME.bindparams(old=new, new=old))
