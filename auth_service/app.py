"""auth_service application factory (`python -m ticketing_common.serve auth_service`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from auth_service.api import router
from auth_service.consumers import SUBSCRIPTIONS
from auth_service.passwords import password_hasher_lifecycle
from auth_service.resources import auth_resources_lifecycle, resources_of
from auth_service.service import ensure_admin
from auth_service.settings import AuthSettings, get_settings
from ticketing_common.app import create_service_app
from ticketing_common.messaging import messaging_lifecycle

DESCRIPTION = "Users, roles, JWT sessions, organizer approval and the audit log."


@contextlib.asynccontextmanager
async def admin_seed_lifecycle(app: FastAPI) -> AsyncIterator[None]:
    """Make sure the admin from ``ADMIN_EMAIL``/``ADMIN_PASSWORD`` exists before serving."""
    resources = resources_of(app)
    async with resources.sessionmaker() as session, session.begin():
        await ensure_admin(session, resources.settings, resources.passwords)
    yield


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings or get_settings(),
        routers=[router],
        description=DESCRIPTION,
        lifecycles=[
            password_hasher_lifecycle,
            auth_resources_lifecycle,
            admin_seed_lifecycle,
            messaging_lifecycle(subscriptions=SUBSCRIPTIONS),
        ],
    )
