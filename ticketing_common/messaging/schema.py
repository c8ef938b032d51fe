"""The outbox and inbox tables every service database carries.

They live in each service's own database (a service never reads another's tables) and are
created by each service's ``0002_messaging`` migration through :func:`create_messaging_tables`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from ticketing_common.db import service_metadata

messaging_metadata = service_metadata()

outbox_messages = sa.Table(
    "outbox_messages",
    messaging_metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("message_id", UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("routing_key", sa.String(100), nullable=False),
    sa.Column("envelope", JSONB, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "available_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index(
        "ix_outbox_messages_unpublished", "id", postgresql_where=sa.text("published_at IS NULL")
    ),
)

inbox_messages = sa.Table(
    "inbox_messages",
    messaging_metadata,
    sa.Column("message_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("consumer", sa.String(200), primary_key=True),
    sa.Column("routing_key", sa.String(100), nullable=False),
    sa.Column(
        "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

MESSAGING_TABLES = ("outbox_messages", "inbox_messages")


def create_messaging_tables() -> None:
    """Alembic operation: create the outbox and inbox tables (and their indexes)."""
    bind = op.get_bind()
    messaging_metadata.create_all(bind)


def drop_messaging_tables() -> None:
    bind = op.get_bind()
    messaging_metadata.drop_all(bind)
