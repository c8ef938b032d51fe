"""``/internal/bookings``: booking lookups for payment_service and notification_service."""

from __future__ import annotations

from fastapi import APIRouter

from booking_service import service
from booking_service.api.deps import BookingId
from booking_service.schemas import InternalBookingOut
from ticketing_common.db import SessionDep
from ticketing_common.security import ServiceCaller

router = APIRouter(prefix="/internal/bookings", tags=["internal"], dependencies=[ServiceCaller])


@router.get("/{booking_id}")
async def get_booking(booking_id: BookingId, session: SessionDep) -> InternalBookingOut:
    booking = await service.get_booking(session, booking_id)
    return InternalBookingOut.model_validate(booking)
