"""notification_service application factory (`uvicorn --factory notification_service.app:create_app`)."""

from __future__ import annotations

from fastapi import FastAPI

from notification_service.api import router
from notification_service.settings import NotificationSettings, get_settings
from ticketing_common.app import create_service_app


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    return create_service_app(settings=settings or get_settings(), routers=[router])
