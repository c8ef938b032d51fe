"""The admin from ADMIN_EMAIL / ADMIN_PASSWORD exists after start-up, exactly once."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from auth_service.service import ensure_admin
from auth_service.settings import AuthSettings
from auth_service.tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, AuthClient


async def test_seeded_admin_can_log_in_as_admin(auth: AuthClient) -> None:
    admin = await auth.admin()

    me = await auth.http.get("/api/auth/me", headers=admin.headers)

    assert me.json()["role"] == "admin"
    assert me.json()["email"] == ADMIN_EMAIL


async def test_seeding_again_changes_nothing(
    app: FastAPI, auth: AuthClient, settings: AuthSettings
) -> None:
    before = (await auth.sql("SELECT id, password_hash FROM users")).all()

    for _ in range(2):
        async with app.state.sessionmaker() as session, session.begin():
            await ensure_admin(session, settings, app.state.passwords)

    assert (await auth.sql("SELECT id, password_hash FROM users")).all() == before


async def test_admin_who_changed_their_password_keeps_it_across_restarts(
    app: FastAPI, auth: AuthClient, settings: AuthSettings
) -> None:
    admin = await auth.admin()
    await auth.http.post(
        "/api/auth/change-password",
        json={"old_password": ADMIN_PASSWORD, "new_password": "Changed-Admin-2"},
        headers=admin.headers,
    )

    async with app.state.sessionmaker() as session, session.begin():
        await ensure_admin(session, settings, app.state.passwords)

    assert (await auth.login(ADMIN_EMAIL, "Changed-Admin-2")).status_code == 200


async def test_address_owned_by_a_non_admin_is_never_promoted(
    app: FastAPI, auth: AuthClient, settings: AuthSettings
) -> None:
    await auth.sql("DELETE FROM audit_logs")
    await auth.sql("DELETE FROM users")
    await auth.register(ADMIN_EMAIL)

    async with app.state.sessionmaker() as session, session.begin():
        await ensure_admin(session, settings, app.state.passwords)

    roles = (await auth.sql("SELECT role FROM users")).scalars().all()
    assert roles == ["user"]


def test_production_refuses_the_development_admin_password() -> None:
    with pytest.raises(ValueError, match="ADMIN_PASSWORD"):
        AuthSettings(
            APP_ENV="production",
            JWT_SECRET="a" * 40,
            JWT_REFRESH_SECRET="b" * 40,
            SERVICE_TOKEN="c" * 40,
            PAYMENT_WEBHOOK_SECRET="d" * 40,
            TICKET_SIGNING_SECRET="e" * 40,
        )


@pytest.mark.parametrize("password", ["admin", "Password1", "short1"])
def test_production_refuses_a_weak_admin_password(password: str) -> None:
    with pytest.raises(ValueError, match="ADMIN_PASSWORD"):
        AuthSettings(
            APP_ENV="production",
            ADMIN_PASSWORD=password,
            JWT_SECRET="a" * 40,
            JWT_REFRESH_SECRET="b" * 40,
            SERVICE_TOKEN="c" * 40,
            PAYMENT_WEBHOOK_SECRET="d" * 40,
            TICKET_SIGNING_SECRET="e" * 40,
        )


def test_production_accepts_a_strong_admin_password() -> None:
    settings = AuthSettings(
        APP_ENV="production",
        ADMIN_PASSWORD="correct-horse-battery-42",
        JWT_SECRET="a" * 40,
        JWT_REFRESH_SECRET="b" * 40,
        SERVICE_TOKEN="c" * 40,
        PAYMENT_WEBHOOK_SECRET="d" * 40,
        TICKET_SIGNING_SECRET="e" * 40,
    )

    assert settings.admin_password == "correct-horse-battery-42"
