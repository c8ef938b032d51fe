"""``/internal/bookings``: booking lookups for payment_service and notification_service, and
the live holds event_service restores when it rebuilds a seat gate, and the pending
bookings of its waiting lists' offers."""

from __future__ import annotations

from fastapi import APIRouter, Request

from booking_service import reads
from booking_service.api.deps import BookingId, EventId
from booking_service.create import create_offer
from booking_service.resources import resources_of
from ticketing_common.db import SessionDep, pg_pool_of
from ticketing_common.internal.models import (
    BookingView,
    LiveHolds,
    WaitlistOffer,
    WaitlistOfferRequest,
)
from ticketing_common.security import ServiceCaller

router = APIRouter(prefix="/internal/bookings", tags=["internal"], dependencies=[ServiceCaller])


@router.get("/holds/{event_id}")
async def live_holds(event_id: EventId, session: SessionDep) -> LiveHolds:
    """Holds of the event's pending bookings that have not run out."""
    return LiveHolds(event_id=event_id, holds=await reads.live_holds(session, event_id))


@router.post("/offers")
async def waitlist_offer(body: WaitlistOfferRequest, request: Request) -> WaitlistOffer:
    """A pending booking for a waiting list's entry (event_service's offers, issue 19)."""
    return await create_offer(resources_of(request.app), body)


@router.get("/{booking_id}")
async def get_booking(booking_id: BookingId, request: Request) -> BookingView:
    return await reads.booking_view(pg_pool_of(request.app), booking_id)
