"""Dependencies shared by the booking routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from booking_service.resources import BookingResources, resources_of
from ticketing_common.internal.clients import EventsApi
from ticketing_common.pagination import DbId, Offset, Page

BookingId = DbId
EventId = DbId

#: A booking list without ``limit`` answers whole, up to this many (newest first), as the
#: original's did (it paged nothing); ``X-Total-Count`` tells when there are more.
LIST_CAP = 1000

ListLimit = Annotated[
    int,
    Query(
        ge=1,
        le=LIST_CAP,
        description=f"page size; without it the whole list, up to {LIST_CAP} bookings",
    ),
]


async def get_resources(request: Request) -> BookingResources:
    return resources_of(request.app)


async def get_events(request: Request) -> EventsApi:
    return resources_of(request.app).events


async def list_page(limit: ListLimit = LIST_CAP, offset: Offset = 0) -> Page:
    return Page(limit=limit, offset=offset)


ResourcesDep = Annotated[BookingResources, Depends(get_resources)]
EventsDep = Annotated[EventsApi, Depends(get_events)]
ListPageDep = Annotated[Page, Depends(list_page)]
