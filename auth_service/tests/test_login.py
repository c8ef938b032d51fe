"""POST /api/auth/login: credentials, account states and throttling of failures."""

from __future__ import annotations

import asyncio

import jwt
from argon2 import PasswordHasher
from redis.asyncio import Redis

from auth_service.settings import AuthSettings
from auth_service.tests.support import PASSWORD, AuthClient, new_email


async def test_login_returns_the_original_token_shape(
    auth: AuthClient, settings: AuthSettings
) -> None:
    account = await auth.user()

    response = await auth.login(account.email)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    access = jwt.decode(body["access_token"], settings.jwt_secret, algorithms=["HS256"])
    refresh = jwt.decode(body["refresh_token"], settings.jwt_refresh_secret, algorithms=["HS256"])
    assert access["type"] == "access"
    assert refresh["type"] == "refresh"
    assert access["sub"] == str(account.user_id)
    assert access["user_id"] == account.user_id
    assert access["role"] == "user"
    assert access["exp"] - access["iat"] == 15 * 60
    assert refresh["exp"] - refresh["iat"] == 7 * 24 * 3600
    assert access["jti"] != refresh["jti"]


async def test_wrong_password_and_unknown_email_are_the_same_401(auth: AuthClient) -> None:
    account = await auth.user()

    wrong = await auth.login(account.email, "Wrong-Password-9")
    unknown = await auth.login(new_email(), PASSWORD)

    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "error": "invalid email or password",
            "code": "invalid_credentials",
        }
    )


async def test_unverified_account_is_403_with_its_own_message(auth: AuthClient) -> None:
    email = new_email()
    await auth.register(email)

    response = await auth.login(email)

    assert response.status_code == 403
    assert response.json()["code"] == "email_not_verified"
    assert "verify" in response.json()["error"]


async def test_pending_organizer_is_403_with_its_own_message(auth: AuthClient) -> None:
    organizer = await auth.pending_organizer()

    response = await auth.login(organizer.email)

    assert response.status_code == 403
    assert response.json()["code"] == "organizer_pending"
    assert "awaiting admin approval" in response.json()["error"]


async def test_rejected_organizer_is_403_with_its_own_message(auth: AuthClient) -> None:
    organizer = await auth.pending_organizer()
    admin = await auth.admin()
    await auth.http.post(
        "/api/auth/admin/reject", json={"user_id": organizer.user_id}, headers=admin.headers
    )

    response = await auth.login(organizer.email)

    assert response.status_code == 403
    assert response.json()["code"] == "organizer_rejected"
    assert "reapply" in response.json()["error"]


async def test_wrong_password_on_a_blocked_account_says_nothing_about_its_state(
    auth: AuthClient,
) -> None:
    organizer = await auth.pending_organizer()

    response = await auth.login(organizer.email, "Wrong-Password-9")

    assert response.status_code == 401


async def test_repeated_failures_throttle_the_account_even_for_the_right_password(
    auth: AuthClient, settings: AuthSettings
) -> None:
    account = await auth.user()
    for _ in range(settings.login_max_failures):
        assert (await auth.login(account.email, "Wrong-Password-9")).status_code == 401

    locked = await auth.login(account.email)

    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= settings.login_lockout_seconds
    assert "try again" in locked.json()["error"]


async def test_throttle_is_per_account(auth: AuthClient, settings: AuthSettings) -> None:
    victim = await auth.user()
    bystander = await auth.user()
    for _ in range(settings.login_max_failures):
        await auth.login(victim.email, "Wrong-Password-9")

    assert (await auth.login(bystander.email)).status_code == 200


async def test_throttle_runs_out_so_the_owner_gets_back_in(
    auth: AuthClient, settings: AuthSettings, redis: Redis
) -> None:
    account = await auth.user()
    for _ in range(settings.login_max_failures):
        await auth.login(account.email, "Wrong-Password-9")
    assert (await auth.login(account.email)).status_code == 429

    key = f"auth:login_failures:{account.email}"
    assert 0 < await redis.ttl(key) <= settings.login_lockout_seconds
    await redis.expire(key, 1)  # fast-forward to the end of the lockout
    await asyncio.sleep(1.2)

    assert (await auth.login(account.email)).status_code == 200


async def test_successful_login_forgets_earlier_failures(
    auth: AuthClient, settings: AuthSettings
) -> None:
    account = await auth.user()
    for _ in range(settings.login_max_failures - 1):
        await auth.login(account.email, "Wrong-Password-9")
    assert (await auth.login(account.email)).status_code == 200

    for _ in range(settings.login_max_failures - 1):
        await auth.login(account.email, "Wrong-Password-9")

    assert (await auth.login(account.email)).status_code == 200


async def test_login_failures_are_audited(auth: AuthClient, settings: AuthSettings) -> None:
    account = await auth.user()
    for _ in range(settings.login_max_failures):
        await auth.login(account.email, "Wrong-Password-9")

    actions = (
        (
            await auth.sql(
                "SELECT action FROM audit_logs WHERE target_id = :id ORDER BY id",
                id=str(account.user_id),
            )
        )
        .scalars()
        .all()
    )

    assert actions.count("login_failed") == settings.login_max_failures - 1
    assert actions[-1] == "login_throttled"


async def test_bad_login_bodies_are_400(auth: AuthClient) -> None:
    for body in (
        {},
        {"email": "a@example.com"},
        {"email": "a@example.com", "password": ""},
        {"email": "a@example.com", "password": "x" * 2000},
        [1],
    ):
        response = await auth.http.post("/api/auth/login", json=body)
        assert response.status_code == 400, body


async def test_hash_is_upgraded_when_the_parameters_change(auth: AuthClient) -> None:
    account = await auth.user()
    weaker = "$argon2id$v=19$m=8,t=1,p=1$"
    old_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    assert old_hash.startswith(weaker)
    await auth.sql(
        "UPDATE users SET password_hash = :h WHERE id = :id", h=old_hash, id=account.user_id
    )

    assert (await auth.login(account.email)).status_code == 200

    stored = (
        await auth.sql("SELECT password_hash FROM users WHERE id = :id", id=account.user_id)
    ).scalar_one()
    assert not stored.startswith(weaker)
    assert (await auth.login(account.email)).status_code == 200
