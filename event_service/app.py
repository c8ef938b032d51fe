"""event_service application factory (`uvicorn --factory event_service.app:create_app`)."""

from __future__ import annotations

from fastapi import FastAPI

from event_service.api import router
from event_service.settings import EventSettings, get_settings
from ticketing_common.app import create_service_app


def create_app(settings: EventSettings | None = None) -> FastAPI:
    return create_service_app(settings=settings or get_settings(), routers=[router])
