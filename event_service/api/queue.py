"""The on-sale's waiting room (``/api/events/{id}/queue``, issue 20)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from event_service.api.deps import EventId, ResourcesDep
from event_service.errors import NotEventOwner, NotInQueue, QueueNotEnabled
from event_service.schemas import QueuePlace, QueueStats
from event_service.service import event_record
from event_service.waiting_room import Place
from ticketing_common.app import error_responses
from ticketing_common.security import CurrentUser, Role

router = APIRouter(prefix="/api/events", tags=["waiting room"])


def _out(place: Place) -> QueuePlace:
    return QueuePlace.model_validate(place, from_attributes=True)


@router.post(
    "/{event_id}/queue",
    response_model=QueuePlace,
    status_code=201,
    summary="Take a place in the event's waiting room",
    description=(
        "One place per account: 201 the first time, 200 after (the same place). Arrivals "
        "before `onsale_at` are shuffled into a random order, later ones queue in order. "
        "Poll `GET .../queue/me` every `poll_after_s` for the pass. A buyer whose pass "
        "lapsed unused joins again at the end."
    ),
    responses=error_responses(404, 409),
)
async def join_queue(
    event_id: EventId, principal: CurrentUser, resources: ResourcesDep, response: Response
) -> QueuePlace:
    record = await event_record(resources, event_id)
    place = await resources.waiting_room.join(record, principal.user_id)
    if not place.new:
        response.status_code = 200
    return _out(place)


@router.get(
    "/{event_id}/queue/me",
    response_model=QueuePlace,
    summary="The caller's place, and once admitted the pass",
    description=(
        "`status`: `waiting` (before the on-sale; the position is provisional until then), "
        "`queued`, `admitted` (with `pass`: send it as `X-Queue-Pass` with "
        "`POST /api/bookings` before `pass_expires_at`), `expired` (join again) or "
        "`sold_out`."
    ),
    responses=error_responses(404, 409),
)
async def my_place(
    event_id: EventId, principal: CurrentUser, resources: ResourcesDep
) -> QueuePlace:
    record = await event_record(resources, event_id)
    place = await resources.waiting_room.place(record, principal.user_id)
    if place is None:
        raise NotInQueue()
    return _out(place)


@router.get(
    "/{event_id}/queue",
    response_model=QueueStats,
    summary="The room at a glance (the event's organizer or an admin)",
    responses=error_responses(403, 404, 409),
)
async def queue_stats(
    event_id: EventId, principal: CurrentUser, resources: ResourcesDep
) -> QueueStats:
    record = await event_record(resources, event_id)
    if principal.role is not Role.ADMIN and principal.user_id != record.organizer_id:
        raise NotEventOwner("only the event's organizer may see its waiting room")
    if not record.queue_enabled:
        raise QueueNotEnabled()
    stats = await resources.waiting_room.stats(record)
    return QueueStats.model_validate(stats, from_attributes=True)
