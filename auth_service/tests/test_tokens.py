"""Access tokens everywhere, refresh-token rotation and reuse, logout, revocation."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest

from auth_service.settings import AuthSettings
from auth_service.tests.support import AuthClient, bearer
from ticketing_common.security import issue_token


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_refresh_rotates_the_pair(auth: AuthClient) -> None:
    account = await auth.user()

    response = await auth.http.post(
        "/api/auth/refresh-token", json={"refresh_token": account.refresh_token}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["refresh_token"] != account.refresh_token
    assert body["access_token"] != account.access_token
    me = await auth.http.get("/api/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200


async def test_reused_refresh_token_is_refused_and_revokes_its_family(auth: AuthClient) -> None:
    account = await auth.user()
    first = await auth.http.post(
        "/api/auth/refresh-token", json={"refresh_token": account.refresh_token}
    )
    rotated = first.json()["refresh_token"]

    reused = await auth.http.post(
        "/api/auth/refresh-token", json={"refresh_token": account.refresh_token}
    )
    after = await auth.http.post("/api/auth/refresh-token", json={"refresh_token": rotated})

    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    assert after.status_code == 401  # the thief's (or victim's) newer token died with it
    actions = (await auth.sql("SELECT action FROM audit_logs")).scalars().all()
    assert "refresh_token_reused" in actions


async def test_reuse_revokes_only_that_family(auth: AuthClient) -> None:
    account = await auth.user()
    other_session = await auth.signed_in(account.email)
    await auth.http.post("/api/auth/refresh-token", json={"refresh_token": account.refresh_token})
    await auth.http.post("/api/auth/refresh-token", json={"refresh_token": account.refresh_token})

    response = await auth.http.post(
        "/api/auth/refresh-token", json={"refresh_token": other_session.refresh_token}
    )

    assert response.status_code == 200


async def test_logout_makes_the_refresh_token_useless(auth: AuthClient) -> None:
    account = await auth.user()

    out = await auth.http.post(
        "/api/auth/logout", json={"refresh_token": account.refresh_token}, headers=account.headers
    )
    refresh = await auth.http.post(
        "/api/auth/refresh-token", json={"refresh_token": account.refresh_token}
    )

    assert out.status_code == 204
    assert out.content == b""
    assert refresh.status_code == 401


async def test_logout_revokes_the_access_token_too(auth: AuthClient) -> None:
    account = await auth.user()
    await auth.http.post(
        "/api/auth/logout", json={"refresh_token": account.refresh_token}, headers=account.headers
    )

    me = await auth.http.get("/api/auth/me", headers=account.headers)

    assert me.status_code == 401
    assert "revoked" in me.json()["error"]


async def test_logout_needs_an_access_token(auth: AuthClient) -> None:
    account = await auth.user()

    response = await auth.http.post(
        "/api/auth/logout", json={"refresh_token": account.refresh_token}
    )

    assert response.status_code == 401


async def test_logout_with_someone_elses_refresh_token_is_403(auth: AuthClient) -> None:
    victim = await auth.user()
    attacker = await auth.user()

    response = await auth.http.post(
        "/api/auth/logout", json={"refresh_token": victim.refresh_token}, headers=attacker.headers
    )

    assert response.status_code == 403
    assert (
        await auth.http.post(
            "/api/auth/refresh-token", json={"refresh_token": victim.refresh_token}
        )
    ).status_code == 200


async def test_access_token_is_not_a_refresh_token(auth: AuthClient) -> None:
    account = await auth.user()

    response = await auth.http.post(
        "/api/auth/refresh-token", json={"refresh_token": account.access_token}
    )

    assert response.status_code == 401


async def test_refresh_token_is_not_an_access_token(auth: AuthClient) -> None:
    account = await auth.user()

    response = await auth.http.get("/api/auth/me", headers=bearer(account.refresh_token))

    assert response.status_code == 401


async def test_refresh_token_signed_with_the_access_secret_is_refused(
    auth: AuthClient, settings: AuthSettings
) -> None:
    account = await auth.user()
    forged, _ = issue_token(
        secret=settings.jwt_secret,
        user_id=account.user_id,
        role="user",
        token_type="refresh",
        ttl=timedelta(days=1),
        extra={"fam": "x"},
    )

    response = await auth.http.post("/api/auth/refresh-token", json={"refresh_token": forged})

    assert response.status_code == 401


@pytest.mark.parametrize("target", ["/api/auth/me", "/api/auth/admin/users"])
async def test_missing_and_malformed_tokens_are_401(auth: AuthClient, target: str) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer not.a.jwt"},
    ):
        response = await auth.http.get(target, headers=headers)
        assert response.status_code == 401, headers


async def test_token_with_a_bad_signature_is_401(auth: AuthClient) -> None:
    account = await auth.user()
    head, payload, signature = account.access_token.split(".")
    tampered_claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered_claims["role"] = "admin"

    for token in (
        f"{head}.{payload}.{signature[:-2]}AA",
        f"{head}.{_b64(tampered_claims)}.{signature}",
        jwt.encode(tampered_claims, "a-guessed-secret-that-is-long-enough", algorithm="HS256"),
    ):
        response = await auth.http.get("/api/auth/admin/users", headers=bearer(token))
        assert response.status_code == 401


async def test_alg_none_token_is_401(auth: AuthClient, settings: AuthSettings) -> None:
    account = await auth.user()
    claims = jwt.decode(account.access_token, settings.jwt_secret, algorithms=["HS256"])
    claims["role"] = "admin"
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."

    response = await auth.http.get("/api/auth/admin/users", headers=bearer(unsigned))

    assert response.status_code == 401


async def test_expired_access_token_is_401(auth: AuthClient, settings: AuthSettings) -> None:
    account = await auth.user()
    expired, _ = issue_token(
        secret=settings.jwt_secret,
        user_id=account.user_id,
        role="user",
        token_type="access",
        ttl=timedelta(seconds=-1),
    )

    response = await auth.http.get("/api/auth/me", headers=bearer(expired))

    assert response.status_code == 401
    assert "expired" in response.json()["error"]


async def test_expired_refresh_token_is_401(auth: AuthClient, settings: AuthSettings) -> None:
    account = await auth.user()
    expired, _ = issue_token(
        secret=settings.jwt_refresh_secret,
        user_id=account.user_id,
        role="user",
        token_type="refresh",
        ttl=timedelta(seconds=-1),
        extra={"fam": "gone"},
    )

    response = await auth.http.post("/api/auth/refresh-token", json={"refresh_token": expired})

    assert response.status_code == 401


async def test_refresh_of_a_forged_family_is_401(auth: AuthClient, settings: AuthSettings) -> None:
    account = await auth.user()
    forged, _ = issue_token(
        secret=settings.jwt_refresh_secret,
        user_id=account.user_id,
        role="user",
        token_type="refresh",
        ttl=timedelta(days=1),
        extra={"fam": "made-up"},
    )

    response = await auth.http.post("/api/auth/refresh-token", json={"refresh_token": forged})

    assert response.status_code == 401


async def test_refresh_picks_up_a_new_role(auth: AuthClient) -> None:
    account = await auth.user()
    admin = await auth.admin()
    await auth.http.post(
        "/api/auth/admin/promote",
        json={"user_id": account.user_id, "role": "admin"},
        headers=admin.headers,
    )

    old = await auth.http.get("/api/auth/admin/users", headers=account.headers)
    refreshed = await auth.http.post(
        "/api/auth/refresh-token", json={"refresh_token": account.refresh_token}
    )
    new = await auth.http.get(
        "/api/auth/admin/users", headers=bearer(refreshed.json()["access_token"])
    )

    assert old.status_code == 401  # role changed: tokens issued before are revoked
    assert new.status_code == 200


async def test_bad_refresh_bodies_are_400(auth: AuthClient) -> None:
    for body in ({}, {"refresh_token": ""}, {"refresh_token": 5}, {"token": "x"}):
        response = await auth.http.post("/api/auth/refresh-token", json=body)
        assert response.status_code == 400, body
