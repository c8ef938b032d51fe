"""Seat holds for booking_service (DESIGN §6) and the sales its messages announce.

Redis (the seat gate) decides holds; PostgreSQL is the truth about sales. Whenever both
change, PostgreSQL is written (and flushed, so its constraints have spoken) before the
gate, inside the caller's transaction: a refusal from the gate then rolls PostgreSQL back,
and only a failed COMMIT can leave the gate ahead of PostgreSQL, which a retry (confirm is
idempotent, messages are redelivered) or the next rebuild puts right. Every change of
both takes the event's row lock first, as a gate rebuild does.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from event_service.errors import (
    BookingReleased,
    EventNotFound,
    EventStarted,
    HoldExpired,
    HoldTokenInUse,
    SeatsUnavailable,
    UnknownSeats,
)
from event_service.metrics import HOLD_CONFIRMS, SEAT_HOLDS, WAITLIST_OFFERS
from event_service.models import Event, ReleasedBooking, SoldSeat
from event_service.resources import EventResources
from event_service.schemas import EventRecord
from event_service.seat_gate import HoldReply
from event_service.service import EventService, event_record
from event_service.waitlist import TAKE_OFFER, offer_lapsed
from ticketing_common.db import driver_connection, utcnow
from ticketing_common.errors import BadRequest, DomainError
from ticketing_common.internal.errors import HoldTooLate, HoldTooLong
from ticketing_common.internal.models import HeldSeat, HoldGranted, HoldRequest
from ticketing_common.messaging.contracts import BookingCancelled, BookingConfirmed
from ticketing_common.seats import Seat, parse_seat_id, seat_exists

logger = logging.getLogger("event_service.holds")


# The event's row lock, which every change of its sales and of its gate takes first.
_LOCK_EVENT = text("SELECT id FROM events WHERE id = :event_id FOR UPDATE")

# How many seats a booking bought (the check of every ``booking_confirmed``); the same
# round trip closes the waiting list's offer it paid, if it was one.
_SOLD_TO_BOOKING = text(
    f"WITH taken AS ({TAKE_OFFER}) "  # noqa: S608 - two constant statements
    "SELECT count(*), (SELECT count(*) FROM taken) FROM event_seats_sold "
    "WHERE booking_id = :booking_id AND event_id = :event_id"
)

# A sale of seats ($4, their classes $5) to booking $2 under hold token $3, unless the
# booking was released; the counters move by what was inserted; ``foreign`` names the
# seats sold to another booking (the caller then rolls the statement back).
_RECORD_SALE = """
WITH released AS (
    SELECT EXISTS (SELECT FROM event_released_bookings WHERE booking_id = $2) AS yes
), inserted AS (
    INSERT INTO event_seats_sold (event_id, seat_id, ticket_class, booking_id, hold_token,
                                  sold_at)
    SELECT $1, s.seat_id, s.ticket_class, $2, $3, now()
    FROM unnest($4::text[], $5::text[]) AS s(seat_id, ticket_class), released
    WHERE NOT released.yes
    ON CONFLICT (event_id, seat_id) DO NOTHING
    RETURNING ticket_class
), counted AS (
    UPDATE events
    SET sold_normal = sold_normal + (SELECT count(*) FROM inserted WHERE ticket_class = 'normal'),
        sold_vip = sold_vip + (SELECT count(*) FROM inserted WHERE ticket_class = 'vip'),
        sold_vvip = sold_vvip + (SELECT count(*) FROM inserted WHERE ticket_class = 'vvip')
    WHERE id = $1 AND EXISTS (SELECT FROM inserted)
)
SELECT (SELECT yes FROM released) AS released,
       ARRAY(SELECT seat_id FROM event_seats_sold
             WHERE event_id = $1 AND seat_id = ANY($4::text[]) AND booking_id <> $2) AS foreign
