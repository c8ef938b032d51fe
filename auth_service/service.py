"""Accounts, sessions and administration: the rules of auth_service.

Routes build an :class:`AuthService` per request and call one method. The request's
session commits after the route returns; events (verification and reset emails) go
through the outbox in that same transaction. Redis holds what every replica must see at
once: refresh-token families, revocations and throttling counters.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts import Accounts
from auth_service.administration import Administration
from auth_service.audit import audit_entry
from auth_service.context import AdminOutcome, VerifyOutcome
from auth_service.models import User, UserStatus
from auth_service.passwords import PasswordHasher
from auth_service.sessions import Sessions
from auth_service.settings import AuthSettings
from ticketing_common.db import utcnow
from ticketing_common.security import Role

logger = logging.getLogger("auth_service.service")

__all__ = ["AdminOutcome", "AuthService", "VerifyOutcome", "ensure_admin"]


class AuthService(Accounts, Sessions, Administration):
    """One per request: every rule of auth_service on the request's session."""


async def ensure_admin(
    session: AsyncSession, settings: AuthSettings, passwords: PasswordHasher
) -> None:
    """Create the admin from ``ADMIN_EMAIL``/``ADMIN_PASSWORD`` unless it exists already.

    Safe to run on every start and from several replicas at once (``ON CONFLICT``). An
    existing admin keeps its password (it may have been changed); an existing non-admin
    account with that address is left alone and reported, never silently promoted.
    """
    email = settings.admin_email.strip().lower()
    existing = await session.scalar(
        select(User).where(User.email == email, User.deleted_at.is_(None))
    )
    if existing is not None:
        if existing.role != Role.ADMIN:
            logger.warning("ADMIN_EMAIL belongs to a %s account; no admin seeded", existing.role)
        return
    inserted = await session.scalar(
        pg_insert(User)
        .values(
            email=email,
            password_hash=await passwords.hash(settings.admin_password),
            role=Role.ADMIN,
            status=UserStatus.ACTIVE,
            is_verified=True,
            verified_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[User.email], index_where=User.deleted_at.is_(None))
        .returning(User.id)
    )
    if inserted is not None:
        session.add(audit_entry("admin_seeded", target_user_id=inserted))
        logger.info("admin account seeded", extra={"user_id": inserted})
