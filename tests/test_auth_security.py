"""auth_service's refusals and sessions through the gateway (no email needed).

Sessions here belong to the seeded admin, so these run before notification_service
delivers any mail. Every refusal is a JSON error with the right status, never a 500.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from tests.conftest import unique_email
from tests.support_auth import PASSWORD, admin_tokens, bearer
from ticketing_common.security import issue_token
from ticketing_common.settings import DEV_JWT_SECRET


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_session(
    client: httpx.AsyncClient,
) -> None:
    tokens = await admin_tokens(client)

    rotated = await client.post(
        "/api/auth/refresh-token", json={"refresh_token": tokens["refresh_token"]}
    )
    reused = await client.post(
        "/api/auth/refresh-token", json={"refresh_token": tokens["refresh_token"]}
    )
    newer = await client.post(
        "/api/auth/refresh-token", json={"refresh_token": rotated.json()["refresh_token"]}
    )

    assert rotated.status_code == 200
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    assert newer.status_code == 401


async def test_logout_makes_the_refresh_token_useless(client: httpx.AsyncClient) -> None:
    tokens = await admin_tokens(client)

    out = await client.post(
        "/api/auth/logout",
        json={"refresh_token": tokens["refresh_token"]},
        headers=bearer(tokens["access_token"]),
    )
    refresh = await client.post(
        "/api/auth/refresh-token", json={"refresh_token": tokens["refresh_token"]}
    )
    me = await client.get("/api/auth/me", headers=bearer(tokens["access_token"]))

    assert out.status_code == 204
    assert refresh.status_code == 401
    assert me.status_code == 401


async def test_missing_tampered_and_wrong_kind_tokens_are_401(client: httpx.AsyncClient) -> None:
    tokens = await admin_tokens(client)
    head, payload, signature = tokens["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    expired, _ = issue_token(
        secret=DEV_JWT_SECRET,
        user_id=tokens["user_id"],
        role="admin",
        token_type="access",
        ttl=timedelta(seconds=-5),
    )
    cases = {
        "no token": {},
        "not a jwt": bearer("garbage"),
        "bad signature": bearer(f"{head}.{payload}.{signature[:-3]}AAA"),
        "edited claims": bearer(f"{head}.{_b64({**claims, 'user_id': 2})}.{signature}"),
        "alg none": bearer(f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."),
        "refresh as access": bearer(tokens["refresh_token"]),
        "expired": bearer(expired),
    }

    for name, headers in cases.items():
        response = await client.get("/api/auth/admin/users", headers=headers)
        assert response.status_code == 401, name
        assert response.json()["error"], name


async def test_access_token_is_refused_as_a_refresh_token(client: httpx.AsyncClient) -> None:
    tokens = await admin_tokens(client)

    response = await client.post(
        "/api/auth/refresh-token", json={"refresh_token": tokens["access_token"]}
    )

    assert response.status_code == 401


async def test_duplicate_email_is_409(client: httpx.AsyncClient) -> None:
    email = unique_email("dup")
    first = await client.post("/api/auth/register", json={"email": email, "password": PASSWORD})

    second = await client.post(
        "/api/auth/register", json={"email": email.upper(), "password": PASSWORD}
    )

    assert first.status_code == 201
    assert second.status_code == 409


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/register", {"email": "no-at-sign", "password": PASSWORD}),
        ("/api/auth/register", {"email": "weak@example.com", "password": "short"}),
        (
            "/api/auth/register",
            {"email": "role@example.com", "password": PASSWORD, "role": "admin"},
        ),
        ("/api/auth/register", [1, 2, 3]),
        ("/api/auth/login", {"email": "x@example.com"}),
        ("/api/auth/verify-email", {"email": "x@example.com"}),
        ("/api/auth/refresh-token", {}),
        ("/api/auth/forgot-password", {"mail": "x@example.com"}),
        ("/api/auth/reset-password", {"email": "x@example.com", "code": "123456"}),
        ("/api/auth/reapply", {}),
    ],
)
async def test_bad_bodies_are_400(
    client: httpx.AsyncClient, path: str, body: dict[str, object] | list[int]
) -> None:
    response = await client.post(path, json=body)

    assert response.status_code == 400
    assert response.json()["error"]


async def test_broken_json_is_400(client: httpx.AsyncClient) -> None:
    for path in ("/api/auth/register", "/api/auth/login"):
        response = await client.post(
            path, content=b"{broken", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400


async def test_organizer_document_is_checked_by_content_and_size(
    client: httpx.AsyncClient,
) -> None:
    def form(email: str) -> dict[str, str]:
        return {"email": email, "password": PASSWORD, "role": "organizer"}

    no_document = await client.post("/api/auth/register", data=form(unique_email("org")))
    html = await client.post(
        "/api/auth/register",
        data=form(unique_email("org")),
        files={"document": ("cv.pdf", b"<html>not a pdf</html>", "application/pdf")},
    )
    too_big = await client.post(
        "/api/auth/register",
        data=form(unique_email("org")),
        files={"document": ("big.pdf", b"%PDF-" + b"0" * (6 * 1024 * 1024), "application/pdf")},
    )

    assert no_document.status_code == 400
    assert html.status_code == 400
    assert too_big.status_code == 413


async def test_admin_lists_are_paginated_with_a_total(client: httpx.AsyncClient) -> None:
    tokens = await admin_tokens(client)
    headers = bearer(tokens["access_token"])

    users = await client.get("/api/auth/admin/users", params={"limit": 1}, headers=headers)
    logs = await client.get(
        "/api/auth/admin/audit-logs",
        params={"limit": 5, "action": "login_failed"},
        headers=headers,
    )
    too_many = await client.get("/api/auth/admin/users", params={"limit": 1001}, headers=headers)

    assert users.status_code == 200
    assert len(users.json()) == 1
    assert int(users.headers["X-Total-Count"]) >= 1
    assert logs.status_code == 200
    assert "X-Total-Count" in logs.headers
    assert too_many.status_code == 400


async def test_failed_logins_are_audited_and_visible_to_the_admin(
    client: httpx.AsyncClient, new_client: Callable[[], httpx.AsyncClient]
) -> None:
    email = unique_email("ghost")
    await client.post("/api/auth/login", json={"email": email, "password": "Wrong-Password-1"})
    async with new_client() as admin_client:
        tokens = await admin_tokens(admin_client)

        logs = await admin_client.get(
            "/api/auth/admin/audit-logs",
            params={"action": "login_failed", "limit": 200},
            headers=bearer(tokens["access_token"]),
        )

    assert email in [entry["data"].get("email") for entry in logs.json()]


async def test_internal_user_lookup_is_not_served_by_the_gateway(
    client: httpx.AsyncClient, service_urls: dict[str, str]
) -> None:
    tokens = await admin_tokens(client)
    user_id = tokens["user_id"]

    through_gateway = await client.get(f"/api/auth/internal/users/{user_id}")
    root = await client.get(f"/internal/users/{user_id}")
    async with httpx.AsyncClient(base_url=service_urls["auth_service"]) as direct:
        without_token = await direct.get(f"/internal/users/{user_id}")

    assert through_gateway.status_code == 403
    assert root.status_code in (403, 404)
    assert without_token.status_code == 401


async def test_repeated_failures_throttle_one_account_with_429(
    new_client: Callable[[], httpx.AsyncClient],
) -> None:
    email = unique_email("locked")
    async with new_client() as attacker:
        statuses = [
            (
                await attacker.post(
                    "/api/auth/login", json={"email": email, "password": f"Guess-{n}-x"}
                )
            ).status_code
            for n in range(6)
        ]

    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