"""


def _held_seat(record: EventRecord, seat: Seat) -> HeldSeat:
    return HeldSeat(
        seat_id=seat.seat_id,
        ticket_class=seat.ticket_class,
        row=seat.row,
        number=seat.number,
        price=record.price(seat.ticket_class),
    )


def _seats(seat_ids: Sequence[str]) -> list[Seat]:
    """Parse seat ids the gate or PostgreSQL handed back (always well formed)."""
    seats = [parse_seat_id(seat_id) for seat_id in seat_ids]
    if any(seat is None for seat in seats):
        raise ValueError(f"malformed seat id among {list(seat_ids)}")
    return [seat for seat in seats if seat is not None]


def _well_formed(seat_ids: list[str]) -> bool:
    """Listed once (else 400) and well formed; whether they exist the gate decides."""
    duplicates = sorted({s for s in seat_ids if seat_ids.count(s) > 1})
    if duplicates:
        raise BadRequest("a seat is listed more than once", details={"seat_ids": duplicates})
    return all(parse_seat_id(s) is not None for s in seat_ids)


def _check_layout(record: EventRecord, seat_ids: Sequence[str]) -> None:
    """Every seat exists in the event's layout (PostgreSQL's, under the row lock)."""
    capacity = record.capacity()
    unknown = []
    for seat_id in seat_ids:
        seat = parse_seat_id(seat_id)
        if seat is None or not seat_exists(seat, record.seats_per_row, capacity):
            unknown.append(seat_id)
    if unknown:
        raise UnknownSeats.of(unknown, record.id)


async def hold_seats(resources: EventResources, event_id: int, request: HoldRequest) -> HoldGranted:
    """Take the hold, then price it from the event as it was when the gate granted it.

    One Redis round trip in the common case: the hold script also reads the event's
    edit version, and this process keeps the event parsed at that version. A hold on
    an event that turns out to have started is given back at once.
    """
    if request.not_after_ms is not None and time.time() * 1000 > request.not_after_ms:
        raise _too_late()  # the caller stopped waiting while this request queued
    ttl = request.ttl_seconds or resources.settings.hold_ttl_seconds
    if ttl > resources.settings.max_hold_ttl_seconds:
        raise HoldTooLong(f"ttl_seconds is at most {resources.settings.max_hold_ttl_seconds}")
    if request.wanted > resources.settings.max_seats_per_hold:
        raise BadRequest(f"at most {resources.settings.max_seats_per_hold} seats per hold")
    if request.seat_ids is not None and not _well_formed(request.seat_ids):
        # Name every seat that isn't in the event, malformed or outside its layout.
        _check_layout(await event_record(resources, event_id), request.seat_ids)
    room = resources.waiting_room
    # The pass is checked before any seat is held against the event as this process last
    # read it; a refusal reads it again (the room may be off by now), which then decides.
    checked = None if request.for_waitlist else resources.cache.last_known(event_id)
    if checked is not None and room.refusal(checked, request.user_id, request.queue_pass):
        checked = await event_record(resources, event_id)
        room.check_pass(checked, request.user_id, request.queue_pass)
    reply = await resources.gate.hold(
        event_id,
        token=request.token,
        ttl_ms=ttl * 1000,
        fingerprint=request.fingerprint(),
        seat_ids=request.seat_ids or (),
        ticket_class=request.ticket_class,
        count=request.count or 0,
        for_waitlist=request.for_waitlist,
        not_after_ms=request.not_after_ms,
    )
    _refuse(event_id, request, reply)
    record = resources.cache.at_version(event_id, reply.event_version)
    if record is None:
        record = await event_record(resources, event_id)
    if record.date <= utcnow():
        await resources.gate.release(event_id, request.token)
        raise EventStarted()
    if record.queue_enabled and record is not checked and not request.for_waitlist:
        # The event at the hold's version is not the one checked above (it changed, or
        # this process had not read it): it decides, and a refused hold goes back at once.
        try:
            room.check_pass(record, request.user_id, request.queue_pass)
        except DomainError:
            await resources.gate.release(event_id, request.token)
            raise
    SEAT_HOLDS.labels("held").inc()
    assert reply.expires_at is not None
    return HoldGranted(
        token=request.token,
        event_id=record.id,
        expires_at=reply.expires_at,
        seats=[_held_seat(record, seat) for seat in _seats(reply.seat_ids)],
        currency=record.currency,
        organizer_id=record.organizer_id,
        event_title=record.title,
        venue=record.location,
        event_starts_at=record.date,
        event_updated_at=record.updated_at,
        max_tickets_per_buyer=record.max_tickets_per_buyer,
    )


def _too_late() -> HoldTooLate:
    """A hold past its caller's ``not_after_ms``, counted: nothing is held."""
    SEAT_HOLDS.labels("too_late").inc()
    return HoldTooLate("the hold came after its caller stopped waiting; nothing is held")


