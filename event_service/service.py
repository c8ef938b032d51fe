"""event_service domain logic: events and their live availability.

Public reads come from the Redis cache (:mod:`event_service.cache`) plus the live counts
of the seat gate; organizer writes go to PostgreSQL, reshape the gate and announce a new
date or venue. Holds and sales are in :mod:`event_service.holds`, seat maps in
:mod:`event_service.seat_map`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from event_service.errors import (
    CapacityInUse,
    EventNotFound,
    NotEventOwner,
    RescheduleTooSoon,
)
from event_service.models import Event, SoldSeat
from event_service.resources import EventResources
from event_service.schemas import (
    MAX_SEATS_PER_EVENT,
    EventCreate,
    EventInternal,
    EventListPage,
    EventPublic,
    EventRecord,
    EventUpdate,
    OrganizerEvent,
)
from event_service.seat_gate import GateLayout, GateUnavailable
from ticketing_common.db import utcnow
from ticketing_common.errors import BadRequest
from ticketing_common.messaging import publish
from ticketing_common.messaging.contracts import EventChanged
from ticketing_common.pagination import DEFAULT_LIMIT
from ticketing_common.seats import TICKET_CLASSES
from ticketing_common.security import Principal

logger = logging.getLogger("event_service.service")

LAYOUT_FIELDS = frozenset({"seats_normal", "seats_vip", "seats_vvip", "seats_per_row"})


@dataclass(frozen=True, slots=True)
class EventFilters:
    q: str | None = None
    location: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def cache_key(self) -> dict[str, Any]:
        return {
            "q": self.q,
            "location": self.location,
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "limit": self.limit,
            "offset": self.offset,
        }

    def conditions(self) -> list[ColumnElement[bool]]:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise BadRequest("'from' must not be after 'to'")
        conditions: list[ColumnElement[bool]] = []
        if self.q:
            pattern = _contains(self.q)
            conditions.append(
                or_(
                    Event.title.ilike(pattern, escape="\\"),
                    Event.description.ilike(pattern, escape="\\"),
                    Event.location.ilike(pattern, escape="\\"),
                )
            )
        if self.location:
            conditions.append(Event.location.ilike(_contains(self.location), escape="\\"))
        if self.date_from:
            conditions.append(Event.date >= self.date_from)
        if self.date_to:
            conditions.append(Event.date <= self.date_to)
        return conditions


def _contains(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _capacity(event: Event | EventRecord) -> dict[str, int]:
    return {c: getattr(event, f"seats_{c}") for c in TICKET_CLASSES}


@asynccontextmanager
async def locked_layout(
    sessionmaker: async_sessionmaker[AsyncSession], event_id: int
) -> AsyncIterator[GateLayout | None]:
    """The layout and sales PostgreSQL knows, read and held under the event's row lock.

    Confirmations and sales take the same lock, so none can slip in between this read and
    the gate rebuild that follows it.
    """
    async with sessionmaker() as session, session.begin():
        event = await session.get(Event, event_id, with_for_update=True)
        if event is None:
            yield None
            return
        sold = await session.execute(
            select(SoldSeat.seat_id, SoldSeat.hold_token).where(SoldSeat.event_id == event_id)
        )
        yield GateLayout(
            event.seats_per_row, _capacity(event), [(seat, token) for seat, token in sold]
        )


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600} hours"
    return f"{seconds} seconds"


@dataclass(frozen=True, slots=True)
class TimeAndPlace:
    """What buyers must hear of when it changes: when and where the event takes place."""

    date: datetime
    venue: str

    @classmethod
    def of(cls, event: Event) -> TimeAndPlace:
        return cls(event.date, event.location)

    def changed_to(self, after: TimeAndPlace, event: Event) -> EventChanged:
        return EventChanged(
            event_id=event.id,
            organizer_id=event.organizer_id,
            title=event.title,
            old_date=self.date,
            new_date=after.date,
            old_venue=self.venue,
            new_venue=after.venue,
            changed_at=utcnow(),
        )


async def event_record(resources: EventResources, event_id: int) -> EventRecord:
    """The event (cached); 404 if there is none. Needs no session of the caller's: a cache
    load runs in a session of its own, and concurrent misses share one load."""

    async def load() -> EventRecord | None:
        async with resources.sessionmaker() as session:
            event = await session.get(Event, event_id)
            return None if event is None else EventRecord.model_validate(event)

    record = await resources.cache.event(event_id, load)
    if record is None:
        raise EventNotFound()
    return record


class EventService:
    def __init__(self, session: AsyncSession, resources: EventResources) -> None:
        self._resources = resources
        self._session = session
        self._gate = resources.gate
        self._cache = resources.cache
        self._settings = resources.settings
        self._sessionmaker = resources.sessionmaker

    # -- reads ------------------------------------------------------------------------

    async def record(self, event_id: int) -> EventRecord:
        return await event_record(self._resources, event_id)

    async def public_event(self, event_id: int) -> EventPublic:
        record = await self.record(event_id)
        [available] = await self._availability([record])
        result: EventPublic = EventPublic.build(record, available)
        return result

    async def internal_event(self, event_id: int) -> EventInternal:
        record = await self.record(event_id)
        [available] = await self._availability([record])
        result: EventInternal = EventInternal.build(record, available)
        return result

    async def list_events(self, filters: EventFilters) -> tuple[list[EventPublic], int]:
        conditions = filters.conditions()
        page = await self._cache.event_list(
            filters.cache_key(), lambda: self._query_events(conditions, filters)
        )
        available = await self._availability(page.events)
        events = [EventPublic.build(r, a) for r, a in zip(page.events, available, strict=True)]
        return events, page.total

    async def organizer_events(
        self, organizer: Principal, limit: int, offset: int
    ) -> tuple[list[OrganizerEvent], int]:
        """The organizer's own events with their sales, straight from PostgreSQL."""
        mine = Event.organizer_id == organizer.user_id
        total = await self._session.scalar(select(func.count()).select_from(Event).where(mine))
        events = list(
            await self._session.scalars(
                select(Event)
                .where(mine)
                .order_by(Event.created_at.desc(), Event.id.desc())
                .limit(limit)
                .offset(offset)
            )
        )
        available = await self._availability([EventRecord.model_validate(e) for e in events])
        views = [self._organizer_view(e, a) for e, a in zip(events, available, strict=True)]
        return views, int(total or 0)

    async def _query_events(
        self, conditions: list[ColumnElement[bool]], filters: EventFilters
    ) -> EventListPage:
        async with self._sessionmaker() as session:
            total = await session.scalar(select(func.count()).select_from(Event).where(*conditions))
            events = await session.scalars(
                select(Event)
                .where(*conditions)
                .order_by(Event.created_at.desc(), Event.id.desc())
                .limit(filters.limit)
                .offset(filters.offset)
            )
            records = [EventRecord.model_validate(e) for e in events]
        return EventListPage(total=int(total or 0), events=records)

    async def _availability(self, records: Sequence[EventRecord]) -> list[dict[str, int]]:
        """Free seats per class from the gates; where a gate is not built (Redis lost it,
        and every hold with it) or Redis is unreachable, capacity minus PostgreSQL's sold
        counters."""
        live = await asyncio.gather(*(self._live_availability(r.id) for r in records))
        missing = [r.id for r, available in zip(records, live, strict=True) if available is None]
        sold: dict[int, dict[str, int]] = {}
        if missing:
            rows = await self._session.execute(
                select(Event.id, Event.sold_normal, Event.sold_vip, Event.sold_vvip).where(
                    Event.id.in_(missing)
                )
            )
            sold = {row[0]: dict(zip(TICKET_CLASSES, row[1:], strict=True)) for row in rows}
        result = []
        for record, available in zip(records, live, strict=True):
            if available is None:
                counts = sold.get(record.id, dict.fromkeys(TICKET_CLASSES, 0))
                available = {c: record.capacity()[c] - counts[c] for c in TICKET_CLASSES}
            result.append(available)
        return result

    async def _live_availability(self, event_id: int) -> dict[str, int] | None:
        try:
            return await self._gate.availability(event_id)
        except GateUnavailable:
            return None

    @staticmethod
    def _organizer_view(event: Event, available: dict[str, int]) -> OrganizerEvent:
        view: OrganizerEvent = OrganizerEvent.build(
            EventRecord.model_validate(event),
            available,
            sold_normal=event.sold_normal,
            sold_vip=event.sold_vip,
            sold_vvip=event.sold_vvip,
        )
        return view

    # -- organizer writes ---------------------------------------------------------------

    async def create_event(self, organizer: Principal, data: EventCreate) -> OrganizerEvent:
        prices = data.prices()
        event = Event(
            organizer_id=organizer.user_id,
            title=data.title,
            description=data.description,
            date=data.date,
            location=data.location,
            currency=self._settings.currency,
            seats_per_row=data.seats_per_row,
            max_tickets_per_buyer=data.max_tickets_per_buyer,
            queue_enabled=data.queue_enabled,
            onsale_at=data.onsale_at,
            queue_admit_per_minute=data.queue_admit_per_minute,
            price_normal=prices["normal"],
            price_vip=prices["vip"],
            price_vvip=prices["vvip"],
            seats_normal=data.seats_normal,
            seats_vip=data.seats_vip,
            seats_vvip=data.seats_vvip,
            sold_normal=0,
            sold_vip=0,
            sold_vvip=0,
        )
        self._session.add(event)
        await self._session.flush()
        capacity = _capacity(event)
        await self._gate.build(event.id, GateLayout(event.seats_per_row, capacity), replace=True)
        # Also gives the event its first version (ids are never reused, but a test database
        # may restart them, and a process may remember an older event of the same id).
        await self._cache.invalidate(event.id)
        await self._resources.waiting_room.clear(event.id)
        if event.queue_enabled:
            await self._resources.waiting_room.register(event.id)
        logger.info(
            "event created",
            extra={
                "event_id": event.id,
                "organizer_id": organizer.user_id,
                "seats": sum(capacity.values()),
            },
        )
        return self._organizer_view(event, capacity)

    async def settle_cache(self, event_id: int) -> None:
        """After the commit of a create or update: the public caches may fill again."""
        await self._cache.settle(event_id)

    async def update_event(
        self, organizer: Principal, event_id: int, data: EventUpdate
    ) -> OrganizerEvent:
        """Partial update by the owner. Prices apply to new holds only: bookings keep the
        price they were made at. Seats are cut from the end of a class, never below what
        is held or sold; seats_per_row renames every seat, so it changes only while none
        is held or sold. Once a seat is held or sold the date may not move closer than
        ``RESCHEDULE_MIN_NOTICE_SECONDS`` to now; a new date or venue is announced
        (``event_changed``) in the same transaction."""
        event = await self._session.get(Event, event_id)
        if event is None:
            raise EventNotFound()
        if event.organizer_id != organizer.user_id:
            raise NotEventOwner()
        changes = data.with_total_seats(event.seats_vip, event.seats_vvip)
        relayout = any(changes[f] != getattr(event, f) for f in LAYOUT_FIELDS & changes.keys())
        notice = timedelta(seconds=self._settings.reschedule_min_notice_seconds)
        new_date = changes.get("date")
        too_soon = new_date not in (None, event.date) and new_date < utcnow() + notice
        if relayout or too_soon:
            # Before the row lock: a rebuild takes that lock itself.
            await self._gate.ensure_loaded(event_id)
        event = await self.lock(event_id)
        # (again on the locked row: the class sizes total_seats is reckoned from are final)
        changes = data.with_total_seats(event.seats_vip, event.seats_vvip)
        before = TimeAndPlace.of(event)
        if too_soon:
            await self._refuse_if_tickets_out(event, notice)
        for name, value in changes.items():
            setattr(event, name, value)
        if event.onsale_at is not None and event.onsale_at >= event.date:
            raise BadRequest("onsale_at must be before the event's date")
        total = sum(_capacity(event).values())
        if not 1 <= total <= MAX_SEATS_PER_EVENT:
            raise BadRequest(f"an event needs between 1 and {MAX_SEATS_PER_EVENT} seats")
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise CapacityInUse("capacity cannot drop below the seats already sold") from exc
        if relayout:
            await self._resize_gate(event)
        after = TimeAndPlace.of(event)
        if after != before:
            await publish(self._session, "event_changed", before.changed_to(after, event))
        await self._cache.invalidate(event_id)
        if event.queue_enabled:  # (again: a room turned off and on keeps its queue)
            await self._resources.waiting_room.register(event_id)
        [available] = await self._availability([EventRecord.model_validate(event)])
        return self._organizer_view(event, available)

    async def _refuse_if_tickets_out(self, event: Event, notice: timedelta) -> None:
        """A new date within ``notice`` of now is refused once any seat is held or sold.
        The caller holds the row lock, so no sale slips in; a hold still can, and its
        booking hears of the change through ``event_changed``."""
        capacity = _capacity(event)
        available = await self._gate.availability(event.id) or capacity
        taken = sum(capacity.values()) - sum(available.values())
        sold = event.sold_normal + event.sold_vip + event.sold_vvip
        if taken or sold:
            raise RescheduleTooSoon(
                "seats of this event are held or sold: its date may not move closer than "
                f"{_duration(notice)} to now",
                details={"earliest_date": (utcnow() + notice).isoformat()},
            )

    async def _resize_gate(self, event: Event) -> None:
        reply = await self._gate.resize(event.id, event.seats_per_row, _capacity(event))
        if reply.ok:
            return
        if reply.layout_in_use:
            raise CapacityInUse("seats_per_row cannot change once seats are held or sold")
        raise CapacityInUse(
            f"{reply.ticket_class} capacity cannot drop below sold + held "
            f"({reply.taken} seats), and the seats removed must all be free",
            details={
                "ticket_class": reply.ticket_class,
                "sold_and_held": reply.taken,
                "taken_beyond_new_capacity": reply.taken_beyond_cut,
            },
        )

    async def lock(self, event_id: int) -> Event:
        """The event's row, locked until the transaction ends (404 if there is none)."""
        event = await self.lock_or_none(event_id)
        if event is None:
            raise EventNotFound()
        return event

    async def lock_or_none(self, event_id: int) -> Event | None:
        return await self._session.get(
            Event, event_id, with_for_update=True, populate_existing=True
        )
