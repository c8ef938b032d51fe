"""The expiry loop: pending bookings whose hold ran out become ``expired`` (DESIGN §7.5)."""

from __future__ import annotations

from fastapi import FastAPI

from booking_service import saga
from booking_service.resources import resources_of
from ticketing_common.background import periodic_lifecycle


async def expire_once(app: FastAPI) -> int:
    """Expire one batch in its own transaction; returns how many bookings expired."""
    resources = resources_of(app)
    async with resources.sessionmaker() as session, session.begin():
        return await saga.expire_stale_bookings(
            session, resources.events, batch_size=resources.settings.expiry_batch_size
        )


def _interval(app: FastAPI) -> float:
    return float(resources_of(app).settings.expiry_interval_seconds)


def _batch_size(app: FastAPI) -> float:
    return float(resources_of(app).settings.expiry_batch_size)


#: every interval, expire batches until none is full; runs in every replica (each batch
#: locks its rows with SKIP LOCKED, so replicas share the work)
expiry_lifecycle = periodic_lifecycle(
    expire_once, name="booking-expiry", interval=_interval, batch_size=_batch_size
)
