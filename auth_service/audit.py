"""The audit log: admin actions and security events, from this and every other service.

Entries about a change are added to the request's own transaction, so the log says
exactly what was committed. Refusals (a wrong password, a reused refresh token) roll the
request back, so :func:`record_refusal` writes them in a short transaction of their own.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.models import AuditLog

SERVICE_NAME = "auth_service"

# Actions the original logged keep its names; the port's other actions keep theirs
# (``user_registered``, ``login_failed``, ...).
APPROVE_ORGANIZER = "APPROVE_ORGANIZER"
REJECT_ORGANIZER = "REJECT_ORGANIZER"
REAPPLY_ORGANIZER = "REAPPLY_ORGANIZER"
DELETE_USER = "DELETE_USER"

#: the port's earlier names for the original's actions, as other services may still publish
#: them (and as ``?action=`` may still ask for them)
ORIGINAL_ACTION_NAMES = {
    "organizer_approved": APPROVE_ORGANIZER,
    "organizer_rejected": REJECT_ORGANIZER,
    "organizer_reapplied": REAPPLY_ORGANIZER,
    "user_deleted": DELETE_USER,
    "event_created": "CREATE_EVENT",
    "booking_created": "CREATE_BOOKING",
    "booking_confirmed": "CONFIRM_BOOKING",
    "booking_cancelled": "CANCEL_BOOKING",
}


def action_name(action: str) -> str:
    """The name the audit log keeps for ``action``: the original's, where it had one."""
    return ORIGINAL_ACTION_NAMES.get(action, action)


logger = logging.getLogger(__name__)


def audit_entry(
    action: str,
    *,
    actor_user_id: int | None = None,
    target_user_id: int | None = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    return AuditLog(
        action=action,
        service=SERVICE_NAME,
        actor_user_id=actor_user_id,
        target_type="user" if target_user_id is not None else None,
        target_id=str(target_user_id) if target_user_id is not None else None,
        ip=ip,
        details=details or {},
    )


async def record_refusal(sessionmaker: async_sessionmaker[AsyncSession], entry: AuditLog) -> None:
    """Commit a security event independently of the (failing) request transaction."""
    try:
        async with sessionmaker() as session, session.begin():
            session.add(entry)
    except Exception:
        # The refusal itself must still reach the caller; losing its audit line is logged.
        logger.exception("could not record audit event %s", entry.action)
