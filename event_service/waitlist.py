"""Waiting lists of sold-out classes, and the offers that give freed seats to them (issue 19).

A buyer joins a class's list once nothing of it is free (``POST /api/events/{id}/waitlist``).
From then on the class's free seats are **kept for the list**: the seat gate refuses every
hold of the class but an offer's (``hold.lua``, the ``waitlisted`` key), so a seat freed by
a cancellation, an expired hold, a failed payment or a larger capacity cannot be taken by a
newcomer before the list has had it.

Every replica runs :func:`offer_once` every tick. For each class with entries waiting and
seats free in the gate, it claims the first entry (in order of joining) whose seat count
fits, with ``FOR UPDATE SKIP LOCKED`` and a committed ``offering`` status, and asks
booking_service for a pending booking of that many seats of the class held for
``WAITLIST_OFFER_TTL_SECONDS`` (the idempotency key is the entry's, so a replica that takes
over a stale claim gets the same booking). One replica at a time offers a class's seats (a
Redis lock), so entries are offered in order; and the gate's hold is atomic, so even a
replica whose lock lapsed can never give one seat twice: it is ``short`` and its entry
waits on. The offer, its ``waitlist_offered`` email and the entry's status are committed together.
No database connection is held across the call to booking_service.

The booking's own messages close the entry: ``booking_confirmed`` makes it ``booked``,
``booking_cancelled`` (not paid in time, cancelled, payment failed) ``lapsed``, whose seats,
free again, go to the next entry. An entry offered long ago whose booking's end was never
heard of is asked about (``GET /internal/bookings/{id}``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from event_service import metrics
from event_service.errors import (
    ClassNotSoldOut,
    EventStarted,
    NotEventOwner,
    NotOnWaitlist,
    OfferInProgress,
)
from event_service.models import WaitlistEntry
from event_service.resources import EventResources, resources_of
from event_service.schemas import (
    EventRecord,
    WaitlistClassStats,
    WaitlistEntryOut,
    WaitlistStats,
)
from event_service.service import event_record
from ticketing_common.background import periodic_lifecycle
from ticketing_common.db import utcnow
from ticketing_common.errors import BadRequest, DomainError
from ticketing_common.internal.clients import BookingsApi
from ticketing_common.internal.errors import EventNotFound
from ticketing_common.internal.models import BookingView, WaitlistOffer, WaitlistOfferRequest
from ticketing_common.messaging import publish
from ticketing_common.messaging.contracts import WaitlistOffered
from ticketing_common.seats import TICKET_CLASSES
from ticketing_common.security import Principal, Role

logger = logging.getLogger("event_service.waitlist")

ACTIVE = ("waiting", "offering", "offered")
QUEUED = ("waiting", "offering")
#: a claim older than this belongs to a replica that died mid-offer: another takes it over
CLAIM_STALE_AFTER = timedelta(seconds=60)
#: an offer whose booking's end was not heard of this long after it lapsed is asked about
OFFER_CHECK_AFTER = timedelta(minutes=2)
#: refusals that pass (the buyer pays or cancels another booking): the entry keeps its place
_PASSING_REFUSALS = frozenset({"too_many_held_seats", "too_many_pending_bookings"})


# -- the buyer's side -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Joined:
    entry: WaitlistEntryOut
    new: bool


async def join(
    session: AsyncSession,
    resources: EventResources,
    record: EventRecord,
    principal: Principal,
    ticket_class: str,
    seat_count: int,
) -> Joined:
    """Put the buyer on the class's list (once: an active entry is returned as it is)."""
    if record.date <= utcnow():
        raise EventStarted()
    capacity = record.capacity()[ticket_class]
    if capacity == 0:
        raise BadRequest(f"this event has no {ticket_class} seats")
    limit = min(capacity, resources.settings.max_seats_per_hold)
    if seat_count > limit:
        raise BadRequest(f"at most {limit} {ticket_class} seats can be waited for together")
    existing = await _active_entry(session, record.id, principal.user_id, ticket_class)
    if existing is not None:
        return Joined(await _out(session, existing), new=False)
    if not await _sold_out(resources, record.id, ticket_class):
        raise ClassNotSoldOut(
            f"{ticket_class} seats are on sale: book them (the waiting list opens once "
            "none is left)",
            details={"ticket_class": ticket_class},
        )
    # Kept before the entry exists: a seat freed from here on is the list's already.
    await resources.gate.keep_for_waitlist(record.id, ticket_class)
    entry_id = await session.scalar(
        pg_insert(WaitlistEntry)
        .values(
            event_id=record.id,
            ticket_class=ticket_class,
            seat_count=seat_count,
            user_id=principal.user_id,
            buyer_email=principal.email,
            status="waiting",
            joined_at=utcnow(),
        )
        .on_conflict_do_nothing(
            index_elements=["event_id", "ticket_class", "user_id"],
            # literal: a bound parameter here fails once PostgreSQL plans the statement
            # generically (after five runs of the prepared statement)
            index_where=text("status IN ('waiting', 'offering', 'offered')"),
        )
        .returning(WaitlistEntry.id)
    )
    await session.commit()
    if entry_id is None:  # the buyer's concurrent request joined first
        existing = await _active_entry(session, record.id, principal.user_id, ticket_class)
        if existing is None:
            raise OfferInProgress("your entry changed meanwhile: read it again")
        return Joined(await _out(session, existing), new=False)
    metrics.WAITLIST_JOINS.inc()
    entry = await session.get(WaitlistEntry, entry_id)
    assert entry is not None
    return Joined(await _out(session, entry), new=True)


