"""auth_service application factory (`uvicorn --factory auth_service.app:create_app`)."""

from __future__ import annotations

from fastapi import FastAPI

from auth_service.api import router
from auth_service.settings import AuthSettings, get_settings
from ticketing_common.app import create_service_app


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    return create_service_app(settings=settings or get_settings(), routers=[router])
