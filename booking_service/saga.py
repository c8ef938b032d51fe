"""The booking saga (DESIGN §7) after a booking exists: confirm on payment, expire,
cancel (reading bookings is :mod:`booking_service.reads`).

Creating a booking is :mod:`booking_service.create`. Every change that other services
must learn about is written to the outbox in the same transaction; holds are also released
directly, at once, as a courtesy to the next buyer, and the outbox message (or the hold's
TTL) releases them if that call fails.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from decimal import Decimal
from typing import Literal

import orjson
from sqlalchemy import Select, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from booking_service import metrics
from booking_service.errors import BookingNotCancellable, BookingNotFound, EventStarted
from booking_service.models import (
    ACTIVE_STATUSES,
    Booking,
    BookingStatus,
    BuyerQuota,
    RefundRequest,
)
from booking_service.resources import release_hold_quietly
from ticketing_common.db import driver_connection, release_connection, utcnow
from ticketing_common.errors import Forbidden
from ticketing_common.internal.clients import EventsApi
from ticketing_common.internal.errors import BookingReleased, EventNotFound, HoldExpired
from ticketing_common.messaging import PermanentFailure, publish
from ticketing_common.messaging.contracts import (
    AuditLog,
    BookedSeat,
    BookingCancelled,
    BookingConfirmed,
    PaymentFailed,
    PaymentSucceeded,
    RefundRequested,
)
from ticketing_common.messaging.envelope import draft_envelope
from ticketing_common.messaging.outbox import NOTIFY_CHANNEL
from ticketing_common.security import Principal

logger = logging.getLogger("booking_service.saga")

CancelReason = Literal["expired", "cancelled", "payment_failed"]
RefundReason = Literal["booking_not_pending", "cancelled_by_user", "cancelled_by_admin"]


# --- leaving the pending state ---------------------------------------------------------


async def locked_bookings(
    session: AsyncSession, query: Select[Booking], *, skip_locked: bool = False
) -> list[Booking]:
    result = await session.scalars(
        query.with_for_update(of=Booking, skip_locked=skip_locked).execution_options(
            populate_existing=True
        )
    )
    return list(result)


async def _lock_booking(session: AsyncSession, booking_id: int) -> Booking | None:
    found = await locked_bookings(session, select(Booking).where(Booking.id == booking_id))
    return found[0] if found else None


async def _move(session: AsyncSession, booking: Booking, status: BookingStatus) -> None:
    """Change the booking's (and its seats') status, and its buyer's count for the event:
    a pending booking stops holding seats once it leaves pending, and a booking that ends
    (not paid, or cancelled after payment) gives its tickets back to the buyer's cap."""
    previous = BookingStatus(booking.status)
    booking.status = status
    for seat in booking.seats:
        seat.status = status
    seats = len(booking.seats)
    leaves_pending = previous is BookingStatus.PENDING and status is not BookingStatus.PENDING
    ends = previous in ACTIVE_STATUSES and status not in ACTIVE_STATUSES
    if not (leaves_pending or ends):
        return
    await session.execute(
        update(BuyerQuota)
        .where(BuyerQuota.event_id == booking.event_id, BuyerQuota.user_id == booking.user_id)
        .values(
            held_seats=BuyerQuota.held_seats - (seats if leaves_pending else 0),
            pending_bookings=BuyerQuota.pending_bookings - (1 if leaves_pending else 0),
            tickets=BuyerQuota.tickets - (seats if ends else 0),
        )
    )


async def _announce_cancellation(
    session: AsyncSession,
    booking: Booking,
    previous: BookingStatus,
    reason: CancelReason,
    *,
    refund_requested: bool = False,
) -> None:
    await publish(
        session,
        "booking_cancelled",
        BookingCancelled(
            booking_id=booking.id,
            user_id=booking.user_id,
            event_id=booking.event_id,
            hold_token=booking.hold_token,
            seat_ids=[seat.seat_id for seat in booking.seats],
            previous_status="confirmed" if previous is BookingStatus.CONFIRMED else "pending",
            reason=reason,
            refund_requested=refund_requested,
            event_title=booking.event_title,
            buyer_email=booking.buyer_email,
        ),
    )


