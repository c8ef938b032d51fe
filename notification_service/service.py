"""Notification rules: deliver each email once, keep a log of it, serve tickets.

Delivery of one notification (one email owed because of one message):

1. *claim* it: its row, unique per ``(message_id, type)``, is created on first sight
   already claimed (``sending``, attempt 1, a lease), or a known row is claimed if it is
   free (``sending``, attempts + 1, a lease); one statement committed on its own, so two
   deliveries of the same message can never send at once, and a replica that died
   mid-send only blocks it until the lease runs out;
2. gather the details, render and send;
3. ``sent`` right after the server's 250, committed at once, again on its own;
   a redelivered message then finds it sent and does nothing. A failed try is recorded
   (``retrying`` with the error) and raised so the messaging layer retries with back-off;
   once the budget is spent, or the server refused the message for good, it is ``failed``
   and the message is dead-lettered.

These state changes commit on their own (:mod:`notification_service.delivery_log`) rather
than in the consumer's inbox transaction because a failed try must stay recorded although
that transaction rolls back.

Known window: if the process dies after the SMTP server accepted the message but before
step 3 committed, the next try sends it again. The Message-ID header is derived from the
message id and type, so the copies are the same message to any mail system that dedups.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from notification_service import delivery_log, emails, metrics
from notification_service.delivery_log import ClaimedTry
from notification_service.details import (
    Lookups,
    booking_ticket,
    cancelled_event_title,
    confirmed_ticket,
    recipient,
)
from notification_service.emails import RenderedEmail
from notification_service.errors import (
    DeliveryAbandoned,
    DeliveryRetry,
    NotTheTicketHolder,
    TicketNotIssued,
)
from notification_service.mailer import Mailer, MailRejected, build_message, sender_domain
from notification_service.models import Notification, NotificationStatus, NotificationType
from notification_service.settings import NotificationSettings
from notification_service.ticket_store import TicketStore
from ticketing_common.messaging import MessagingSettings
from ticketing_common.messaging.contracts import (
    BookingCancelled,
    BookingConfirmed,
    BookingEventChanged,
    PaymentRefunded,
    RefundRequested,
    WaitlistOffered,
)
from ticketing_common.security import Principal

logger = logging.getLogger("notification.service")

_ERROR_LIMIT = 2000
_SUBJECT_LIMIT = 300
#: what a lost or restarting database raises on the notifier's pool
_DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    recipient: str
    email: RenderedEmail


Compose = Callable[[], Awaitable[OutgoingEmail]]


@dataclass(frozen=True, slots=True)
class NotificationKey:
    message_id: uuid.UUID
    type: NotificationType
    user_id: int | None = None
    booking_id: int | None = None


@dataclass(frozen=True, slots=True)
class Notifier:
    """What delivering needs: a pool of its own (see ``app.py``), the mailer, the settings.

    A try owns its notification for ``NOTIFICATION_LEASE_SECONDS``. A live try keeps its
    message unacked, so the broker redelivers it only after a crash or a lost connection;
    the lease then decides when a redelivery may take over.
    """

    pg: asyncpg.Pool
    mailer: Mailer
    settings: NotificationSettings
    messaging: MessagingSettings


def email_message_id(key: NotificationKey, settings: NotificationSettings) -> str:
    """Deterministic per notification, so downstream systems can spot a duplicate."""
    return f"<{key.type.value}.{key.message_id}@{sender_domain(settings)}>"


async def _claim(notifier: Notifier, key: NotificationKey) -> ClaimedTry | None:
    """Create the row if new and take it for one try; ``None`` if it needs no try now."""
    claimed = await delivery_log.claim(
        notifier.pg,
        message_id=key.message_id,
        type_=key.type.value,
        user_id=key.user_id,
        booking_id=key.booking_id,
        lease_seconds=notifier.settings.delivery_lease_seconds,
    )
    if claimed is not None:
        return claimed
    status = await delivery_log.status_of(
        notifier.pg, message_id=key.message_id, type_=key.type.value
    )
    if status is None or status == NotificationStatus.SENDING:
        raise DeliveryRetry("another delivery of this notification is in progress")
    logger.info(
        "notification already %s; nothing to do",
        status,
        extra={"message_id": str(key.message_id), "type": key.type.value},
    )
    return None


async def deliver(
    notifier: Notifier, key: NotificationKey, compose: Compose, *, last_try: bool
) -> None:
    """Send the email owed for ``key`` unless it already went out (see module docstring).

    Raises :class:`DeliveryRetry` for a try worth repeating later and
    :class:`DeliveryAbandoned` once the notification is marked failed (``last_try`` says
    the messaging layer will not deliver the message again).
    """
    claimed = await _claim(notifier, key)
    if claimed is None:
        return
    message_id = email_message_id(key, notifier.settings)
    outgoing: OutgoingEmail | None = None
    try:
        outgoing = await compose()
        await notifier.mailer.send(
            build_message(
                notifier.settings,
                recipient=outgoing.recipient,
                email=outgoing.email,
                message_id=message_id,
            )
        )
    except asyncio.CancelledError:
        # Timed out or shutting down: free the notification for the redelivery at once.
        await asyncio.shield(
            delivery_log.mark_try_failed(
                notifier.pg,
                claimed,
                status=NotificationStatus.RETRYING,
                error="the try was interrupted",
            )
        )
        raise
    except Exception as exc:
        raise await _record_failure(notifier, claimed, key, exc, outgoing, last_try) from exc
    await _record_sent(notifier, claimed.notification_id, message_id, outgoing)
    metrics.EMAILS.labels(key.type.value, "sent").inc()
    logger.info(
        "email sent",
        extra={
            "notification_id": claimed.notification_id,
            "type": key.type.value,
            "recipient": outgoing.recipient,
            "subject": outgoing.email.subject,
        },
    )


async def _record_sent(
    notifier: Notifier, notification_id: int, message_id: str, outgoing: OutgoingEmail
) -> None:
    """Record the accepted email, retrying through a database outage (a restart).

    The mail server already has the email: raising here would let a redelivery send it
    again, so the record is retried in-process for a bounded time first.
    """
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(_DATABASE_ERRORS),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(notifier.settings.record_sent_patience_seconds),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            await delivery_log.mark_sent(
                notifier.pg,
                notification_id,
                email_message_id=message_id,
                recipient=outgoing.recipient,
                subject=_subject(outgoing),
            )


def _subject(outgoing: OutgoingEmail) -> str:
    return outgoing.email.subject[:_SUBJECT_LIMIT]


async def _record_failure(
    notifier: Notifier,
    claimed: ClaimedTry,
    key: NotificationKey,
    exc: Exception,
    outgoing: OutgoingEmail | None,
    last_try: bool,
) -> Exception:
    """Record a failed try; return the error to raise (retry, or abandoned)."""
    error = f"{type(exc).__name__}: {exc}"[:_ERROR_LIMIT]
    give_up = last_try or isinstance(exc, MailRejected)
    recorded = await delivery_log.mark_try_failed(
        notifier.pg,
        claimed,
        status=NotificationStatus.FAILED if give_up else NotificationStatus.RETRYING,
        error=error,
        recipient=outgoing.recipient if outgoing else None,
        subject=_subject(outgoing) if outgoing else None,
    )
    metrics.EMAILS.labels(key.type.value, "failed" if give_up else "retry").inc()
    log_extra = {
        "notification_id": claimed.notification_id,
        "type": key.type.value,
        "attempts": claimed.attempt,
        "error": error,
    }
    if not recorded:
        logger.warning("try outlived its lease; a later try owns the notification", extra=log_extra)
    if give_up:
        logger.error("notification failed for good", extra=log_extra)
        return DeliveryAbandoned(f"notification {claimed.notification_id} failed: {error}")
    logger.warning("notification try failed; will retry", extra=log_extra)
    return DeliveryRetry(f"notification {claimed.notification_id} not sent yet: {error}")


# -- what each message turns into ---------------------------------------------------------


async def ticket_email_for(
    lookups: Lookups, tickets: TicketStore, confirmed: BookingConfirmed
) -> OutgoingEmail:
    """The ticket email; a v2 message has all it prints, so no other service is asked."""
    to = await recipient(lookups, confirmed.user_id, confirmed.buyer_email)
    details = await confirmed_ticket(lookups, confirmed)
    return OutgoingEmail(to, emails.ticket_email(details, await tickets.issue(details)))


async def cancellation_email_for(lookups: Lookups, cancelled: BookingCancelled) -> OutgoingEmail:
    to = await recipient(lookups, cancelled.user_id, cancelled.buyer_email)
    return OutgoingEmail(
        to,
        emails.cancellation_email(
            booking_id=cancelled.booking_id,
            event_title=await cancelled_event_title(lookups, cancelled),
            seat_ids=cancelled.seat_ids,
            reason=cancelled.reason,
            refund_requested=cancelled.refund_requested,
        ),
    )


async def event_changed_email_for(lookups: Lookups, changed: BookingEventChanged) -> OutgoingEmail:
    return OutgoingEmail(
        await recipient(lookups, changed.user_id, changed.buyer_email),
        emails.event_changed_email(
            booking_id=changed.booking_id,
            event_title=changed.event_title,
            status=changed.status,
            old_date=changed.old_date,
            new_date=changed.new_date,
            old_venue=changed.old_venue,
            new_venue=changed.new_venue,
        ),
    )


async def waitlist_offer_email_for(lookups: Lookups, offer: WaitlistOffered) -> OutgoingEmail:
    return OutgoingEmail(
        await recipient(lookups, offer.user_id, offer.buyer_email),
        emails.waitlist_offer_email(
            booking_id=offer.booking_id,
            event_title=offer.event_title,
            event_starts_at=offer.event_starts_at,
            venue=offer.venue,
            seat_ids=offer.seat_ids,
            amount=offer.total_amount,
            currency=offer.currency,
            expires_at=offer.expires_at,
            pay_url=offer.pay_url,
        ),
    )


async def refund_requested_email_for(lookups: Lookups, refund: RefundRequested) -> OutgoingEmail:
    """Rare (a payment that came too late), so its address is still looked up."""
    return OutgoingEmail(
        await recipient(lookups, refund.user_id),
        emails.refund_requested_email(
            booking_id=refund.booking_id,
            amount=refund.amount,
            currency=refund.currency,
        ),
    )


async def refund_processed_email_for(lookups: Lookups, refunded: PaymentRefunded) -> OutgoingEmail:
    return OutgoingEmail(
        await recipient(lookups, refunded.user_id),
        emails.refund_processed_email(
            booking_id=refunded.booking_id,
            amount=refunded.amount,
            currency=refunded.currency,
        ),
    )


# -- what the API serves --------------------------------------------------------------------


async def ticket_pdf(
    lookups: Lookups, tickets: TicketStore, principal: Principal, booking_id: int
) -> bytes:
    """The ticket of a confirmed booking, for its owner or an admin.

    booking_service is asked at every download, stored ticket or not: it alone knows
    whether the booking is still confirmed (one cancelled after its email must not serve
    a valid-looking ticket). 404 before 403 before 409, so a stranger learns nothing
    about another's booking.
    """
    booking = await lookups.bookings.booking(booking_id)
    if booking.user_id != principal.user_id and not principal.is_admin:
        raise NotTheTicketHolder("only the booking's owner or an admin can download its ticket")
    if booking.status != "confirmed":
        raise TicketNotIssued(
            f"booking {booking_id} is {booking.status}; a ticket exists only once it is confirmed",
            details={"status": booking.status},
        )
    pdf = await tickets.stored(booking_id)
    if pdf is None:  # confirmed before tickets were kept, or its email not composed yet
        pdf = await tickets.issue(await booking_ticket(lookups, booking))
    return pdf


async def list_notifications(
    session: AsyncSession, principal: Principal, *, limit: int, offset: int
) -> tuple[list[Notification], int]:
    """The caller's own notifications, newest first, with the total for the header."""
    mine = Notification.user_id == principal.user_id
    total = (await session.execute(select(func.count()).where(mine))).scalar_one()
    rows = await session.execute(
        select(Notification)
        .where(mine)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.scalars()), total
