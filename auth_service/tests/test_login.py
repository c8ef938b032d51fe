"""POST /api/auth/login: credentials, account states and throttling of failures."""

from __future__ import annotations

import httpx
import jwt
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
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
            "error": "invalid credentials",
            "code": "invalid_credentials",
        }
    )


# The original's front end compares these texts exactly (``account rejected`` and
# ``account pending approval`` offer to reapply), so they are the original's, with its 401.


async def test_unverified_account_is_401_with_the_originals_text(auth: AuthClient) -> None:
    email = new_email()
    await auth.register(email)

    response = await auth.login(email)

    assert response.status_code == 401
    assert response.json() == {"error": "email not verified", "code": "email_not_verified"}


async def test_pending_organizer_is_401_with_the_originals_text(auth: AuthClient) -> None:
    organizer = await auth.pending_organizer()

    response = await auth.login(organizer.email)

    assert response.status_code == 401
    assert response.json() == {"error": "account pending approval", "code": "organizer_pending"}


async def test_rejected_organizer_is_401_with_the_originals_text(auth: AuthClient) -> None:
    organizer = await auth.pending_organizer()
    admin = await auth.admin()
    await auth.http.post(
        "/api/auth/admin/reject", json={"user_id": organizer.user_id}, headers=admin.headers
    )

    response = await auth.login(organizer.email)

    assert response.status_code == 401
    assert response.json() == {"error": "account rejected", "code": "organizer_rejected"}


async def test_wrong_password_on_a_blocked_account_says_nothing_about_its_state(
    auth: AuthClient,
) -> None:
    organizer = await auth.pending_organizer()

    response = await auth.login(organizer.email, "Wrong-Password-9")

    assert response.status_code == 401
    assert response.json()["error"] == "invalid credentials"


STRANGER = "203.0.113.9"
OWNER = "198.51.100.7"


async def _fail_until_throttled(auth: AuthClient, email: str, ip: str) -> list[httpx.Response]:
    settings = auth.settings
    return [
        await auth.login(email, "Wrong-Password-9", ip=ip)
        for _ in range(settings.login_backoff_after_failures + 1)
    ]


@pytest.mark.parametrize("whose", ["user", "admin"])
async def test_a_strangers_wrong_passwords_never_lock_the_owner_out(
    auth: AuthClient, whose: str
) -> None:
    account = await auth.user() if whose == "user" else await auth.admin()

    stranger = await _fail_until_throttled(auth, account.email, STRANGER)
    owner = await auth.login(account.email, account.password, ip=OWNER)

    assert [r.status_code for r in stranger[:-1]] == [401] * (len(stranger) - 1)
    assert stranger[-1].status_code == 429
    assert stranger[-1].json()["code"] == "login_throttled"
    assert int(stranger[-1].headers["Retry-After"]) >= 1
    assert owner.status_code == 200


async def test_the_throttled_address_waits_even_with_the_right_password(
    auth: AuthClient,
) -> None:
    account = await auth.user()
    await _fail_until_throttled(auth, account.email, STRANGER)

    right = await auth.login(account.email, ip=STRANGER)

    assert right.status_code == 429
    assert "try again in" in right.json()["error"]


async def test_a_throttled_attempt_costs_no_password_hash(
    auth: AuthClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await auth.user()
    await _fail_until_throttled(auth, account.email, STRANGER)
    hashes: list[str] = []
    real_verify = app.state.passwords.verify

    async def counting_verify(password_hash: str, password: str) -> bool:
        hashes.append(password)
        result: bool = await real_verify(password_hash, password)
        return result

    monkeypatch.setattr(app.state.passwords, "verify", counting_verify)
    refused = [await auth.login(account.email, f"Guess-{n}-x", ip=STRANGER) for n in range(5)]

    assert {r.status_code for r in refused} == {429}
    assert hashes == []


async def test_an_unknown_email_is_throttled_exactly_like_a_known_one(auth: AuthClient) -> None:
    account = await auth.user()

    known = await _fail_until_throttled(auth, account.email, STRANGER)
    unknown = await _fail_until_throttled(auth, new_email(), STRANGER)

    assert [r.status_code for r in known] == [r.status_code for r in unknown]
    assert [r.json()["code"] for r in known] == [r.json()["code"] for r in unknown]


async def test_throttle_is_per_account(auth: AuthClient) -> None:
    victim = await auth.user()
    bystander = await auth.user()
    await _fail_until_throttled(auth, victim.email, STRANGER)

    assert (await auth.login(bystander.email, ip=STRANGER)).status_code == 200


async def test_successful_login_forgets_the_addresss_earlier_failures(
    auth: AuthClient, settings: AuthSettings
) -> None:
    account = await auth.user()
    for _ in range(settings.login_backoff_after_failures - 1):
        await auth.login(account.email, "Wrong-Password-9", ip=STRANGER)
    assert (await auth.login(account.email, ip=STRANGER)).status_code == 200

    for _ in range(settings.login_backoff_after_failures - 1):
        await auth.login(account.email, "Wrong-Password-9", ip=STRANGER)

    assert (await auth.login(account.email, ip=STRANGER)).status_code == 200


async def test_the_wait_runs_out_so_the_address_may_try_again(
    auth: AuthClient, redis: Redis
) -> None:
    account = await auth.user()
    await _fail_until_throttled(auth, account.email, STRANGER)

    keys = await redis.keys("auth:login:*:by_address")
    assert len(keys) == 1
    await redis.hset(keys[0], f"{STRANGER}:until", "0")  # fast-forward past the wait

    assert (await auth.login(account.email, ip=STRANGER)).status_code == 200


async def test_login_failures_are_audited(auth: AuthClient, settings: AuthSettings) -> None:
    account = await auth.user()
    for _ in range(settings.login_backoff_after_failures):
        await auth.login(account.email, "Wrong-Password-9", ip=STRANGER)

    entries = (
        await auth.sql(
            "SELECT action, ip, details FROM audit_logs WHERE target_id = :id ORDER BY id",
            id=str(account.user_id),
        )
    ).all()

    actions = [entry.action for entry in entries]
    assert actions.count("login_failed") == settings.login_backoff_after_failures - 1
    assert actions[-1] == "login_throttled"
    assert entries[-1].ip == STRANGER
    assert entries[-1].details["wait_seconds"] == settings.login_backoff_base_seconds


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