async def close_pending(
    session: AsyncSession,
    events: EventsApi,
    booking: Booking,
    status: BookingStatus,
    *,
    reason: CancelReason,
) -> None:
    """pending → expired/cancelled/failed: seats go back on sale.

    The status change is flushed before the hold is released, so a buyer who grabs a
    freed seat waits on this row until this transaction commits instead of colliding.
    """
    await _move(session, booking, status)
    if status is BookingStatus.CANCELLED:
        booking.cancelled_at = utcnow()
    await _announce_cancellation(session, booking, BookingStatus.PENDING, reason)
    await session.flush()
    await release_hold_quietly(events, booking.event_id, booking.hold_token)
    metrics.count(status.value)


async def _request_refund(
    session: AsyncSession,
    *,
    booking_id: int,
    user_id: int,
    amount: Decimal,
    currency: str,
    tx_ref: str,
    reason: RefundReason,
) -> bool:
    """Ask for the payment ``tx_ref`` to be refunded, once however often we are told."""
    inserted = await session.scalar(
        insert(RefundRequest)
        .values(
            booking_id=booking_id,
            tx_ref=tx_ref,
            amount=amount,
            currency=currency,
            reason=reason,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[RefundRequest.tx_ref])
        .returning(RefundRequest.id)
    )
    if inserted is None:
        return False
    await publish(
        session,
        "refund_requested",
        RefundRequested(
            booking_id=booking_id,
            user_id=user_id,
            amount=amount,
            currency=currency,
            reason=reason,
            tx_ref=tx_ref,
        ),
    )
    metrics.count("refund_requested")
    return True


async def cancel_booking(
    session: AsyncSession,
    events: EventsApi,
    principal: Principal,
    booking_id: int,
    *,
    ip: str | None = None,
) -> tuple[Booking, bool]:
    """Cancel the caller's booking; returns it and whether a refund was requested.

    pending → cancelled, its hold released at once; confirmed → cancelled, its seats put
    back on sale by event_service and the payment refunded.
    """
    if not principal.is_admin:
        await _refuse_after_the_event_started(session, events, principal, booking_id)
    booking = await _lock_booking(session, booking_id)
    if booking is None:
        raise BookingNotFound()
    if booking.user_id != principal.user_id and not principal.is_admin:
        raise Forbidden("only the booking's owner may cancel it")
    previous = BookingStatus(booking.status)
    refunded = False
    if previous is BookingStatus.PENDING:
        await close_pending(session, events, booking, BookingStatus.CANCELLED, reason="cancelled")
    elif previous is BookingStatus.CONFIRMED:
        await _move(session, booking, BookingStatus.CANCELLED)
        booking.cancelled_at = utcnow()
        await _announce_cancellation(session, booking, previous, "cancelled", refund_requested=True)
        refunded = True
        if booking.payment_tx_ref is not None:
            await _request_refund(
                session,
                booking_id=booking.id,
                user_id=booking.user_id,
                amount=booking.total_amount,
                currency=booking.currency,
                tx_ref=booking.payment_tx_ref,
                reason="cancelled_by_user"
                if booking.user_id == principal.user_id
                else "cancelled_by_admin",
            )
        metrics.count("cancelled")
    else:
        raise BookingNotCancellable(f"booking is already {previous.value}")
    await publish(
        session,
        "audit_logs",
        AuditLog(
            action="booking_cancelled",
            service="booking_service",
            actor_user_id=principal.user_id,
            target_type="booking",
            target_id=str(booking.id),
            ip=ip,
            details={"previous_status": previous.value, "refund_requested": refunded},
        ),
    )
    await session.flush()
    return booking, refunded


async def _refuse_after_the_event_started(
    session: AsyncSession, events: EventsApi, principal: Principal, booking_id: int
) -> None:
    """A ticket for an event that has begun is used or forfeit: its buyer can't cancel it
    for a refund any more (an admin still can, e.g. when the event is called off).

    Only the owner learns that: anyone else gets the 404 or 403 first, so a stranger can't
    probe a booking's state."""
    row = (
        await session.execute(
            select(Booking.event_id, Booking.user_id, Booking.status).where(
                Booking.id == booking_id
            )
        )
    ).one_or_none()
    if row is None:
        raise BookingNotFound()
    found, owner, status = row
    if owner != principal.user_id:
        raise Forbidden("only the booking's owner may cancel it")
    if status != BookingStatus.CONFIRMED:
        return
    await release_connection(session)  # no pooled connection waits on event_service
    # Asked afresh: the organizer may have moved the event since the booking was made.
    event = await events.event(found)
    if event.date <= utcnow():
        raise EventStarted("the event has already started; its tickets can't be cancelled")


