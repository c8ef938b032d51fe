"""Service-to-service routes (``/internal/events``): never routed by the gateway, and
refused without the shared service token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from event_service import holds
from event_service.api.deps import EventId, EventServiceDep, ResourcesDep, SeatHoldsDep
from event_service.schemas import EventInternal
from ticketing_common.app import error_responses
from ticketing_common.internal.models import (
    HOLD_TOKEN_PATTERN,
    ConfirmOut,
    ConfirmRequest,
    HoldGranted,
    HoldRequest,
)
from ticketing_common.security import ServiceCaller

router = APIRouter(prefix="/internal/events", tags=["internal"], dependencies=[ServiceCaller])

HoldToken = Annotated[str, Path(pattern=HOLD_TOKEN_PATTERN)]


@router.get("/{event_id}", response_model=EventInternal)
async def get_event(event_id: EventId, events: EventServiceDep) -> EventInternal:
    return await events.internal_event(event_id)


@router.post(
    "/{event_id}/holds",
    status_code=201,
    response_model=HoldGranted,
    responses=error_responses(409),
)
async def hold_seats(event_id: EventId, body: HoldRequest, resources: ResourcesDep) -> HoldGranted:
    """All-or-nothing hold; the same token and request again returns the same hold."""
    return await holds.hold_seats(resources, event_id, body)


@router.delete("/{event_id}/holds/{token}", status_code=204)
async def release_hold(event_id: EventId, token: HoldToken, holds: SeatHoldsDep) -> Response:
    await holds.release_hold(event_id, token)
    return Response(status_code=204)


@router.post(
    "/{event_id}/holds/{token}/confirm", response_model=ConfirmOut, responses=error_responses(409)
)
async def confirm_hold(
    event_id: EventId, token: HoldToken, body: ConfirmRequest, holds: SeatHoldsDep
) -> ConfirmOut:
    seats = await holds.confirm_hold(event_id, token, body.booking_id)
    return ConfirmOut(seats=seats)
