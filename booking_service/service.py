"""The booking saga (DESIGN §7): hold, book, confirm on payment, expire, cancel.

Seats are first held in event_service (the fast gate), then the booking and its seats are
written in one transaction guarded by the partial unique index on active seats (the
truth). Every change that other services must learn about is written to the outbox in the
same transaction; holds are also released directly, at once, as a courtesy to the next
buyer, and the outbox message (or the hold's TTL) releases them if that call fails.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from booking_service import metrics
from booking_service.errors import (
    AmountMismatch,
    BookingNotCancellable,
    BookingNotFound,
    EventAlreadyStarted,
    IdempotencyKeyReused,
    SeatsUnavailable,
    UnknownSeats,
)
from booking_service.event_client import EventClient, EventInfo, Hold
from booking_service.idempotency import (
    KeyUse,
    find_key,
    hold_token_for,
    is_live,
    refuse_reused_key,
    remember_key,
    request_fingerprint,
)
from booking_service.models import (
    Booking,
    BookingSeat,
    BookingStatus,
    RefundRequest,
)
from booking_service.schemas import SEAT_ID_PATTERN, BookingCreate
from booking_service.settings import BookingSettings
from ticketing_common.db import utcnow
from ticketing_common.errors import BadRequest, DomainError, Forbidden, UpstreamError
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
from ticketing_common.security import Principal, Role

logger = logging.getLogger("booking_service.saga")

CENT = Decimal("0.01")

CancelReason = Literal["expired", "cancelled", "payment_failed"]
RefundReason = Literal["booking_not_pending", "cancelled_by_user", "cancelled_by_admin"]


@dataclass(frozen=True, slots=True)
class CreateOutcome:
    booking: Booking
    #: True when an earlier request (same Idempotency-Key) already created it
    replayed: bool


# --- creating a booking ---------------------------------------------------------------


async def create_booking(
    session: AsyncSession,
    events: EventClient,
    settings: BookingSettings,
    principal: Principal,
    body: BookingCreate,
    idempotency_key: str | None,
) -> CreateOutcome:
    """Hold the seats, then record the pending booking; release the hold if that fails."""
    fingerprint = request_fingerprint(body)
    key_use = None
    if idempotency_key is not None:
        earlier = await find_key(session, principal.user_id, idempotency_key)
        if earlier is not None and is_live(earlier, settings.idempotency_key_ttl_seconds):
            if earlier.request_fingerprint != fingerprint:
                raise IdempotencyKeyReused()
            return CreateOutcome(await _load_booking(session, earlier.booking_id), replayed=True)
        generation = earlier.generation + 1 if earlier is not None else 0
        key_use = KeyUse(idempotency_key, generation, fingerprint)
        token = hold_token_for(principal.user_id, key_use)
    else:
        token = str(uuid.uuid4())

    event = await _bookable_event(events, body, settings)

    try:
        hold = await events.hold_seats(
            event.id,
            token,
            seat_ids=body.seat_ids if body.seats is not None else None,
            ticket_class=body.ticket_class,
            count=body.seat_count,
            ttl_seconds=settings.hold_ttl_seconds,
        )
    except SeatsUnavailable:
        metrics.count("conflict")
        raise

    try:
        _check_hold_matches(hold, body)
        if hold.event_updated_at is not None and hold.event_updated_at != event.updated_at:
            # The event changed since this process read it: price the seats and check the
            # request against the version the hold was granted on.
            event = await events.get_event(body.event_id, fresh=True)
            _check_and_quote(event, body, settings)
        outcome = await _store_booking(
            session,
            events,
            principal,
            event,
            hold,
            currency=event.currency or settings.currency,
            key_use=key_use,
        )
    except BaseException as exc:
        if isinstance(exc, SeatsUnavailable):
            metrics.count("conflict")
        await asyncio.shield(events.release_hold_quietly(event.id, token))
        raise
    if not outcome.replayed:
        metrics.count("created")
    return outcome


async def _bookable_event(
    events: EventClient, body: BookingCreate, settings: BookingSettings
) -> EventInfo:
    """The event, checked against the request; a refusal is decided on a fresh read."""
    event = await events.get_event(body.event_id)
    try:
        _check_and_quote(event, body, settings)
    except DomainError:
        fresh = await events.get_event(body.event_id, fresh=True)
        if fresh.updated_at == event.updated_at:
            raise
        _check_and_quote(fresh, body, settings)
        return fresh
    return event


def _check_and_quote(event: EventInfo, body: BookingCreate, settings: BookingSettings) -> None:
    """Refuse what the event can't sell, and a client total that isn't the seats' price."""
    _ensure_bookable(event, body, settings)
    expected_total = _quote(event, body)
    if body.total_amount is not None and body.total_amount != expected_total:
        raise AmountMismatch(
            "total_amount does not match the price of the seats",
            details={"total_amount": str(expected_total)},
        )