async def expire_stale_bookings(
    session: AsyncSession, events: EventsApi, *, batch_size: int
) -> int:
    """Expire one batch of pending bookings past ``expires_at``; safe in many replicas.

    ``SKIP LOCKED`` lets replicas split the work, and leaves alone a booking whose payment
    is being settled right now.
    """
    stale = await locked_bookings(
        session,
        select(Booking)
        .where(Booking.status == BookingStatus.PENDING, Booking.expires_at <= utcnow())
        .order_by(Booking.expires_at)
        .limit(batch_size),
        skip_locked=True,
    )
    for booking in stale:
        await _move(session, booking, BookingStatus.EXPIRED)
        await _announce_cancellation(session, booking, BookingStatus.PENDING, "expired")
    if stale:
        await session.flush()
        await asyncio.gather(
            *(release_hold_quietly(events, b.event_id, b.hold_token) for b in stale)
        )
        metrics.count("expired", len(stale))
    return len(stale)


# --- payment outcomes ------------------------------------------------------------------


# The settle's hot path on the consumer's own connection and transaction (the inbox row's):
# the ORM cost about nine round trips and most of booking_service's CPU per purchase.
_LOCK_FOR_SETTLE = """
SELECT b.id, b.user_id, b.event_id, b.status, b.total_amount, b.currency, b.hold_token,
       b.event_title, b.event_starts_at, b.venue, b.buyer_email,
       b.event_starts_at IS NOT NULL AND b.event_starts_at <= now() AS started,
       ARRAY(SELECT s.seat_id FROM booking_seats s WHERE s.booking_id = b.id ORDER BY s.id)
           AS seat_ids,
       ARRAY(SELECT s.ticket_class FROM booking_seats s WHERE s.booking_id = b.id
             ORDER BY s.id) AS ticket_classes,
       ARRAY(SELECT s."row" FROM booking_seats s WHERE s.booking_id = b.id ORDER BY s.id)
           AS seat_rows,
       ARRAY(SELECT s.number FROM booking_seats s WHERE s.booking_id = b.id ORDER BY s.id)
           AS seat_numbers,
       ARRAY(SELECT s.price FROM booking_seats s WHERE s.booking_id = b.id ORDER BY s.id)
           AS prices
FROM bookings b WHERE b.id = $1
FOR UPDATE OF b
"""
# pending -> confirmed, as ``_move`` does it, with its ``booking_confirmed`` in the outbox.
_CONFIRM = f"""
WITH booking AS (
    UPDATE bookings SET status = 'confirmed', confirmed_at = $2, payment_tx_ref = $3,
                        updated_at = $2
    WHERE id = $1 AND status = 'pending'
    RETURNING id
), seats AS (
    UPDATE booking_seats SET status = 'confirmed' WHERE booking_id IN (SELECT id FROM booking)
), quota AS (
    UPDATE buyer_quotas
    SET held_seats = held_seats - $4, pending_bookings = pending_bookings - 1
    WHERE event_id = $5 AND user_id = $6 AND EXISTS (SELECT FROM booking)
), message AS (
    INSERT INTO outbox_messages (message_id, routing_key, envelope)
    SELECT $7, 'booking_confirmed', $8::jsonb FROM booking
)
SELECT count(*) AS confirmed, pg_notify('{NOTIFY_CHANNEL}', '') FROM booking
"""  # noqa: S608 - a constant channel name


