"""Dependencies of event_service's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from event_service.holds import SeatHolds
from event_service.resources import EventResources, resources_of
from event_service.service import EventService
from ticketing_common.db import SessionDep
from ticketing_common.pagination import MAX_ID

EventId = Annotated[int, Path(ge=1, le=MAX_ID, description="event id")]


async def get_event_service(request: Request, session: SessionDep) -> EventService:
    return EventService(session, resources_of(request.app))


EventServiceDep = Annotated[EventService, Depends(get_event_service)]


async def get_seat_holds(request: Request, session: SessionDep) -> SeatHolds:
    return SeatHolds(session, resources_of(request.app))


SeatHoldsDep = Annotated[SeatHolds, Depends(get_seat_holds)]


async def get_resources(request: Request) -> EventResources:
    resources: EventResources = resources_of(request.app)
    return resources


#: for routes that need no session of their own (the hold: one Redis script)
ResourcesDep = Annotated[EventResources, Depends(get_resources)]