def _ensure_bookable(event: EventInfo, body: BookingCreate, settings: BookingSettings) -> None:
    if event.date is not None and event.date <= utcnow():
        raise EventAlreadyStarted()
    wanted = len(body.seats) if body.seats is not None else body.seat_count or 0
    if wanted > settings.max_seats_per_booking:
        raise BadRequest(f"at most {settings.max_seats_per_booking} seats per booking")
    if body.ticket_class is not None and (
        body.ticket_class not in event.prices or wanted > event.capacity[body.ticket_class]
    ):
        raise SeatsUnavailable(f"this event does not have {wanted} {body.ticket_class} seats")
    unknown = []
    for seat_id in body.seat_ids:
        match = SEAT_ID_PATTERN.match(seat_id)
        assert match is not None  # the request schema already checked the shape
        ticket_class, row, number = match.group(1), int(match.group(2)), int(match.group(3))
        if not event.has_seat(ticket_class, row, number):
            unknown.append(seat_id)
    if unknown:
        raise UnknownSeats(
            f"no such seats at event {event.id}: {', '.join(unknown)}",
            details={"seat_ids": unknown},
        )


def _quote(event: EventInfo, body: BookingCreate) -> Decimal:
    """The price of the request from the event's class prices, each seat at its class."""
    if body.seats is not None:
        classes = [seat_id.split("-", 1)[0] for seat_id in body.seat_ids]
    else:
        assert body.ticket_class is not None
        assert body.seat_count is not None
        classes = [body.ticket_class] * body.seat_count
    return sum((event.price_of(c) for c in classes), Decimal(0)).quantize(CENT)


def _check_hold_matches(hold: Hold, body: BookingCreate) -> None:
    held = sorted(seat.seat_id for seat in hold.seats)
    if body.seats is not None:
        matches = held == body.seat_ids
    else:
        matches = len(held) == body.seat_count and all(
            seat.ticket_class == body.ticket_class for seat in hold.seats
        )
    if not matches:
        raise UpstreamError("event_service held other seats than the ones asked for")


async def _store_booking(
    session: AsyncSession,
    events: EventClient,
    principal: Principal,
    event: EventInfo,
    hold: Hold,
    *,
    currency: str,
    key_use: KeyUse | None,
) -> CreateOutcome:
    """Insert the booking; sort out why if the database refuses it.

    The transaction holds only reads before the insert, so a refused insert rolls the
    whole transaction back instead of paying for a savepoint on every booking.
    """
    seat_ids = [seat.seat_id for seat in hold.seats]
    for attempt in range(2):
        try:
            booking = _new_booking(principal, event, hold, currency)
            session.add(booking)
            await session.flush()
            if key_use is not None:
                await remember_key(session, principal.user_id, key_use, booking.id)
            return CreateOutcome(booking, replayed=False)
        except IntegrityError:
            await session.rollback()
            # A concurrent retry of this very request (same hold token) got there first.
            twin = await _booking_with_token(session, hold.token)
            if twin is not None:
                return CreateOutcome(twin, replayed=True)
            if key_use is not None:
                await refuse_reused_key(session, principal.user_id, key_use)
            # The seats are still in active bookings here: let lapsed ones go, try once more.
            if attempt == 0 and await _expire_lapsed_holders(session, events, event.id, seat_ids):
                await session.commit()  # the expiries stand even if the retry is refused
                continue
            raise SeatsUnavailable() from None
    raise SeatsUnavailable()


