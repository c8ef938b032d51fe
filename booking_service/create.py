"""Creating a booking (DESIGN §7.1): one hold call, one database round trip.

The hold's answer carries everything the booking needs (each seat's class and price, the
currency, the organizer, the event's title, venue, start and version), so booking_service
keeps no copy of the event and makes no other call to event_service. The booking, its
seats, its ``booking_created`` message and its Idempotency-Key are written by one
statement (:mod:`booking_service.store`), atomic on its own. If anything after the hold
fails, the hold is released at once; if the process dies in between, its TTL frees it.

The rare paths (an Idempotency-Key replay, a seat PostgreSQL still sees in an active
booking) open an ORM session of their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from booking_service import metrics
from booking_service.errors import (
    AmountMismatch,
    IdempotencyKeyReused,
    TicketLimitReached,
    TooManyHeldSeats,
    TooManyPendingBookings,
)
from booking_service.idempotency import (
    KeyUse,
    find_key,
    hold_token_for,
    is_live,
    refuse_reused_key,
    request_fingerprint,
)
from booking_service.models import Booking, BookingSeat, BookingStatus
from booking_service.reads import booking_view
from booking_service.resources import BookingResources, release_hold_quietly
from booking_service.saga import close_pending, locked_bookings
from booking_service.schemas import BookingCreate, BookingOut
from booking_service.settings import BookingSettings
from booking_service.store import (
    Limits,
    NewBooking,
    OverQuota,
    Quota,
    SeatTaken,
    TokenTaken,
    insert_booking,
    quota_of,
)
from ticketing_common.db import utcnow
from ticketing_common.errors import BadRequest, DomainError, ServiceUnavailable, UpstreamError
from ticketing_common.internal.errors import SeatsUnavailable
from ticketing_common.internal.models import (
    HoldGranted,
    HoldRequest,
    WaitlistOffer,
    WaitlistOfferRequest,
)
from ticketing_common.security import Principal, Role

logger = logging.getLogger("booking_service.create")

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class CreateOutcome:
    booking: BookingOut
    #: True when an earlier request (same Idempotency-Key) already created it
    replayed: bool


async def create_booking(
    resources: BookingResources,
    principal: Principal,
    body: BookingCreate,
    idempotency_key: str | None,
    *,
    queue_pass: str | None = None,
    offer_ttl_seconds: int | None = None,
) -> CreateOutcome:
    """Hold the seats, then record the pending booking; release the hold if that fails.

    ``queue_pass`` travels with the hold: event_service refuses the hold of an event that
    sells through its waiting room unless the pass is this buyer's (issue 20).
    ``offer_ttl_seconds``: the booking is a waiting list's offer (issue 19), whose hold may
    take the seats its class keeps for the list, for that long."""
    settings = resources.settings
    wanted = len(body.seats) if body.seats is not None else body.seat_count or 0
    if wanted > settings.max_seats_per_booking:
        raise BadRequest(f"at most {settings.max_seats_per_booking} seats per booking")
    key_use = None
    if idempotency_key is not None:
        fingerprint = request_fingerprint(body)
        earlier = await find_key(resources.pg, principal.user_id, idempotency_key)
        if earlier is not None and is_live(earlier, settings.idempotency_key_ttl_seconds):
            if earlier.request_fingerprint != fingerprint:
                raise IdempotencyKeyReused()
            return CreateOutcome(await _stored(resources, earlier.booking_id), replayed=True)
        generation = earlier.generation + 1 if earlier is not None else 0
        key_use = KeyUse(idempotency_key, generation, fingerprint)
        token = hold_token_for(principal.user_id, key_use)
    else:
        token = str(uuid.uuid4())

    request = _hold_request(body, token, settings, principal.user_id, queue_pass, offer_ttl_seconds)
    try:
        hold = await resources.events.hold(body.event_id, request)
    except SeatsUnavailable:
        metrics.count("conflict")
        raise
    except UpstreamError:  # it answered, badly: whatever it held goes back
        await asyncio.shield(release_hold_quietly(resources.events, body.event_id, token))
        raise
    except ServiceUnavailable:  # no answer: see _release_unanswered
        await asyncio.shield(_release_unanswered(resources, body.event_id, request))
        raise
    try:
        _check_hold(hold, body)
        client_order = [seat.id for seat in body.seats] if body.seats is not None else None
        new = NewBooking.from_hold(principal, hold, client_order)
        outcome = await _store(resources, principal, new, key_use)
    except BaseException as exc:
        if isinstance(exc, SeatsUnavailable):
            metrics.count("conflict")
        await asyncio.shield(release_hold_quietly(resources.events, hold.event_id, hold.token))
        raise
    if not outcome.replayed:
        metrics.count("created")
    return outcome


#: how long before this side stops waiting a hold is still taken: the two clocks (this
#: process's and Redis's) may differ by up to this much
HOLD_CLOCK_MARGIN_SECONDS = 1.0


def hold_deadline_ms(settings: BookingSettings) -> int:
    """When the hold call will have given up (every attempt timed out), less the clocks'
    margin: a hold is taken before it or not at all (event_service refuses it after)."""
    budget = (1 + settings.internal_http_retries) * settings.internal_http_timeout_seconds
    return int((time.time() + budget - HOLD_CLOCK_MARGIN_SECONDS) * 1000)


async def _release_unanswered(
    resources: BookingResources, event_id: int, request: HoldRequest
) -> None:
    """The hold call got no answer: past its deadline nothing more can be held under the
    token, so whatever was (an attempt answered too late to be read) goes back now,
    instead of blocking its seats for the hold's whole TTL. Before the deadline (an
    attempt failed fast) a copy still queued at event_service could be held after the
    release; then the TTL frees it, as when this process dies."""
    assert request.not_after_ms is not None
    if time.time() * 1000 > request.not_after_ms:
        await release_hold_quietly(resources.events, event_id, request.token)


def _hold_request(
    body: BookingCreate,
    token: str,
    settings: BookingSettings,
    user_id: int,
    queue_pass: str | None,
    offer_ttl_seconds: int | None = None,
) -> HoldRequest:
    ttl = offer_ttl_seconds or settings.hold_ttl_seconds
    buyer = {
        "token": token,
        "ttl_seconds": ttl,
        "user_id": user_id,
        "queue_pass": queue_pass,
        "not_after_ms": hold_deadline_ms(settings),
    }
    if body.seats is not None:
        return HoldRequest(seat_ids=body.seat_ids, **buyer)
    return HoldRequest(
        ticket_class=body.ticket_class,
        count=body.seat_count,
        for_waitlist=offer_ttl_seconds is not None,
        **buyer,
    )


def _check_hold(hold: HoldGranted, body: BookingCreate) -> None:
    """The hold is what was asked for, and a client's total is the server's price."""
    held = sorted(seat.seat_id for seat in hold.seats)
    if body.seats is not None:
        matches = held == body.seat_ids
    else:
        matches = len(held) == body.seat_count and all(
            seat.ticket_class == body.ticket_class for seat in hold.seats
        )
    if not matches:
        raise UpstreamError("event_service held other seats than the ones asked for")
    total = hold.total.quantize(CENT)
    for named in body.client_totals:
        # Rounded to the cent: a front end summing float prices sends 300.29999999999995.
        if named.quantize(CENT) != total:
            raise AmountMismatch(
                f"amount {named} is not the price of these seats ({total}): "
                "book again with the current price, or without an amount",
                details={"amount": float(named), "total_amount": float(total)},
            )


async def _store(
    resources: BookingResources,
    principal: Principal,
    new: NewBooking,
    key_use: KeyUse | None,
) -> CreateOutcome:
    """Insert the booking; sort out why if the database refuses it.

    Refusals are rare: a concurrent retry of this very request (same hold token), a key
    taken by a concurrent request, or seats PostgreSQL still sees in an active booking
    whose hold the gate no longer has (lapsed, or lost with Redis).
    """
    hold = new.hold
    limits = _limits(resources.settings, hold)
    _refuse_over_quota(limits, Quota(), len(new.seats))  # a first booking must fit too
    for attempt in range(2):
        try:
            booking = await insert_booking(resources.pg, new, limits, key_use)
            return CreateOutcome(booking, replayed=False)
        except OverQuota:
            quota = await quota_of(resources.pg, hold.event_id, principal.user_id)
            _refuse_over_quota(limits, quota, len(new.seats))
            continue  # the buyer's own concurrent booking ended meanwhile: try again
        except TokenTaken:
            twin = await _booking_with_token(resources, hold.token)
            if twin is not None:
                return CreateOutcome(twin, replayed=True)
            raise SeatsUnavailable() from None
        except SeatTaken:
            if key_use is not None:
                await refuse_reused_key(resources.pg, principal.user_id, key_use)
            if attempt == 0 and await _expire_lapsed_holders(resources, hold):
                continue
            raise SeatsUnavailable() from None
    raise SeatsUnavailable()


def _limits(settings: BookingSettings, hold: HoldGranted) -> Limits:
    return Limits(
        held_seats=settings.max_held_seats_per_buyer,
        pending_bookings=settings.max_pending_bookings_per_buyer,
        tickets=hold.max_tickets_per_buyer,
    )


def _refuse_over_quota(limits: Limits, quota: Quota, seats: int) -> None:
    """Raise the limit ``seats`` more would break, given what the buyer already has."""
    if limits.tickets is not None and quota.tickets + seats > limits.tickets:
        raise TicketLimitReached(
            f"this event sells at most {limits.tickets} tickets to one buyer; "
            f"you have {quota.tickets}",
            details={"limit": limits.tickets, "tickets": quota.tickets, "requested": seats},
        )
    if quota.held_seats + seats > limits.held_seats:
        raise TooManyHeldSeats(
            f"one buyer may hold at most {limits.held_seats} seats of an event at once; "
            f"you hold {quota.held_seats}: pay for or cancel a booking first",
            details={"limit": limits.held_seats, "held": quota.held_seats, "requested": seats},
        )
    if quota.pending_bookings + 1 > limits.pending_bookings:
        raise TooManyPendingBookings(
            f"one buyer may have at most {limits.pending_bookings} unpaid bookings of an "
            "event: pay for or cancel one first",
            details={"limit": limits.pending_bookings, "pending": quota.pending_bookings},
        )


async def _stored(resources: BookingResources, booking_id: int) -> BookingOut:
    async with resources.sessionmaker() as session:
        booking = await session.get(Booking, booking_id)
        if booking is None:
            raise UpstreamError("an idempotency key names a booking that does not exist")
        return BookingOut.model_validate(booking)


async def _booking_with_token(resources: BookingResources, token: str) -> BookingOut | None:
    async with resources.sessionmaker() as session:
        booking = await session.scalar(select(Booking).where(Booking.hold_token == token))
        return None if booking is None else BookingOut.model_validate(booking)


async def _expire_lapsed_holders(resources: BookingResources, hold: HoldGranted) -> int:
    """Expire pending bookings on these seats whose hold ran out but the loop hasn't seen.

    Committed on their own, so the expiries stand even if the retry is refused.
    """
    seat_ids: Sequence[str] = [seat.seat_id for seat in hold.seats]
    holders = (
        select(BookingSeat.booking_id)
        .where(
            BookingSeat.event_id == hold.event_id,
            BookingSeat.seat_id.in_(seat_ids),
            BookingSeat.status == BookingStatus.PENDING,
        )
        .scalar_subquery()
    )
    async with resources.sessionmaker() as session, session.begin():
        lapsed = await locked_bookings(
            session,
            select(Booking).where(
                Booking.id.in_(holders),
                Booking.status == BookingStatus.PENDING,
                Booking.expires_at <= utcnow(),
            ),
        )
        for booking in lapsed:
            await close_pending(
                session, resources.events, booking, BookingStatus.EXPIRED, reason="expired"
            )
    return len(lapsed)


async def create_offer(resources: BookingResources, request: WaitlistOfferRequest) -> WaitlistOffer:
    """A waiting list's offer (issue 19): a pending booking of ``seat_count`` seats of the
    class for the entry's buyer, held for ``hold_ttl_seconds``, made as the buyer's own
    booking would be (per-buyer limits apply); the entry's key makes a retry return it."""
    principal = Principal(
        user_id=request.user_id, role=Role.USER, email=request.buyer_email, jti="waitlist"
    )
    body = BookingCreate(
        event_id=request.event_id, seat_count=request.seat_count, ticket_class=request.ticket_class
    )
    try:
        outcome = await create_booking(
            resources, principal, body, request.key, offer_ttl_seconds=request.hold_ttl_seconds
        )
    except SeatsUnavailable:
        return WaitlistOffer(outcome="short")
    except DomainError as exc:
        if exc.status_code >= 500:
            raise
        return WaitlistOffer(outcome="refused", code=exc.code, message=exc.message)
    view = await booking_view(resources.pg, outcome.booking.id)
    return WaitlistOffer(outcome="offered", booking=view)
