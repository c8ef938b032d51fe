"""event_service HTTP routes."""

from fastapi import APIRouter

from event_service.api import events, internal, queue, waitlist

router = APIRouter()
# The hold and the confirm are the busiest routes of an on-sale: matched first.
router.include_router(internal.router)
router.include_router(events.router)
router.include_router(queue.router)
router.include_router(waitlist.router)