def _new_booking(principal: Principal, event: EventInfo, hold: Hold, currency: str) -> Booking:
    ordered = sorted(hold.seats, key=lambda s: (s.ticket_class, s.row, s.number))
    seats = [
        BookingSeat(
            event_id=event.id,
            seat_id=seat.seat_id,
            ticket_class=seat.ticket_class,
            row=seat.row,
            number=seat.number,
            price=event.price_of(seat.ticket_class).quantize(CENT),
            status=BookingStatus.PENDING,
        )
        for seat in ordered
    ]
    return Booking(
        user_id=principal.user_id,
        event_id=event.id,
        organizer_id=event.organizer_id,
        status=BookingStatus.PENDING,
        total_amount=sum((s.price for s in seats), Decimal(0)).quantize(CENT),
        currency=currency,
        hold_token=hold.token,
        expires_at=hold.expires_at,
        seats=seats,
    )


async def _booking_with_token(session: AsyncSession, token: str) -> Booking | None:
    result = await session.execute(
        select(Booking).where(Booking.hold_token == token).execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def _expire_lapsed_holders(
    session: AsyncSession, events: EventClient, event_id: int, seat_ids: Sequence[str]
) -> int:
    """Expire pending bookings on these seats whose hold ran out but the loop hasn't seen."""
    holders = (
        select(BookingSeat.booking_id)
        .where(
            BookingSeat.event_id == event_id,
            BookingSeat.seat_id.in_(seat_ids),
            BookingSeat.status == BookingStatus.PENDING,
        )
        .scalar_subquery()
    )
    lapsed = await _locked_bookings(
        session,
        select(Booking).where(
            Booking.id.in_(holders),
            Booking.status == BookingStatus.PENDING,
            Booking.expires_at <= utcnow(),
        ),
    )
    for booking in lapsed:
        await _close_pending(session, events, booking, BookingStatus.EXPIRED, reason="expired")
    return len(lapsed)


# --- reading bookings -----------------------------------------------------------------


async def _load_booking(session: AsyncSession, booking_id: int) -> Booking:
    booking = await session.get(Booking, booking_id)
    if booking is None:
        raise BookingNotFound()
    return booking


async def get_booking(session: AsyncSession, booking_id: int) -> Booking:
    return await _load_booking(session, booking_id)


async def booking_for_reader(
    session: AsyncSession, principal: Principal, booking_id: int
) -> Booking:
    """The booking, if the caller is its owner, the organizer of its event, or an admin."""
    booking = await _load_booking(session, booking_id)
    if not _may_read(principal, booking):
        raise Forbidden("only the booking's owner, the event's organizer or an admin may see it")
    return booking


def _may_read(principal: Principal, booking: Booking) -> bool:
    if principal.is_admin or principal.user_id == booking.user_id:
        return True
    return principal.role is Role.ORGANIZER and principal.user_id == booking.organizer_id


async def list_bookings(
    session: AsyncSession,
    *,
    limit: int,
    offset: int,
    status: str | None = None,
    user_id: int | None = None,
    organizer_id: int | None = None,
    event_id: int | None = None,
) -> tuple[list[Booking], int]:
    """A page of bookings, newest first, with the total count of the filtered list."""
    conditions = []
    if status is not None:
        conditions.append(Booking.status == status)
    if user_id is not None:
        conditions.append(Booking.user_id == user_id)
    if organizer_id is not None:
        conditions.append(Booking.organizer_id == organizer_id)
    if event_id is not None:
        conditions.append(Booking.event_id == event_id)
    total = await session.scalar(select(func.count()).select_from(Booking).where(*conditions))
    page = await session.scalars(
        select(Booking).where(*conditions).order_by(Booking.id.desc()).limit(limit).offset(offset)
    )
    return list(page), int(total or 0)


async def ensure_event_organizer(events: EventClient, principal: Principal, event_id: int) -> None:
    """Only the event's own organizer (or an admin) reads its sales."""
    event = await events.get_event(event_id)
    if not principal.is_admin and event.organizer_id != principal.user_id:
        raise Forbidden("only the event's organizer may see its sales")


@dataclass(frozen=True, slots=True)
class TakenSeat:
    seat_id: str
    ticket_class: str
    row: int
    number: int
    status: Literal["locked", "sold"]


async def taken_seats(session: AsyncSession, event_id: int) -> list[TakenSeat]:
    """Seats of the event in active bookings: ``locked`` while pending, ``sold`` once paid.

    A pending booking whose hold ran out no longer locks anything, even before the
    expiry loop has marked it.
    """
    rows = await session.execute(
        select(
            BookingSeat.seat_id,
            BookingSeat.ticket_class,
            BookingSeat.row,
            BookingSeat.number,
            BookingSeat.status,
        )
        .join(Booking, Booking.id == BookingSeat.booking_id)
        .where(
            BookingSeat.event_id == event_id,
            (BookingSeat.status == BookingStatus.CONFIRMED)
            | ((BookingSeat.status == BookingStatus.PENDING) & (Booking.expires_at > utcnow())),
        )
        .order_by(BookingSeat.ticket_class, BookingSeat.row, BookingSeat.number)
    )
    return [
        TakenSeat(
            seat_id=seat_id,
            ticket_class=ticket_class,
            row=row,
            number=number,
            status="sold" if status == BookingStatus.CONFIRMED else "locked",
        )
        for seat_id, ticket_class, row, number, status in rows
    ]


# --- leaving the pending state ---------------------------------------------------------


async def _locked_bookings(
    session: AsyncSession, query: Select[Booking], *, skip_locked: bool = False
) -> list[Booking]:
    result = await session.scalars(
        query.with_for_update(of=Booking, skip_locked=skip_locked).execution_options(
            populate_existing=True
        )
    )
    return list(result)


async def _lock_booking(session: AsyncSession, booking_id: int) -> Booking | None:
    found = await _locked_bookings(session, select(Booking).where(Booking.id == booking_id))
    return found[0] if found else None


def _set_status(booking: Booking, status: BookingStatus) -> None:
    booking.status = status
    for seat in booking.seats:
        seat.status = status


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
        ),
    )


