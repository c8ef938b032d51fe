"""event_service application factory (`python -m ticketing_common.serve event_service`)."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Sequence

from fastapi import FastAPI

from event_service.api import router
from event_service.cache import EventCache
from event_service.consumers import SUBSCRIPTIONS
from event_service.resources import EventResources
from event_service.seat_gate import HoldsSource, RestoredHold, SeatGate
from event_service.seat_map import SeatMaps
from event_service.service import locked_layout
from event_service.settings import EventSettings, get_settings
from event_service.waiting_room import WaitingRoom, admission_lifecycle
from event_service.waitlist import waitlist_lifecycle
from ticketing_common.app import create_service_app
from ticketing_common.errors import ServiceUnavailable, UpstreamError
from ticketing_common.internal.clients import BookingsApi
from ticketing_common.messaging import messaging_lifecycle

logger = logging.getLogger("event_service.app")

DESCRIPTION = (
    "Events with Normal, VIP and VVIP seats, their seat maps, and the atomic seat holds "
    "booking_service takes (internal API)."
)


def pending_holds_of(bookings: BookingsApi) -> HoldsSource:
    """The live holds booking_db records for an event, for a gate rebuild to restore.

    If booking_service can't say, the gate is rebuilt without them (a warning): seats are
    then on offer again, and booking_db's unique index on active seats still refuses a
    second booking of one, as it did before holds were restored.
    """

    async def holds(event_id: int) -> Sequence[RestoredHold]:
        try:
            live = await bookings.live_holds(event_id)
        except (ServiceUnavailable, UpstreamError) as exc:
            logger.warning(
                "seat gate rebuilt without pending holds: booking_service did not answer",
                extra={"event_id": event_id, "error": exc.message},
            )
            return ()
        return [RestoredHold(h.token, h.seat_ids, h.expires_at) for h in live.holds]

    return holds


@contextlib.asynccontextmanager
async def event_resources_lifecycle(app: FastAPI) -> AsyncIterator[None]:
    """The seat gate (its Lua scripts registered once) and the read caches."""
    settings: EventSettings = app.state.settings
    gate = SeatGate(
        app.state.redis,
        functools.partial(locked_layout, app.state.sessionmaker),
        holds_source=pending_holds_of(BookingsApi.of(app.state.http, settings)),
        rebuild_wait_seconds=settings.gate_rebuild_wait_seconds,
    )
    cache = EventCache(
        app.state.redis,
        event_ttl=settings.event_cache_ttl_seconds,
        list_ttl=settings.event_list_cache_ttl_seconds,
    )
    seat_maps = SeatMaps(gate, max_bytes=settings.seat_map_cache_bytes)
    waiting_room = WaitingRoom(
        app.state.redis,
        secret=settings.jwt_secret,
        pass_ttl_seconds=settings.queue_pass_ttl_seconds,
        default_rate=settings.queue_admit_per_minute,
    )
    app.state.event_resources = EventResources(
        gate, cache, settings, app.state.sessionmaker, seat_maps, waiting_room
    )
    yield


def create_app(settings: EventSettings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings or get_settings(),
        routers=[router],
        description=DESCRIPTION,
        lifecycles=[
            event_resources_lifecycle,
            messaging_lifecycle(subscriptions=SUBSCRIPTIONS),
            admission_lifecycle,
            waitlist_lifecycle,
        ],
    )
