"""event_service application factory (`uvicorn --factory event_service.app:create_app`)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator

from fastapi import FastAPI

from event_service.api import router
from event_service.cache import EventCache
from event_service.consumers import SUBSCRIPTIONS
from event_service.seat_gate import SeatGate
from event_service.service import EventResources, locked_layout
from event_service.settings import EventSettings, get_settings
from ticketing_common.app import create_service_app
from ticketing_common.messaging import messaging_lifecycle

DESCRIPTION = (
    "Events with Normal, VIP and VVIP seats, their seat maps, and the atomic seat holds "
    "booking_service takes (internal API)."
)


@contextlib.asynccontextmanager
async def event_resources_lifecycle(app: FastAPI) -> AsyncIterator[None]:
    """The seat gate (its Lua scripts registered once) and the read caches."""
    settings: EventSettings = app.state.settings
    gate = SeatGate(
        app.state.redis,
        functools.partial(locked_layout, app.state.sessionmaker),
        rebuild_wait_seconds=settings.gate_rebuild_wait_seconds,
    )
    cache = EventCache(
        app.state.redis,
        event_ttl=settings.event_cache_ttl_seconds,
        list_ttl=settings.event_list_cache_ttl_seconds,
    )
    app.state.event_resources = EventResources(gate, cache, settings, app.state.sessionmaker)
    yield


def create_app(settings: EventSettings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings or get_settings(),
        routers=[router],
        description=DESCRIPTION,
        lifecycles=[
            event_resources_lifecycle,
            messaging_lifecycle(subscriptions=SUBSCRIPTIONS, relay=False),
        ],
    )
