"""booking_service application factory (`python -m ticketing_common.serve booking_service`)."""

from __future__ import annotations

from fastapi import FastAPI

from booking_service.api import router
from booking_service.consumers import SUBSCRIPTIONS
from booking_service.expiry import expiry_lifecycle
from booking_service.resources import booking_resources_lifecycle
from booking_service.settings import BookingSettings, get_settings
from ticketing_common.app import create_service_app
from ticketing_common.db import pg_pool_lifecycle
from ticketing_common.messaging import messaging_lifecycle


def create_app(settings: BookingSettings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings or get_settings(),
        routers=[router],
        description="Booking saga: hold seats, take payment, confirm, expire, cancel.",
        lifecycles=[
            pg_pool_lifecycle,
            booking_resources_lifecycle,
            messaging_lifecycle(subscriptions=SUBSCRIPTIONS),
            expiry_lifecycle,
        ],
    )
