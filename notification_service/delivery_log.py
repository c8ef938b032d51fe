"""The ``notifications`` rows as deliveries move them: one statement per state change.

Each statement commits on its own on the notifier's raw asyncpg pool, so a state change
is one round trip. Through a SQLAlchemy session each also cost a BEGIN and a COMMIT, and
the ORM's statement building cost more CPU than the email around it.

A claim inserts a new row already claimed, or claims a known one if it is free: in one
statement, so two deliveries of one message cannot both claim it (the unique key makes
the second wait for the first, then find it taken). A try's record of its own failure is
fenced by its attempt number: once another try has taken the notification over (the
lease ran out), the old try no longer writes over what the new one did. Only ``sent`` is
always recorded: the mail server has the email, whichever try handed it over.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from notification_service.models import NotificationStatus

_CLAIM = """
INSERT INTO notifications AS n (message_id, type, user_id, booking_id, status, attempts,
                                lease_until, created_at, updated_at)
VALUES ($1, $2, $3, $4, 'sending', 1, now() + make_interval(secs => $5), now(), now())
ON CONFLICT ON CONSTRAINT uq_notifications_message_id_type DO UPDATE
SET status = 'sending', attempts = n.attempts + 1,
    lease_until = now() + make_interval(secs => $5), updated_at = now()
WHERE n.status IN ('pending', 'retrying') OR (n.status = 'sending' AND n.lease_until < now())
RETURNING id, attempts
"""

_STATUS = "SELECT status FROM notifications WHERE message_id = $1 AND type = $2"

_MARK_SENT = """
UPDATE notifications
SET status = 'sent', sent_at = now(), last_error = NULL, lease_until = NULL,
    email_message_id = $2, recipient = $3, subject = $4, updated_at = now()
WHERE id = $1
"""

_MARK_TRY_FAILED = """
UPDATE notifications
SET status = $3, last_error = $4, lease_until = NULL,
    recipient = coalesce($5, recipient), subject = coalesce($6, subject), updated_at = now()
WHERE id = $1 AND attempts = $2 AND status = 'sending'
"""


@dataclass(frozen=True, slots=True)
class ClaimedTry:
    """A try that owns its notification until its lease runs out."""

    notification_id: int
    attempt: int  # 1 for the first try


async def claim(
    pg: asyncpg.Pool,
    *,
    message_id: uuid.UUID,
    type_: str,
    user_id: int | None,
    booking_id: int | None,
    lease_seconds: float,
) -> ClaimedTry | None:
    """Create the row claimed, or claim the known one; ``None`` if it is not free."""
    row = await pg.fetchrow(_CLAIM, message_id, type_, user_id, booking_id, lease_seconds)
    return None if row is None else ClaimedTry(row["id"], row["attempts"])


async def status_of(pg: asyncpg.Pool, *, message_id: uuid.UUID, type_: str) -> str | None:
    status: str | None = await pg.fetchval(_STATUS, message_id, type_)
    return status


async def mark_sent(
    pg: asyncpg.Pool, notification_id: int, *, email_message_id: str, recipient: str, subject: str
) -> None:
    await pg.execute(_MARK_SENT, notification_id, email_message_id, recipient, subject)


async def mark_try_failed(
    pg: asyncpg.Pool,
    claimed: ClaimedTry,
    *,
    status: NotificationStatus,
    error: str,
    recipient: str | None = None,
    subject: str | None = None,
) -> bool:
    """Record how this try ended (``retrying`` or ``failed``) unless another took over."""
    done: str = await pg.execute(
        _MARK_TRY_FAILED,
        claimed.notification_id,
        claimed.attempt,
        status.value,
        error,
        recipient,
        subject,
    )
    return done == "UPDATE 1"