def _refuse(event_id: int, request: HoldRequest, reply: HoldReply) -> None:
    """Raise the error a refused hold answers with (nothing if it was granted)."""
    if reply.status == "held":
        return
    if reply.status == "too_late":  # the same, by Redis's clock
        raise _too_late()
    if reply.status == "taken":
        SEAT_HOLDS.labels("conflict").inc()
        raise SeatsUnavailable(
            "some seats are already held or sold: " + ", ".join(reply.seat_ids[:20]),
            details={"seat_ids": reply.seat_ids},
        )
    if reply.status == "short":
        SEAT_HOLDS.labels("conflict").inc()
        raise SeatsUnavailable(
            f"only {reply.available} {request.ticket_class} seats are available",
            details={
                "seat_ids": [],
                "ticket_class": request.ticket_class,
                "requested": request.count,
                "available": reply.available,
            },
        )
    if reply.status == "reserved":
        SEAT_HOLDS.labels("conflict").inc()
        raise SeatsUnavailable(
            f"the {reply.ticket_class} seats that come free go to its waiting list first: "
            f"join it (POST /api/events/{event_id}/waitlist)",
            details={"seat_ids": [], "ticket_class": reply.ticket_class, "waitlist": True},
        )
    if reply.status == "unknown":
        SEAT_HOLDS.labels("unknown_seats").inc()
        raise UnknownSeats.of(reply.seat_ids, event_id)
    SEAT_HOLDS.labels("token_conflict").inc()
    if reply.status == "token_used":
        raise HoldTokenInUse("this hold token has already been confirmed")
    raise HoldTokenInUse("this hold token already holds other seats")


