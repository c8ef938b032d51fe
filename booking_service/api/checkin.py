"""``/api/bookings/checkin``: tickets checked in at the door, online or uploaded from an
offline door, and what the organizer sees of it (issue 19)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from booking_service import checkin
from booking_service.api.deps import EventId, ResourcesDep
from booking_service.schemas import (
    CheckinBatch,
    CheckinBatchOut,
    CheckinOut,
    CheckinRequest,
    CheckinStats,
    DoorList,
)
from ticketing_common.db import SessionDep
from ticketing_common.security import OrganizerOrAdmin

router = APIRouter(prefix="/api/bookings/checkin", tags=["check-in"])

_NOT_THE_ORGANIZER: dict[int | str, dict[str, Any]] = {
    403: {"description": "not the event's organizer nor an admin"}
}


@router.post(
    "",
    responses={
        **_NOT_THE_ORGANIZER,
        404: {"description": "the event the door names does not exist"},
    },
)
async def check_in(
    body: CheckinRequest,
    principal: OrganizerOrAdmin,
    session: SessionDep,
    resources: ResourcesDep,
) -> CheckinOut:
    """Check a scanned ticket code in: `ok` once per seat, however many doors scan it at
    once; then `already_checked_in` with the first time. `invalid`, `cancelled` and
    `wrong_event` let nobody in."""
    return await checkin.check_in(
        session, resources.events, principal, body, resources.settings.ticket_signing_secret
    )


@router.post(
    "/batch",
    responses={
        **_NOT_THE_ORGANIZER,
        404: {"description": "no such event"},
        422: {"description": "more scans than one upload takes, or a scan dated after now"},
    },
)
async def check_in_offline(
    body: CheckinBatch,
    principal: OrganizerOrAdmin,
    session: SessionDep,
    resources: ResourcesDep,
) -> CheckinBatchOut:
    """Upload an offline door's scans: each seat's earliest scan is its check-in."""
    return await checkin.check_in_offline(
        session, resources.events, principal, body, resources.settings.ticket_signing_secret
    )


@router.get("/{event_id}/stats", responses=_NOT_THE_ORGANIZER)
async def checkin_stats(
    event_id: EventId, principal: OrganizerOrAdmin, session: SessionDep, resources: ResourcesDep
) -> CheckinStats:
    return await checkin.checkin_stats(session, resources.events, principal, event_id)


@router.get("/{event_id}/list", responses=_NOT_THE_ORGANIZER)
async def door_list(
    event_id: EventId, principal: OrganizerOrAdmin, session: SessionDep, resources: ResourcesDep
) -> DoorList:
    """Every ticket code of the event, for a door that checks tickets in offline."""
    return await checkin.door_list(
        session, resources.events, principal, event_id, resources.settings.ticket_signing_secret
    )
