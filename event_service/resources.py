"""What every request and message handler of event_service shares (one per app)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from event_service.cache import EventCache
from event_service.seat_gate import SeatGate
from event_service.seat_map import SeatMaps
from event_service.settings import EventSettings


@dataclass(frozen=True, slots=True)
class EventResources:
    """Built once by the app's lifecycle (``event_service.app``)."""

    gate: SeatGate
    cache: EventCache
    settings: EventSettings
    sessionmaker: async_sessionmaker[AsyncSession]
    seat_maps: SeatMaps


def resources_of(app: Any) -> EventResources:
    resources: EventResources = app.state.event_resources
    return resources