async def _close_pending(
    session: AsyncSession,
    events: EventClient,
    booking: Booking,
    status: BookingStatus,
    *,
    reason: CancelReason,
) -> None:
    """pending → expired/cancelled/failed: seats go back on sale.

    The status change is flushed before the hold is released, so a buyer who grabs a
    freed seat waits on this row until this transaction commits instead of colliding.
    """
    _set_status(booking, status)
    if status is BookingStatus.CANCELLED:
        booking.cancelled_at = utcnow()
    await _announce_cancellation(session, booking, BookingStatus.PENDING, reason)
    await session.flush()
    await events.release_hold_quietly(booking.event_id, booking.hold_token)
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
    events: EventClient,
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
        await _refuse_after_the_event_started(session, events, booking_id)
    booking = await _lock_booking(session, booking_id)
    if booking is None:
        raise BookingNotFound()
    if booking.user_id != principal.user_id and not principal.is_admin:
        raise Forbidden("only the booking's owner may cancel it")
    previous = BookingStatus(booking.status)
    refunded = False
    if previous is BookingStatus.PENDING:
        await _close_pending(session, events, booking, BookingStatus.CANCELLED, reason="cancelled")
    elif previous is BookingStatus.CONFIRMED:
        _set_status(booking, BookingStatus.CANCELLED)
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
    session: AsyncSession, events: EventClient, booking_id: int
) -> None:
    """A ticket for an event that has begun is used or forfeit: its buyer can't cancel it
    for a refund any more (an admin still can, e.g. when the event is called off)."""
    found = (
        await session.execute(
            select(Booking.event_id).where(
                Booking.id == booking_id, Booking.status == BookingStatus.CONFIRMED
            )
        )
    ).scalar_one_or_none()
    if found is None:
        return
    await session.commit()  # no pooled connection waits on event_service
    event = await events.get_event(found, fresh=True)
    if event.date is not None and event.date <= utcnow():
        raise EventAlreadyStarted("the event has already started; its tickets can't be cancelled")