async def _sold_out(resources: EventResources, event_id: int, ticket_class: str) -> bool:
    """Nothing of the class is free, or what is free is its list's already."""
    if ticket_class in await resources.gate.kept_for_waitlist(event_id):
        return True
    await resources.gate.ensure_loaded(event_id)
    available = await resources.gate.availability(event_id)
    return available is not None and available[ticket_class] == 0


async def my_entry(
    session: AsyncSession, event_id: int, user_id: int, ticket_class: str | None
) -> WaitlistEntryOut:
    """The buyer's active entry (of ``ticket_class`` if named), else its latest one."""
    query = select(WaitlistEntry).where(
        WaitlistEntry.event_id == event_id, WaitlistEntry.user_id == user_id
    )
    if ticket_class is not None:
        query = query.where(WaitlistEntry.ticket_class == ticket_class)
    active_first = WaitlistEntry.status.in_(ACTIVE).desc()
    entry = await session.scalar(query.order_by(active_first, WaitlistEntry.id.desc()).limit(1))
    if entry is None:
        raise NotOnWaitlist()
    return await _out(session, entry)


async def leave(
    session: AsyncSession, event_id: int, user_id: int, ticket_class: str | None
) -> None:
    """Leave the list. An entry being offered stays: its booking is the buyer's to cancel."""
    entry = await session.scalar(
        select(WaitlistEntry)
        .where(
            WaitlistEntry.event_id == event_id,
            WaitlistEntry.user_id == user_id,
            WaitlistEntry.status.in_(ACTIVE),
            *([WaitlistEntry.ticket_class == ticket_class] if ticket_class else []),
        )
        .order_by(WaitlistEntry.id.desc())
        .limit(1)
        .with_for_update()
    )
    if entry is None:
        raise NotOnWaitlist()
    if entry.status != "waiting":
        raise OfferInProgress(
            "seats are being offered to you: cancel the offered booking "
            "(DELETE /api/bookings/{id}) instead",
            details={"booking_id": entry.booking_id, "status": entry.status},
        )
    entry.status, entry.closed_at = "left", utcnow()
    await session.commit()


