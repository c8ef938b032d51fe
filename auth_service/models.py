"""auth_service tables (its own database: auth_db)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ticketing_common.db import TYPE_ANNOTATION_MAP, TimestampMixin, service_metadata, utcnow


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map: ClassVar[dict[Any, Any]] = TYPE_ANNOTATION_MAP


class UserStatus(StrEnum):
    """``active`` may log in; an organizer is ``pending`` until an admin approves it."""

    ACTIVE = "active"
    PENDING = "pending"
    REJECTED = "rejected"
    DELETED = "deleted"


class CodePurpose(StrEnum):
    EMAIL_VERIFICATION = "email_verification"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a code purpose, not a secret


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'organizer', 'admin')", name="role"),
        CheckConstraint("status IN ('active', 'pending', 'rejected', 'deleted')", name="status"),
        # A deleted (soft) account frees its address for a new registration.
        Index("uq_users_email_live", "email", unique=True, postgresql_where="deleted_at IS NULL"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    is_verified: Mapped[bool] = mapped_column(default=False)
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
    document_name: Mapped[str | None] = mapped_column(String(100), default=None)
    document_content_type: Mapped[str | None] = mapped_column(String(50), default=None)
    rejection_reason: Mapped[str | None] = mapped_column(Text, default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def has_document(self) -> bool:
        return self.document_name is not None

    @property
    def approval_status(self) -> str:
        """The original's word for ``status``: an active account is ``approved``."""
        return "approved" if self.status == UserStatus.ACTIVE else self.status

    @property
    def document_path(self) -> str:
        """Where an admin reads the organizer's document (the original's field held a
        file path on its server); ``""`` without a document, as the original's."""
        if self.document_name is None:
            return ""
        return f"/api/auth/admin/organizers/{self.id}/document"


class VerificationCode(Base):
    """A one-time code sent by email, stored only as a keyed hash."""

    __tablename__ = "verification_codes"
    __table_args__ = (
        CheckConstraint("purpose IN ('email_verification', 'password_reset')", name="purpose"),
        Index("ix_verification_codes_user_purpose", "user_id", "purpose"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(30))
    code_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    """Admin actions and security events of every service, newest read first."""

    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("ix_audit_logs_created_at", "created_at"),
        Index("ix_audit_logs_action", "action"),
        Index("ix_audit_logs_actor_user_id", "actor_user_id"),
        Index("ix_audit_logs_target", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    action: Mapped[str] = mapped_column(String(100))
    service: Mapped[str] = mapped_column(String(50))
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    target_type: Mapped[str | None] = mapped_column(String(50), default=None)
    target_id: Mapped[str | None] = mapped_column(String(100), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    #: the consumed message it came from (null for auth_service's own entries)
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), unique=True, default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
