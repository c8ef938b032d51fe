"""Revocations written by auth_service are enforced by every service built on the shared app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter

from auth_service.settings import AuthSettings
from auth_service.tests.support import AuthClient
from ticketing_common.app import create_service_app
from ticketing_common.security import CurrentUser
from ticketing_common.settings import ServiceSettings
from ticketing_common.testing import running_app

router = APIRouter()


@router.get("/whoami")
async def whoami(user: CurrentUser) -> dict[str, int]:
    return {"user_id": user.user_id}


@pytest.fixture
async def other_service(settings: AuthSettings) -> AsyncIterator[httpx.AsyncClient]:
    other_settings = ServiceSettings(
        service_name="other_service",
        DB_NAME=settings.db_name,
        REDIS_DB=settings.redis_db,
        APP_ENV="test",
    )
    app = create_service_app(settings=other_settings, routers=[router])
    async with running_app(app) as client:
        yield client


async def test_logout_is_enforced_by_another_service(
    auth: AuthClient, other_service: httpx.AsyncClient
) -> None:
    account = await auth.user()
    assert (await other_service.get("/whoami", headers=account.headers)).status_code == 200

    await auth.http.post(
        "/api/auth/logout", json={"refresh_token": account.refresh_token}, headers=account.headers
    )

    refused = await other_service.get("/whoami", headers=account.headers)
    assert refused.status_code == 401
    assert refused.json()["error"] == "token revoked"


async def test_deleting_a_user_revokes_their_tokens_in_another_service(
    auth: AuthClient, other_service: httpx.AsyncClient
) -> None:
    admin = await auth.admin()
    account = await auth.user()
    other_session = await auth.signed_in(account.email)

    await auth.http.delete(f"/api/auth/admin/users/{account.user_id}", headers=admin.headers)

    for session in (account, other_session):
        response = await other_service.get("/whoami", headers=session.headers)
        assert response.status_code == 401
    assert (await other_service.get("/whoami", headers=admin.headers)).status_code == 200


async def test_tokens_issued_after_a_revocation_work(
    auth: AuthClient, other_service: httpx.AsyncClient
) -> None:
    admin = await auth.admin()
    account = await auth.user()
    await auth.http.post(
        "/api/auth/admin/promote", json={"user_id": account.user_id}, headers=admin.headers
    )

    fresh = await auth.signed_in(account.email)

    assert (await other_service.get("/whoami", headers=account.headers)).status_code == 401
    assert (await other_service.get("/whoami", headers=fresh.headers)).status_code == 200