async def stats(session: AsyncSession, record: EventRecord, principal: Principal) -> WaitlistStats:
    if principal.role is not Role.ADMIN and principal.user_id != record.organizer_id:
        raise NotEventOwner("only the event's organizer may see its waiting lists")
    rows = await session.execute(
        select(WaitlistEntry.ticket_class, WaitlistEntry.status, func.count())
        .where(WaitlistEntry.event_id == record.id)
        .group_by(WaitlistEntry.ticket_class, WaitlistEntry.status)
    )
    counts: dict[tuple[str, str], int] = {(c, s): n for c, s, n in rows}
    return WaitlistStats(
        event_id=record.id,
        classes=[
            WaitlistClassStats(
                ticket_class=c,
                waiting=counts.get((c, "waiting"), 0) + counts.get((c, "offering"), 0),
                offered=counts.get((c, "offered"), 0),
                booked=counts.get((c, "booked"), 0),
                lapsed=counts.get((c, "lapsed"), 0),
            )
            for c in TICKET_CLASSES
        ],
    )


async def _active_entry(
    session: AsyncSession, event_id: int, user_id: int, ticket_class: str
) -> WaitlistEntry | None:
    entry: WaitlistEntry | None = await session.scalar(
        select(WaitlistEntry).where(
            WaitlistEntry.event_id == event_id,
            WaitlistEntry.user_id == user_id,
            WaitlistEntry.ticket_class == ticket_class,
            WaitlistEntry.status.in_(ACTIVE),
        )
    )
    return entry


async def _out(session: AsyncSession, entry: WaitlistEntry) -> WaitlistEntryOut:
    position = None
    if entry.status in QUEUED:
        position = await session.scalar(
            select(func.count()).where(
                WaitlistEntry.event_id == entry.event_id,
                WaitlistEntry.ticket_class == entry.ticket_class,
                WaitlistEntry.status.in_(QUEUED),
                WaitlistEntry.id <= entry.id,
            )
        )
    out = WaitlistEntryOut.model_validate(entry)
    return out.model_copy(update={"position": position})


# -- the booking's messages ----------------------------------------------------------------

# In the statement that checks a ``booking_confirmed`` (event_service/holds.py): the offer
# it paid, if it was one, is taken.
TAKE_OFFER = """
UPDATE event_waitlist_entries SET status = 'booked', closed_at = now()
WHERE booking_id = :booking_id AND status = 'offered'
RETURNING id
"""

_TAKE_OFFER = text(TAKE_OFFER)
_LAPSE_OFFER = text(
    "UPDATE event_waitlist_entries SET status = 'lapsed', closed_at = now(), reason = :reason "
    "WHERE booking_id = :booking_id AND status = 'offered' RETURNING id"
)


async def offer_taken(session: AsyncSession, booking_id: int) -> None:
    """A pending booking was paid: if it was an offer, the entry is booked."""
    if (await session.execute(_TAKE_OFFER, {"booking_id": booking_id})).first() is not None:
        metrics.WAITLIST_OFFERS.labels("taken").inc()


async def offer_lapsed(session: AsyncSession, booking_id: int, reason: str) -> None:
    """A pending booking ended unpaid: if it was an offer, its seats go to the next entry."""
    lapsed = await session.execute(_LAPSE_OFFER, {"booking_id": booking_id, "reason": reason})
    if lapsed.first() is not None:
        metrics.WAITLIST_OFFERS.labels("lapsed").inc()


# -- the offers ------------------------------------------------------------------------------

_QUEUED_CLASSES = text(
    "SELECT DISTINCT event_id, ticket_class FROM event_waitlist_entries "
    "WHERE status IN ('waiting', 'offering')"
)

_CLAIM = text(
    """
UPDATE event_waitlist_entries SET status = 'offering', claimed_at = now()
WHERE id = (
    SELECT id FROM event_waitlist_entries
    WHERE event_id = :event_id AND ticket_class = :ticket_class
      AND ((status = 'waiting' AND seat_count <= :free)
           OR (status = 'offering' AND claimed_at < :stale_before))
      AND id <> ALL(:skipped)
    ORDER BY id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING id, user_id, buyer_email, seat_count
"""
)


@dataclass(frozen=True, slots=True)
class _Claim:
    id: int
    user_id: int
    buyer_email: str | None
    seat_count: int


