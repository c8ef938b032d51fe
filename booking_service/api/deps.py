"""Dependencies shared by the booking routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from booking_service.resources import BookingResources, resources_of
from ticketing_common.internal.clients import EventsApi
from ticketing_common.pagination import DbId

BookingId = DbId
EventId = DbId


async def get_resources(request: Request) -> BookingResources:
    return resources_of(request.app)


async def get_events(request: Request) -> EventsApi:
    return resources_of(request.app).events


ResourcesDep = Annotated[BookingResources, Depends(get_resources)]
EventsDep = Annotated[EventsApi, Depends(get_events)]
