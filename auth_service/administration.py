"""Administration: promoting, approving, rejecting and deleting accounts, the lists and
the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.sql import Select

from auth_service.audit import (
    APPROVE_ORGANIZER,
    DELETE_USER,
    REJECT_ORGANIZER,
    action_name,
    audit_entry,
)
from auth_service.context import AdminOutcome, AuthContext
from auth_service.models import AuditLog, User, UserStatus
from auth_service.schemas import (
    PromoteRequest,
    RejectRequest,
)
from ticketing_common.db import utcnow
from ticketing_common.errors import Conflict, NotFound
from ticketing_common.pagination import Page
from ticketing_common.security import Principal, Role


class Administration(AuthContext):
    # --- administration -----------------------------------------------------------------

    async def promote(self, admin: Principal, body: PromoteRequest) -> AdminOutcome:
        """Make the user an approved organizer (the original's promote), or an admin when
        ``role`` says so. The original's message either way, also when nothing changes."""
        message = f"User promoted to {body.role.capitalize()}"
        user = await self._target(body.user_id)
        if user.role == body.role and user.status == UserStatus.ACTIVE:
            return AdminOutcome(message, user)
        if user.role == Role.ADMIN:
            raise Conflict("an admin cannot be demoted")
        previous = {"from": user.role, "status": user.status}
        user.role = body.role
        user.status = UserStatus.ACTIVE
        user.rejection_reason = None
        await self.tokens.revoke_user_tokens(user.id, sessions=False)
        self._audit_admin(admin, "user_promoted", user, {**previous, "to": body.role})
        return AdminOutcome(message, user)

    async def approve(self, admin: Principal, user_id: int) -> AdminOutcome:
        user = await self._target_organizer(user_id)
        if user.status == UserStatus.ACTIVE:
            return AdminOutcome("organizer is already approved", user)
        user.status = UserStatus.ACTIVE
        user.rejection_reason = None
        self._audit_admin(admin, APPROVE_ORGANIZER, user)
        return AdminOutcome("organizer approved", user)

    async def reject(self, admin: Principal, body: RejectRequest) -> AdminOutcome:
        user = await self._target_organizer(body.user_id)
        if user.status == UserStatus.REJECTED:
            return AdminOutcome("organizer is already rejected", user)
        if user.status == UserStatus.ACTIVE:
            raise Conflict("organizer is already approved")
        user.status = UserStatus.REJECTED
        user.rejection_reason = body.reason
        self._audit_admin(admin, REJECT_ORGANIZER, user, {"reason": body.reason})
        return AdminOutcome("organizer rejected", user)

    async def delete_user(self, admin: Principal, user_id: int) -> None:
        """Soft delete: the row stays for history, the address becomes free, tokens die."""
        if user_id == admin.user_id:
            raise Conflict("you cannot delete your own account")
        user = await self._target(user_id)
        user.status = UserStatus.DELETED
        user.deleted_at = utcnow()
        await self.tokens.revoke_user_tokens(user.id, sessions=True)
        self._audit_admin(admin, DELETE_USER, user, {"email": user.email, "role": user.role})

    async def pending_organizers(self, page: Page) -> tuple[list[User], int]:
        query = select(User).where(
            User.role == Role.ORGANIZER,
            User.status == UserStatus.PENDING,
            User.deleted_at.is_(None),
        )
        return await self._page(query.order_by(User.id), page)

    async def users(
        self, page: Page, role: Role | None = None, status: UserStatus | None = None
    ) -> tuple[list[User], int]:
        query = select(User)
        if status is None:
            query = query.where(User.deleted_at.is_(None))
        else:
            query = query.where(User.status == status)
        if role is not None:
            query = query.where(User.role == role)
        return await self._page(query.order_by(User.id), page)

    async def audit_logs(
        self,
        page: Page,
        action: str | None = None,
        user_id: int | None = None,
        service: str | None = None,
    ) -> tuple[list[AuditLog], int]:
        query = select(AuditLog)
        if action is not None:
            query = query.where(AuditLog.action == action_name(action))
        if service is not None:
            query = query.where(AuditLog.service == service)
        if user_id is not None:
            query = query.where(
                or_(
                    AuditLog.actor_user_id == user_id,
                    and_(AuditLog.target_type == "user", AuditLog.target_id == str(user_id)),
                )
            )
        return await self._page(query.order_by(AuditLog.id.desc()), page)

    async def organizer_document(self, user_id: int) -> User:
        user = await self._target_organizer(user_id)
        if user.document_name is None:
            raise NotFound("this organizer has no document")
        return user

    async def _page(self, query: Select[Any], page: Page) -> tuple[list[Any], int]:
        total = await self.session.scalar(select(func.count()).select_from(query.subquery()))
        rows = await self.session.scalars(query.limit(page.limit).offset(page.offset))
        return list(rows), int(total or 0)

    async def _target(self, user_id: int) -> User:
        user = await self.session.get(User, user_id, with_for_update=True)
        if user is None or user.status == UserStatus.DELETED:
            raise NotFound("user not found")
        return user

    async def _target_organizer(self, user_id: int) -> User:
        user = await self._target(user_id)
        if user.role != Role.ORGANIZER:
            raise Conflict("user is not an organizer")
        return user

    def _audit_admin(
        self, admin: Principal, action: str, user: User, details: dict[str, Any] | None = None
    ) -> None:
        self.session.add(
            audit_entry(
                action,
                actor_user_id=admin.user_id,
                target_user_id=user.id,
                ip=self.ip,
                details=details,
            )
        )