async def offer_once(app: FastAPI) -> int:
    """One round over every class with a waiting list; returns the offers made."""
    resources = resources_of(app)
    bookings = BookingsApi.of(app.state.http, resources.settings)
    started_ms = time.time_ns() // 1_000_000
    async with resources.sessionmaker() as session:
        queued = {(int(e), str(c)) for e, c in await session.execute(_QUEUED_CLASSES)}
        waiting = await session.scalar(select(func.count()).where(WaitlistEntry.status.in_(QUEUED)))
    metrics.WAITLIST_WAITING.set(waiting or 0)
    # Lists emptied (everyone offered, left or refused): their class goes back on sale.
    for event_id, ticket_class in await resources.gate.kept_for_waitlists() - queued:
        await resources.gate.stop_keeping_for_waitlist(event_id, ticket_class, started_ms)
    made = 0
    for event_id, ticket_class in sorted(queued):
        try:
            async with resources.gate.offering_to_waitlist(event_id, ticket_class) as mine:
                if mine:
                    made += await _offer_class(resources, bookings, event_id, ticket_class)
        except Exception:
            logger.exception(
                "waiting list round skipped",
                extra={"event_id": event_id, "ticket_class": ticket_class},
            )
    await _check_old_offers(resources, bookings)
    return made


async def _offer_class(
    resources: EventResources, bookings: BookingsApi, event_id: int, ticket_class: str
) -> int:
    try:
        record = await event_record(resources, event_id)
    except EventNotFound:
        return 0
    if record.date <= utcnow():
        await _close_list(resources, event_id, ticket_class, "the event has started")
        return 0
    await resources.gate.keep_for_waitlist(event_id, ticket_class)
    await resources.gate.ensure_loaded(event_id)
    made, skipped = 0, [0]
    while True:
        # Entries that fit in what is free, and claims whose replica died (their booking
        # may exist already: the same key returns it), first come first.
        free = await _free(resources, event_id, ticket_class)
        claim = await _claim(resources, event_id, ticket_class, free, skipped)
        if claim is None:
            break
        request = WaitlistOfferRequest(
            key=f"waitlist-{claim.id}",
            user_id=claim.user_id,
            buyer_email=claim.buyer_email,
            event_id=event_id,
            ticket_class=ticket_class,
            seat_count=claim.seat_count,
            hold_ttl_seconds=resources.settings.waitlist_offer_ttl_seconds,
        )
        try:
            answer = await bookings.offer(request)
        except DomainError:
            await _unclaim(resources, claim.id)
            raise
        if answer.outcome == "offered":
            assert answer.booking is not None
            await _record_offer(resources, record, ticket_class, claim, answer.booking)
            made += 1
        elif answer.outcome == "short":
            await _unclaim(resources, claim.id)
            break
        elif answer.code in _PASSING_REFUSALS:
            await _unclaim(resources, claim.id)
            skipped.append(claim.id)
        else:
            await _refuse(resources, claim.id, answer)
    return made


async def _free(resources: EventResources, event_id: int, ticket_class: str) -> int:
    available = await resources.gate.availability(event_id)
    return 0 if available is None else available[ticket_class]


async def _claim(
    resources: EventResources, event_id: int, ticket_class: str, free: int, skipped: list[int]
) -> _Claim | None:
    async with resources.sessionmaker() as session, session.begin():
        row = (
            await session.execute(
                _CLAIM,
                {
                    "event_id": event_id,
                    "ticket_class": ticket_class,
                    "free": free,
                    "stale_before": utcnow() - CLAIM_STALE_AFTER,
                    "skipped": skipped,
                },
            )
        ).first()
    return None if row is None else _Claim(*row)


async def _unclaim(resources: EventResources, entry_id: int) -> None:
    async with resources.sessionmaker() as session, session.begin():
        await session.execute(
            update(WaitlistEntry)
            .where(WaitlistEntry.id == entry_id, WaitlistEntry.status == "offering")
            .values(status="waiting", claimed_at=None)
        )


