"""``/api/auth/admin``: organizer approval, roles, users and the audit log (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import FileResponse

from auth_service.api.deps import AuthServiceDep
from auth_service.documents import document_path
from auth_service.models import UserStatus
from auth_service.schemas import (
    AdminActionResponse,
    AdminUserOut,
    AuditLogOut,
    MessageResponse,
    PromoteRequest,
    RejectRequest,
    UserIdRequest,
)
from auth_service.service import AdminOutcome
from ticketing_common.app import error_responses
from ticketing_common.pagination import PageDep
from ticketing_common.security import AdminUser, Role

router = APIRouter(prefix="/api/auth/admin", tags=["admin"])

# The lists answer bare arrays, whole (up to 1,000 rows) without ``limit``, as the
# original's; ``limit``/``offset`` page them and X-Total-Count holds the total.

UserIdPath = Annotated[int, Path(gt=0, lt=2**63)]
_NO_NUL = r"^[^\x00]*$"


def _action(outcome: AdminOutcome) -> AdminActionResponse:
    return AdminActionResponse(
        message=outcome.message, user=AdminUserOut.model_validate(outcome.user)
    )


@router.post("/promote", response_model=AdminActionResponse, responses=error_responses(404, 409))
async def promote(
    body: PromoteRequest, admin: AdminUser, auth: AuthServiceDep
) -> AdminActionResponse:
    """Make the user an approved ``organizer`` (the default, as the original), or an
    ``admin`` with ``{user_id, role: "admin"}``."""
    return _action(await auth.promote(admin, body))


@router.post("/approve", response_model=AdminActionResponse, responses=error_responses(404, 409))
async def approve(
    body: UserIdRequest, admin: AdminUser, auth: AuthServiceDep
) -> AdminActionResponse:
    return _action(await auth.approve(admin, body.user_id))


@router.post("/reject", response_model=AdminActionResponse, responses=error_responses(404, 409))
async def reject(
    body: RejectRequest, admin: AdminUser, auth: AuthServiceDep
) -> AdminActionResponse:
    return _action(await auth.reject(admin, body))


@router.get("/organizers/pending", response_model=list[AdminUserOut])
async def pending_organizers(
    admin: AdminUser, auth: AuthServiceDep, page: PageDep, response: Response
) -> list[AdminUserOut]:
    """Organizers awaiting approval, oldest application first: a bare array, all of them
    without ``limit`` (up to 1000; ``X-Total-Count`` has the total)."""
    users, total = await auth.pending_organizers(page)
    page.answer_total(response, total)
    return [AdminUserOut.model_validate(u) for u in users]


@router.get(
    "/organizers/{user_id}/document",
    response_class=FileResponse,
    responses={
        200: {"description": "the document as uploaded (PDF, PNG or JPEG)"},
        **error_responses(404, 409),
    },
)
async def organizer_document(
    user_id: UserIdPath, admin: AdminUser, auth: AuthServiceDep
) -> FileResponse:
    """The document an organizer registered with, under its generated name."""
    user = await auth.organizer_document(user_id)
    assert user.document_name is not None
    return FileResponse(
        document_path(user.document_name, auth.settings),
        media_type=user.document_content_type,
        filename=f"organizer-{user.id}-{user.document_name}",
    )


@router.get("/users", response_model=list[AdminUserOut])
async def users(
    admin: AdminUser,
    auth: AuthServiceDep,
    page: PageDep,
    response: Response,
    role: Role | None = None,
    status: UserStatus | None = None,
) -> list[AdminUserOut]:
    """All accounts by id (deleted ones only with ``status=deleted``): a bare array, all of
    them without ``limit`` (up to 1000; ``X-Total-Count`` has the total)."""
    found, total = await auth.users(page, role=role, status=status)
    page.answer_total(response, total)
    return [AdminUserOut.model_validate(u) for u in found]


@router.delete("/users", response_model=MessageResponse, responses=error_responses(404, 409))
async def delete_user(
    body: UserIdRequest, admin: AdminUser, auth: AuthServiceDep
) -> MessageResponse:
    """Soft delete: the account can no longer log in and its tokens stop working."""
    await auth.delete_user(admin, body.user_id)
    return MessageResponse(message="user deleted")


@router.delete(
    "/users/{user_id}", response_model=MessageResponse, responses=error_responses(404, 409)
)
async def delete_user_by_path(
    user_id: UserIdPath, admin: AdminUser, auth: AuthServiceDep
) -> MessageResponse:
    await auth.delete_user(admin, user_id)
    return MessageResponse(message="user deleted")


@router.get("/audit-logs", response_model=list[AuditLogOut])
async def audit_logs(
    admin: AdminUser,
    auth: AuthServiceDep,
    page: PageDep,
    response: Response,
    action: Annotated[str | None, Query(max_length=100, pattern=_NO_NUL)] = None,
    user_id: Annotated[int | None, Query(gt=0, lt=2**63)] = None,
    service: Annotated[str | None, Query(max_length=50, pattern=_NO_NUL)] = None,
) -> list[AuditLogOut]:
    """Newest first, a bare array (up to 1000 without ``limit``); ``user_id`` matches
    entries by that user or about that user;
    ``action`` takes the original's names (``APPROVE_ORGANIZER``) or the port's earlier
    ones (``organizer_approved``)."""
    entries, total = await auth.audit_logs(page, action=action, user_id=user_id, service=service)
    page.answer_total(response, total)
    return [AuditLogOut.of(e) for e in entries]
