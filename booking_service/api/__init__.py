"""booking_service HTTP routes."""

from fastapi import APIRouter

from booking_service.api import bookings, internal

router = APIRouter()
router.include_router(bookings.router)
router.include_router(internal.router)
