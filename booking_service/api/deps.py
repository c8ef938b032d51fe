"""Dependencies shared by the booking routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from booking_service.event_client import EventClient, event_client_of
from booking_service.settings import BookingSettings
from ticketing_common.pagination import DbId

BookingId = DbId
EventId = DbId


async def app_settings(request: Request) -> BookingSettings:
    settings: BookingSettings = request.app.state.settings
    return settings


async def get_events(request: Request) -> EventClient:
    return event_client_of(request.app)


SettingsDep = Annotated[BookingSettings, Depends(app_settings)]
EventsDep = Annotated[EventClient, Depends(get_events)]
