"""Public event reads and the organizer's writes (``/api/events``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response

from event_service.api.deps import EventId, EventServiceDep, ResourcesDep
from event_service.schemas import (
    EventCreate,
    EventPublic,
    EventSaved,
    EventUpdate,
    OrganizerEvent,
    SeatMap,
)
from event_service.seat_map import seat_map_response
from event_service.service import EventFilters
from ticketing_common.app import error_responses
from ticketing_common.pagination import DEFAULT_LIMIT, Limit, Offset, set_total_count
from ticketing_common.security import CurrentUser, OrganizerOrAdmin

router = APIRouter(prefix="/api/events", tags=["events"])


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@router.get(
    "",
    response_model=list[EventPublic],
    summary="List events, newest first",
    description="A bare array, as the original's (total in `X-Total-Count`); without "
    "`limit`, up to 1,000 events.",
)
async def list_events(
    events: EventServiceDep,
    resources: ResourcesDep,
    response: Response,
    q: Annotated[
        str | None, Query(max_length=200, description="text in title, description or location")
    ] = None,
    location: Annotated[str | None, Query(max_length=200)] = None,
    date_from: Annotated[
        datetime | None, Query(alias="from", description="events on or after")
    ] = None,
    date_to: Annotated[
        datetime | None, Query(alias="to", description="events on or before")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[EventPublic]:
    filters = EventFilters(
        q=q or None,
        location=location or None,
        date_from=_utc(date_from),
        date_to=_utc(date_to),
        limit=limit,
        offset=offset,
    )
    found, total = await events.list_events(filters)
    set_total_count(response, total)
    max_age = resources.settings.public_list_max_age_seconds
    if max_age:
        # The gateway micro-caches the public list for this long (nginx proxy_cache).
        response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return found


@router.get(
    "/my",
    response_model=list[OrganizerEvent],
    summary="The organizer's own events",
    description="A bare array, as the original's (total in `X-Total-Count`).",
)
async def my_events(
    events: EventServiceDep,
    organizer: OrganizerOrAdmin,
    response: Response,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[OrganizerEvent]:
    found, total = await events.organizer_events(organizer, limit, offset)
    set_total_count(response, total)
    return found


@router.post("", status_code=201, response_model=EventSaved, summary="Create an event")
async def create_event(
    body: EventCreate,
    organizer: OrganizerOrAdmin,
    events: EventServiceDep,
    after_commit: BackgroundTasks,
) -> EventSaved:
    event = await events.create_event(organizer, body)
    after_commit.add_task(events.settle_cache, event.id)
    return EventSaved(message="event created", event=event)


@router.get("/{event_id}", response_model=EventPublic, summary="An event with live availability")
async def get_event(event_id: EventId, events: EventServiceDep) -> EventPublic:
    return await events.public_event(event_id)


@router.put(
    "/{event_id}",
    response_model=EventSaved,
    summary="Update an event (owner only)",
    description=(
        "Capacity may not drop below the seats held or sold, and once any seat is held or "
        "sold the date may not move closer than `RESCHEDULE_MIN_NOTICE_SECONDS` (24 h) to "
        "now (409 `reschedule_too_soon`). A new date or venue is announced as `event_changed`."
    ),
    responses=error_responses(403, 409),
)
async def update_event(
    event_id: EventId,
    body: EventUpdate,
    user: CurrentUser,
    events: EventServiceDep,
    after_commit: BackgroundTasks,
) -> EventSaved:
    event = await events.update_event(user, event_id, body)
    after_commit.add_task(events.settle_cache, event_id)
    return EventSaved(message="event updated", event=event)


@router.get(
    "/{event_id}/seats",
    response_model=SeatMap,
    summary="Seat map: every seat with its status (available, held, sold)",
    description=(
        "Always current: it shows every hold, release and sale made before the request. "
        "Answers with an `ETag` (the seat map's version); send it back in `If-None-Match` "
        "to get `304 Not Modified` while nothing changed. Gzipped for clients that accept it."
    ),
    responses={304: {"description": "Not modified since the `If-None-Match` version"}},
)
async def seat_map(event_id: EventId, resources: ResourcesDep, request: Request) -> Response:
    rendition = await resources.seat_maps.current(event_id)
    return seat_map_response(rendition, request.headers)