async def settle_payment(
    session: AsyncSession, events: EventsApi, payment: PaymentSucceeded
) -> str:
    """A payment succeeded: confirm the booking if it is still pending, else refund it.

    The seats are made sold in event_service first (its confirm call is the one writer of
    a sale); only if that succeeds is the booking confirmed. The booking's row lock is
    held across that call on purpose: it makes "confirm or expire" one decision, which the
    expiry loop (``SKIP LOCKED``) and a cancel respect. The common case (a pending booking
    paid in full, its hold still live) is three statements on the consumer's connection;
    every other outcome takes the ORM path below. Returns what happened.
    """
    conn = await driver_connection(session)
    row = await conn.fetchrow(_LOCK_FOR_SETTLE, payment.booking_id)
    if (
        row is None
        or row["status"] != BookingStatus.PENDING
        or row["started"]
        or payment.amount != row["total_amount"]
        or payment.currency != row["currency"]
    ):
        return await _settle_otherwise(session, events, payment, sold=None)
    try:
        await events.confirm(row["event_id"], row["hold_token"], row["id"])
    except (HoldExpired, BookingReleased, EventNotFound):
        return await _settle_otherwise(session, events, payment, sold=False)
    now = utcnow()
    seats = [
        BookedSeat(
            seat_id=seat_id, ticket_class=ticket_class, row=seat_row, number=number, price=price
        )
        for seat_id, ticket_class, seat_row, number, price in zip(
            row["seat_ids"],
            row["ticket_classes"],
            row["seat_rows"],
            row["seat_numbers"],
            row["prices"],
            strict=True,
        )
    ]
    message = BookingConfirmed(
        booking_id=row["id"],
        user_id=row["user_id"],
        event_id=row["event_id"],
        hold_token=row["hold_token"],
        seats=seats,
        total_amount=row["total_amount"],
        currency=row["currency"],
        tx_ref=payment.tx_ref,
        confirmed_at=now,
        event_title=row["event_title"],
        event_starts_at=row["event_starts_at"],
        venue=row["venue"],
        buyer_email=row["buyer_email"],
    )
    draft = draft_envelope("booking_confirmed", message)
    await conn.fetchrow(
        _CONFIRM,
        row["id"],
        now,
        payment.tx_ref,
        len(seats),
        row["event_id"],
        row["user_id"],
        uuid.UUID(draft["message_id"]),
        orjson.dumps(draft).decode(),
    )
    metrics.count("confirmed")
    return "confirmed"


async def _settle_otherwise(
    session: AsyncSession, events: EventsApi, payment: PaymentSucceeded, *, sold: bool | None
) -> str:
    """Every outcome of a settle but the common one, through the ORM (the row lock is
    already this transaction's). ``sold`` is False when event_service refused the sale,
    None when it was not asked."""
    booking = await _lock_booking(session, payment.booking_id)
    if booking is None:
        logger.warning("payment for an unknown booking", extra={"booking_id": payment.booking_id})
        await _refund_payment(session, payment, user_id=payment.user_id)
        return "refund_requested"
    if booking.status == BookingStatus.CONFIRMED and booking.payment_tx_ref == payment.tx_ref:
        return "already_confirmed"
    if booking.status != BookingStatus.PENDING:
        await _refund_payment(session, payment, user_id=booking.user_id)
        return "refund_requested"
    if payment.amount != booking.total_amount or payment.currency != booking.currency:
        raise PermanentFailure(
            f"payment {payment.tx_ref} of {payment.amount} {payment.currency} does not match "
            f"booking {booking.id} ({booking.total_amount} {booking.currency})"
        )
    # Still pending and paid in full: the event had started (``sold`` None: a ticket bought
    # after the doors opened is refunded, not sold, issue 17), or the hold ran out and may
    # be someone else's seats now (``sold`` False): never confirm over them.
    await _move(session, booking, BookingStatus.EXPIRED)
    await _announce_cancellation(session, booking, BookingStatus.PENDING, "expired")
    await session.flush()
    if sold is None:
        await release_hold_quietly(events, booking.event_id, booking.hold_token)
    metrics.count("expired")
    await _refund_payment(session, payment, user_id=booking.user_id)
    return "refund_requested"


async def _refund_payment(
    session: AsyncSession, payment: PaymentSucceeded, *, user_id: int
) -> None:
    await _request_refund(
        session,
        booking_id=payment.booking_id,
        user_id=user_id,
        amount=payment.amount,
        currency=payment.currency,
        tx_ref=payment.tx_ref,
        reason="booking_not_pending",
    )


async def fail_booking(session: AsyncSession, events: EventsApi, payment: PaymentFailed) -> str:
    """The payment failed: a pending booking becomes ``failed`` and its seats go back."""
    booking = await _lock_booking(session, payment.booking_id)
    if booking is None or booking.status != BookingStatus.PENDING:
        return "ignored"
    await close_pending(session, events, booking, BookingStatus.FAILED, reason="payment_failed")
    return "failed"