class SeatHolds:
    def __init__(self, session: AsyncSession, resources: EventResources) -> None:
        self._session = session
        self._gate = resources.gate
        self._settings = resources.settings
        self._events = EventService(session, resources)

    async def release_hold(self, event_id: int, token: str) -> int:
        """Give back what ``token`` holds (idempotent); returns the seats released."""
        released, has_confirmed = await self._gate.release(event_id, token)
        if has_confirmed:
            await self._undo_unrecorded_sale(event_id, token)
        return released

    async def _undo_unrecorded_sale(self, event_id: int, token: str) -> None:
        """The gate says ``token`` bought seats; if PostgreSQL has no such sale (its commit
        failed after the gate confirmed), the seats go back on sale. Under the row lock, so
        a confirmation still in flight is seen once it commits."""
        if await self._events.lock_or_none(event_id) is None:
            return
        recorded = await self._session.scalar(
            select(func.count())
            .select_from(SoldSeat)
            .where(SoldSeat.event_id == event_id, SoldSeat.hold_token == token)
        )
        if not recorded:
            returned = await self._gate.unsell(event_id, token)
            logger.warning(
                "gate sale without a PostgreSQL record undone",
                extra={"event_id": event_id, "seats": returned},
            )

    async def confirm_hold(self, event_id: int, token: str, booking_id: int) -> list[HeldSeat]:
        """Sell the token's held seats to ``booking_id``; idempotent for the same token."""
        record = await self._events.record(event_id)
        state = await self._gate.peek(event_id, token)
        if state.status == "gone":
            HOLD_CONFIRMS.labels("expired").inc()
            raise HoldExpired()
        if await self._session.scalar(_LOCK_EVENT, {"event_id": event_id}) is None:
            raise EventNotFound()
        if not await self._record_sale(event_id, state.seat_ids, booking_id, token):
            raise BookingReleased()
        confirmed = await self._gate.confirm(event_id, token)
        if confirmed.status != "confirmed":
            HOLD_CONFIRMS.labels("expired").inc()
            raise HoldExpired()
        if sorted(confirmed.seat_ids) != sorted(state.seat_ids):
            # The token was re-used for another hold between our two looks: refuse it all.
            await self._gate.unsell(event_id, token)
            raise HoldExpired()
        HOLD_CONFIRMS.labels("sold").inc()
        return [_held_seat(record, seat) for seat in _seats(confirmed.seat_ids)]

    # -- sales announced by booking_service ------------------------------------------------

    async def apply_booking_confirmed(self, message: BookingConfirmed) -> None:
        """Check that the booking's seats are sold; sell them only if they are not.

        booking_service confirms a sale through :meth:`confirm_hold` (the one writer)
        before it announces it, so the consumer's one statement (event_service/consumers.py)
        normally finds every seat sold and this never runs. It runs when a seat was not
        (a message from before the confirm call, or a confirm that recorded nothing): it
        counts again, without the event's row lock, and sells what is missing.
        """
        recorded, offer_taken = (
            await self._session.execute(
                _SOLD_TO_BOOKING, {"booking_id": message.booking_id, "event_id": message.event_id}
            )
        ).one()
        if offer_taken:
            WAITLIST_OFFERS.labels("taken").inc()
        if recorded == len(message.seats):
            return
        event = await self._events.lock_or_none(message.event_id)
        if event is None:
            logger.error(
                "booking_confirmed for an unknown event", extra={"event_id": message.event_id}
            )
            return
        if await self._session.get(ReleasedBooking, message.booking_id) is not None:
            logger.info(
                "booking_confirmed for a released booking ignored",
                extra={"booking_id": message.booking_id},
            )
            return
        seat_ids = [seat.seat_id for seat in message.seats]
        _check_layout(EventRecord.model_validate(event), seat_ids)
        logger.warning(
            "booking_confirmed for a sale confirm had not recorded; selling now",
            extra={"booking_id": message.booking_id, "recorded": recorded},
        )
        await self._record_sale(event.id, seat_ids, message.booking_id, message.hold_token)
        refused = await self._gate.sell(event.id, message.hold_token, seat_ids)
        if refused:
            logger.error(
                "seat gate had seats sold to another token; PostgreSQL disagrees",
                extra={"event_id": event.id, "seat_ids": refused},
            )

    async def apply_booking_cancelled(self, message: BookingCancelled) -> None:
        """A pending booking's hold is released; a confirmed booking's seats are un-sold."""
        if message.previous_status == "pending":
            await offer_lapsed(self._session, message.booking_id, message.reason)
            await self.release_hold(message.event_id, message.hold_token)
            return
        event = await self._events.lock_or_none(message.event_id)
        if event is None:
            return
        deleted = list(
            await self._session.execute(
                delete(SoldSeat)
                .where(SoldSeat.event_id == event.id, SoldSeat.booking_id == message.booking_id)
                .returning(SoldSeat.seat_id, SoldSeat.ticket_class)
            )
        )
        unsold: Counter[str] = Counter()
        unsold.subtract(row[1] for row in deleted)
        await self._adjust_sold(event.id, unsold)
        await self._session.execute(
            pg_insert(ReleasedBooking)
            .values(booking_id=message.booking_id, event_id=event.id)
            .on_conflict_do_nothing()
        )
        seat_ids = [row[0] for row in deleted] or list(message.seat_ids)
        await self._gate.unsell(event.id, message.hold_token, seat_ids)

    # -- PostgreSQL -----------------------------------------------------------------------

    async def _record_sale(
        self, event_id: int, seat_ids: Sequence[str], booking_id: int, token: str
    ) -> bool:
        """Insert the sold seats (a seat already sold to this booking is fine) and bump the
        class counters, whose CHECK keeps them within capacity, in one statement on the
        session's connection; False, changing nothing, if the booking was released. The
        caller holds the event's row lock, so every other sale of the event has committed
        and this statement sees it."""
        seats = _seats(seat_ids)
        conn = await driver_connection(self._session)
        try:
            row = await conn.fetchrow(
                _RECORD_SALE,
                event_id,
                booking_id,
                token,
                [seat.seat_id for seat in seats],
                [seat.ticket_class for seat in seats],
            )
        except asyncpg.CheckViolationError as exc:
            raise SeatsUnavailable(
                "the ticket class is sold out", details={"seat_ids": []}
            ) from exc
        assert row is not None
        if row["released"]:
            return False
        if row["foreign"]:
            foreign = sorted(row["foreign"])
            logger.error(
                "refused to sell seats already sold to another booking",
                extra={"event_id": event_id, "booking_id": booking_id, "seat_ids": foreign},
            )
            raise SeatsUnavailable(
                "seats already sold to another booking", details={"seat_ids": foreign}
            )
        return True

    async def _adjust_sold(self, event_id: int, deltas: Counter[str]) -> None:
        """Move the sold counters (a CHECK keeps them within capacity). A sale is not an
        edit of the event, so ``updated_at`` stays as it was."""
        if not deltas:
            return
        values: dict[str, Any] = {
            f"sold_{c}": getattr(Event, f"sold_{c}") + n for c, n in deltas.items()
        }
        await self._session.execute(
            update(Event)
            .where(Event.id == event_id)
            .values(**values, updated_at=Event.updated_at)
            .execution_options(synchronize_session=False)
        )