async def _refuse(resources: EventResources, entry_id: int, answer: WaitlistOffer) -> None:
    logger.info(
        "waiting list entry refused its offer",
        extra={"entry_id": entry_id, "code": answer.code},
    )
    metrics.WAITLIST_OFFERS.labels("refused").inc()
    async with resources.sessionmaker() as session, session.begin():
        await session.execute(
            update(WaitlistEntry)
            .where(WaitlistEntry.id == entry_id, WaitlistEntry.status == "offering")
            .values(status="refused", closed_at=utcnow(), reason=(answer.message or "")[:200])
        )


async def _record_offer(
    resources: EventResources,
    record: EventRecord,
    ticket_class: str,
    claim: _Claim,
    booking: BookingView,
) -> None:
    """The entry is offered and its email queued, in one transaction."""
    settings = resources.settings
    async with resources.sessionmaker() as session, session.begin():
        recorded = await session.scalar(
            update(WaitlistEntry)
            .where(WaitlistEntry.id == claim.id, WaitlistEntry.status == "offering")
            .values(
                status="offered",
                booking_id=booking.id,
                offered_at=utcnow(),
                offer_expires_at=booking.expires_at,
            )
            .returning(WaitlistEntry.id)
        )
        if recorded is None:
            logger.warning("waiting list entry changed while offered", extra={"id": claim.id})
            return
        await publish(
            session,
            "waitlist_offered",
            WaitlistOffered(
                entry_id=claim.id,
                booking_id=booking.id,
                user_id=claim.user_id,
                buyer_email=claim.buyer_email,
                event_id=record.id,
                event_title=record.title,
                event_starts_at=record.date,
                venue=record.location,
                ticket_class=ticket_class,
                seat_ids=[seat.seat_id for seat in booking.seats],
                total_amount=booking.total_amount,
                currency=booking.currency,
                expires_at=booking.expires_at,
                pay_url=settings.waitlist_offer_url.format(
                    base=settings.public_base_url.rstrip("/"), booking_id=booking.id
                ),
            ),
        )
    metrics.WAITLIST_OFFERS.labels("made").inc()
    logger.info(
        "waiting list offer made",
        extra={"entry_id": claim.id, "booking_id": booking.id, "event_id": record.id},
    )


async def _close_list(
    resources: EventResources, event_id: int, ticket_class: str, reason: str
) -> None:
    async with resources.sessionmaker() as session, session.begin():
        await session.execute(
            update(WaitlistEntry)
            .where(
                WaitlistEntry.event_id == event_id,
                WaitlistEntry.ticket_class == ticket_class,
                WaitlistEntry.status == "waiting",
            )
            .values(status="refused", closed_at=utcnow(), reason=reason)
        )


async def _check_old_offers(resources: EventResources, bookings: BookingsApi) -> None:
    """Offers whose end no message told of (a message lost before this table existed, or a
    booking that ended before its offer was recorded): booking_service says how they ended."""
    async with resources.sessionmaker() as session:
        old: Sequence[int | None] = (
            await session.scalars(
                select(WaitlistEntry.booking_id)
                .where(
                    WaitlistEntry.status == "offered",
                    WaitlistEntry.offer_expires_at < utcnow() - OFFER_CHECK_AFTER,
                )
                .limit(20)
            )
        ).all()
    for booking_id in old:
        if booking_id is None:
            continue
        try:
            booking = await bookings.booking(booking_id)
        except DomainError:
            continue
        if booking.status == "pending":
            continue
        async with resources.sessionmaker() as session, session.begin():
            if booking.status == "confirmed":
                await offer_taken(session, booking_id)
            else:
                await offer_lapsed(session, booking_id, booking.status)


def _interval(app: FastAPI) -> float:
    return float(resources_of(app).settings.waitlist_tick_seconds)


#: every tick, in every replica (claims and the gate keep two replicas from clashing)
waitlist_lifecycle = periodic_lifecycle(offer_once, name="waiting-lists", interval=_interval)
