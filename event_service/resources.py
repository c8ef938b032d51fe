"""What every request and message handler of event_service shares (one per app)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from event_service.cache import EventCache
from event_service.seat_gate import SeatGate
from event_service.seat_map import SeatMaps
from event_service.settings import EventSettings

if TYPE_CHECKING:  # the room's module uses these resources
    from event_service.waiting_room import WaitingRoom


@dataclass(frozen=True, slots=True)
class EventResources:
    """Built once by the app's lifecycle (``event_service.app``)."""

    gate: SeatGate
    cache: EventCache
    settings: EventSettings
    sessionmaker: async_sessionmaker[AsyncSession]
    seat_maps: SeatMaps
    waiting_room: WaitingRoom


def resources_of(app: Any) -> EventResources:
    resources: EventResources = app.state.event_resources
    return resources
