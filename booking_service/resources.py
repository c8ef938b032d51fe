"""What every request and message handler of booking_service shares (one per app)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking_service.settings import BookingSettings
from ticketing_common.db import pg_pool_of
from ticketing_common.errors import ServiceUnavailable, UpstreamError
from ticketing_common.internal.clients import EventsApi

logger = logging.getLogger("booking_service.resources")


@dataclass(frozen=True)
class BookingResources:
    settings: BookingSettings
    #: ORM sessions for everything but the hot write
    sessionmaker: async_sessionmaker[AsyncSession]
    #: asyncpg for the hot write (``store.py``) and idempotency-key lookups
    pg: asyncpg.Pool
    events: EventsApi


def resources_of(app: Any) -> BookingResources:
    resources: BookingResources = app.state.booking_resources
    return resources


@contextlib.asynccontextmanager
async def booking_resources_lifecycle(app: FastAPI) -> AsyncIterator[None]:
    settings: BookingSettings = app.state.settings
    app.state.booking_resources = BookingResources(
        settings=settings,
        sessionmaker=app.state.sessionmaker,
        pg=pg_pool_of(app),
        events=EventsApi.of(app.state.http, settings),
    )
    yield


async def release_hold_quietly(events: EventsApi, event_id: int, token: str) -> bool:
    """Best effort: the booking's outbox message and the hold's TTL release it anyway."""
    try:
        await events.release(event_id, token)
    except (ServiceUnavailable, UpstreamError) as exc:
        logger.warning("hold release deferred", extra={"event_id": event_id, "error": exc.message})
        return False
    return True
