"""auth_service's message handlers: other services' audit events land in its audit log."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert

from auth_service.audit import action_name
from auth_service.models import AuditLog
from ticketing_common.messaging import MessageContext, Subscription
from ticketing_common.messaging.contracts import AuditLog as AuditLogEvent


async def on_audit_log(ctx: MessageContext, payload: AuditLogEvent) -> None:
    """Store the event once, whatever the redeliveries (inbox, and a unique message id),
    under the original's name for its action where it had one."""
    await ctx.session.execute(
        pg_insert(AuditLog)
        .values(
            action=action_name(payload.action),
            service=payload.service[:50],
            actor_user_id=payload.actor_user_id,
            target_type=payload.target_type,
            target_id=payload.target_id,
            ip=payload.ip,
            details=payload.details,
            message_id=ctx.envelope.message_id,
            created_at=ctx.envelope.occurred_at,
        )
        .on_conflict_do_nothing(index_elements=[AuditLog.message_id])
    )


SUBSCRIPTIONS = [Subscription("audit_logs", on_audit_log)]
