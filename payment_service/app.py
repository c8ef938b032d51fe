"""payment_service application factory (`uvicorn --factory payment_service.app:create_app`)."""

from __future__ import annotations

from fastapi import FastAPI

from payment_service.api import router
from payment_service.settings import PaymentSettings, get_settings
from ticketing_common.app import create_service_app


def create_app(settings: PaymentSettings | None = None) -> FastAPI:
    return create_service_app(settings=settings or get_settings(), routers=[router])
