"""Dependencies shared by the booking routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request, Response

from booking_service.event_client import EventClient, event_client_of
from booking_service.settings import BookingSettings

#: ids are BIGINT: anything larger is a 400, not a database error
MAX_ID = 2**63 - 1
TOTAL_COUNT_HEADER = "X-Total-Count"

BookingId = Annotated[int, Path(ge=1, le=MAX_ID)]
EventId = Annotated[int, Path(ge=1, le=MAX_ID)]


def app_settings(request: Request) -> BookingSettings:
    settings: BookingSettings = request.app.state.settings
    return settings


def get_events(request: Request) -> EventClient:
    return event_client_of(request.app)


SettingsDep = Annotated[BookingSettings, Depends(app_settings)]
EventsDep = Annotated[EventClient, Depends(get_events)]


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int

    def answer_total(self, response: Response, total: int) -> None:
        response.headers[TOTAL_COUNT_HEADER] = str(total)


def page_params(
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


PageDep = Annotated[Page, Depends(page_params)]
