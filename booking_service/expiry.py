"""The expiry loop: pending bookings whose hold ran out become ``expired`` (DESIGN §7.5)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from booking_service import service
from booking_service.event_client import event_client_of
from booking_service.settings import BookingSettings

logger = logging.getLogger("booking_service.expiry")


async def expire_once(app: FastAPI) -> int:
    """Expire one batch in its own transaction; returns how many bookings expired."""
    settings: BookingSettings = app.state.settings
    async with app.state.sessionmaker() as session, session.begin():
        return await service.expire_stale_bookings(
            session, event_client_of(app), batch_size=settings.expiry_batch_size
        )


async def run_expiry_loop(app: FastAPI) -> None:
    """Every interval, expire batches until none is full. Runs in every replica."""
    settings: BookingSettings = app.state.settings
    while True:
        try:
            expired = await expire_once(app)
        except Exception:
            logger.exception("expiry pass failed; retrying next interval")
            expired = 0
        if expired:
            logger.info("expired stale bookings", extra={"count": expired})
        if expired < settings.expiry_batch_size:
            await asyncio.sleep(settings.expiry_interval_seconds)


@contextlib.asynccontextmanager
async def expiry_lifecycle(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(run_expiry_loop(app), name="booking-expiry-loop")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