async def expire_stale_bookings(
    session: AsyncSession, events: EventClient, *, batch_size: int
) -> int:
    """Expire one batch of pending bookings past ``expires_at``; safe in many replicas.

    ``SKIP LOCKED`` lets replicas split the work, and leaves alone a booking whose payment
    is being settled right now.
    """
    stale = await _locked_bookings(
        session,
        select(Booking)
        .where(Booking.status == BookingStatus.PENDING, Booking.expires_at <= utcnow())
        .order_by(Booking.expires_at)
        .limit(batch_size),
        skip_locked=True,
    )
    for booking in stale:
        _set_status(booking, BookingStatus.EXPIRED)
        await _announce_cancellation(session, booking, BookingStatus.PENDING, "expired")
    if stale:
        await session.flush()
        await asyncio.gather(
            *(events.release_hold_quietly(b.event_id, b.hold_token) for b in stale)
        )
        metrics.count("expired", len(stale))
    return len(stale)


# --- payment outcomes ------------------------------------------------------------------


async def settle_payment(
    session: AsyncSession, events: EventClient, payment: PaymentSucceeded
) -> str:
    """A payment succeeded: confirm the booking if it is still pending, else refund it.

    The seats are made sold in event_service first; only if that succeeds is the booking
    confirmed. Returns what happened (for logs and tests).
    """
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
    if not await events.confirm_hold(booking.event_id, booking.hold_token, booking.id):
        # The hold ran out and the seats may be someone else's now: never confirm over them.
        _set_status(booking, BookingStatus.EXPIRED)
        await _announce_cancellation(session, booking, BookingStatus.PENDING, "expired")
        metrics.count("expired")
        await _refund_payment(session, payment, user_id=booking.user_id)
        return "refund_requested"
    now = utcnow()
    _set_status(booking, BookingStatus.CONFIRMED)
    booking.confirmed_at = now
    booking.payment_tx_ref = payment.tx_ref
    await publish(
        session,
        "booking_confirmed",
        BookingConfirmed(
            booking_id=booking.id,
            user_id=booking.user_id,
            event_id=booking.event_id,
            hold_token=booking.hold_token,
            seats=[BookedSeat.model_validate(s, from_attributes=True) for s in booking.seats],
            total_amount=booking.total_amount,
            currency=booking.currency,
            tx_ref=payment.tx_ref,
            confirmed_at=now,
        ),
    )
    await session.flush()
    metrics.count("confirmed")
    return "confirmed"


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


async def fail_booking(session: AsyncSession, events: EventClient, payment: PaymentFailed) -> str:
    """The payment failed: a pending booking becomes ``failed`` and its seats go back."""
    booking = await _lock_booking(session, payment.booking_id)
    if booking is None or booking.status != BookingStatus.PENDING:
        return "ignored"
    await _close_pending(session, events, booking, BookingStatus.FAILED, reason="payment_failed")
    return "failed"
