"""event_service HTTP routes."""

from fastapi import APIRouter

from event_service.api import events, internal

router = APIRouter()
router.include_router(events.router)
router.include_router(internal.router)
