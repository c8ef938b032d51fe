"""Dependencies shared by the notification routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from notification_service.resources import NotificationResources, resources_of
from ticketing_common.pagination import DbId

BookingId = DbId


async def get_resources(request: Request) -> NotificationResources:
    return resources_of(request.app)


ResourcesDep = Annotated[NotificationResources, Depends(get_resources)]
