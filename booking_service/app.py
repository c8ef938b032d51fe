"""booking_service application factory (`uvicorn --factory booking_service.app:create_app`)."""

from __future__ import annotations

from fastapi import FastAPI

from booking_service.api import router
from booking_service.settings import BookingSettings, get_settings
from ticketing_common.app import create_service_app


def create_app(settings: BookingSettings | None = None) -> FastAPI:
    return create_service_app(settings=settings or get_settings(), routers=[router])
