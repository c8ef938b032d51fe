"""Dependencies of event_service's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from event_service.holds import SeatHolds
from event_service.service import EventResources, EventService
from ticketing_common.db import SessionDep
from ticketing_common.pagination import MAX_ID

EventId = Annotated[int, Path(ge=1, le=MAX_ID, description="event id")]


async def get_event_service(request: Request, session: SessionDep) -> EventService:
    return EventService(session, request.app.state.event_resources)


EventServiceDep = Annotated[EventService, Depends(get_event_service)]


async def get_seat_holds(request: Request, session: SessionDep) -> SeatHolds:
    return SeatHolds(session, request.app.state.event_resources)


SeatHoldsDep = Annotated[SeatHolds, Depends(get_seat_holds)]


async def get_resources(request: Request) -> EventResources:
    resources: EventResources = request.app.state.event_resources
    return resources


#: for routes that need no session of their own (the hold: one Redis script)
ResourcesDep = Annotated[EventResources, Depends(get_resources)]
