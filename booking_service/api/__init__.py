"""booking_service HTTP routes."""

from fastapi import APIRouter

from booking_service.api import bookings, checkin, internal

router = APIRouter()
router.include_router(checkin.router)  # before /api/bookings/{booking_id}
router.include_router(bookings.router)
router.include_router(internal.router)
