"""The shared plumbing as a service sees it: errors, tokens, roles, metrics, request ids."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import httpx
import jwt
import pytest
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import text
from starlette.types import Message

from ticketing_common.app import create_service_app
from ticketing_common.db import SessionDep, pg_pool_lifecycle, pg_pool_of
from ticketing_common.errors import Conflict, Unauthorized
from ticketing_common.security import (
    AdminUser,
    CurrentUser,
    ServiceCaller,
    decode_token,
    issue_token,
)
from ticketing_common.settings import ServiceSettings
from ticketing_common.testing import running_app

SETTINGS = ServiceSettings(service_name="plumbing_probe", DB_NAME="postgres", APP_ENV="test")

router = APIRouter()


class Seat(BaseModel):
    seat_id: str = Field(min_length=3)
    count: int = Field(ge=1)


@router.post("/seats/{event_id}")
async def take_seat(event_id: int, seat: Seat) -> dict[str, str]:
    if seat.seat_id == "vip-1-1":
        raise Conflict("seat vip-1-1 is taken", details={"seat_ids": ["vip-1-1"]})
    return {"seat": seat.seat_id}


@router.get("/me")
async def me(user: CurrentUser) -> dict[str, object]:
    return {"user_id": user.user_id, "role": user.role.value}


@router.get("/admin-only")
async def admin_only(user: AdminUser) -> dict[str, int]:
    return {"user_id": user.user_id}


@router.get("/internal/ping", dependencies=[ServiceCaller])
async def internal_ping() -> dict[str, str]:
    return {"pong": "yes"}


@router.post("/notes")
async def store_note(note: dict[str, str], session: SessionDep) -> dict[str, str]:
    row = await session.execute(text("SELECT CAST(:body AS text)"), {"body": note["body"]})
    return {"stored": row.scalar_one()}


@router.post("/raw-notes")
async def store_raw_note(note: dict[str, str], request: Request) -> dict[str, str]:
    """The hot paths' raw asyncpg pool: its errors map like the ORM's."""
    stored = await pg_pool_of(request.app).fetchval("SELECT CAST($1 AS text)", note["body"])
    return {"stored": stored}


@router.post("/raw-notes/connection-lost")
async def lose_raw_connection(request: Request) -> None:
    async with pg_pool_of(request.app).acquire() as conn:
        await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")


@router.post("/raw-notes/mid-operation")
async def broken_raw_connection() -> None:
    """What asyncpg raises on a connection the server dropped mid-operation (seen while
    PostgreSQL restarted under load)."""
    raise asyncpg.InternalClientError(
        "cannot switch to state 12; another operation (2) is in progress"
    )


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("a bug")


@router.post("/raw")
async def raw_body(request: Request) -> dict[str, int]:
    return {"bytes": len(await request.body())}


def access_token(
    role: str = "user",
    user_id: int = 7,
    token_type: str = "access",  # noqa: S107 - a token type, not a password
    ttl: timedelta = timedelta(minutes=15),
) -> str:
    token, _ = issue_token(
        secret=SETTINGS.jwt_secret, user_id=user_id, role=role, token_type=token_type, ttl=ttl
    )
    return token


@pytest.fixture
async def client():
    app = create_service_app(settings=SETTINGS, routers=[router], lifecycles=[pg_pool_lifecycle])
    async with running_app(app) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_malformed_json_is_a_400_with_an_error_message(client: httpx.AsyncClient):
    response = await client.post(
        "/seats/1", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("invalid request")


async def test_validation_errors_are_400_and_name_the_field(client: httpx.AsyncClient):
    response = await client.post("/seats/abc", json={"seat_id": "x", "count": 0})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    fields = {d["field"] for d in body["details"]}
    assert {"path.event_id", "seat_id", "count"} <= fields


async def test_domain_error_keeps_its_status_and_details(client: httpx.AsyncClient):
    response = await client.post("/seats/1", json={"seat_id": "vip-1-1", "count": 1})
    assert response.status_code == 409
    assert response.json() == {
        "error": "seat vip-1-1 is taken",
        "code": "conflict",
        "details": {"seat_ids": ["vip-1-1"]},
    }


async def test_unknown_route_and_wrong_method_are_json(client: httpx.AsyncClient):
    assert (await client.get("/nope")).json() == {"error": "not found"}
    wrong = await client.delete("/me")
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "method not allowed"}


async def test_a_nul_byte_postgres_refuses_is_a_400_not_a_500(client: httpx.AsyncClient):
    ok = await client.post("/notes", json={"body": "caf\u00e9 \u05e9\u05dc\u05d5\u05dd"})
    assert ok.json() == {"stored": "caf\u00e9 \u05e9\u05dc\u05d5\u05dd"}
    response = await client.post("/notes", json={"body": "nul\u0000byte"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"


async def test_raw_pool_errors_map_like_the_orms(client: httpx.AsyncClient):
    """Bad data is a 400 and a lost connection a 503 the client may retry, never a 500."""
    ok = await client.post("/raw-notes", json={"body": "caf\u00e9"})
    assert ok.json() == {"stored": "caf\u00e9"}

    bad = await client.post("/raw-notes", json={"body": "nul\u0000byte"})
    lost = await client.post("/raw-notes/connection-lost")
    broken = await client.post("/raw-notes/mid-operation")

    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_input")
    assert (lost.status_code, lost.json()["code"]) == (503, "service_unavailable")
    assert (broken.status_code, broken.json()["code"]) == (503, "service_unavailable")


async def test_a_lone_surrogate_is_a_400_not_a_500(client: httpx.AsyncClient):
    response = await client.post(
        "/notes",
        content=b'{"body": "half \\ud800 pair"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"


async def test_a_bug_is_a_500_without_internals(client: httpx.AsyncClient):
    response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error", "code": "internal"}


async def test_valid_access_token_identifies_the_caller(client: httpx.AsyncClient):
    response = await client.get("/me", headers=bearer(access_token("organizer", 42)))
    assert response.json() == {"user_id": 42, "role": "organizer"}


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        access_token(token_type="refresh"),
        access_token(ttl=timedelta(seconds=-5)),
        jwt.encode(
            {
                "sub": "1",
                "user_id": 1,
                "role": "admin",
                "type": "access",
                "iat": 1,
                "exp": 9_999_999_999,
                "jti": "x",
            },
            "wrong-secret-wrong-secret-wrong-secret",
            algorithm="HS256",
        ),
        jwt.encode(
            {
                "sub": "1",
                "user_id": 1,
                "role": "admin",
                "type": "access",
                "iat": 1,
                "exp": 9_999_999_999,
                "jti": "x",
            },
            None,
            algorithm="none",
        ),
        access_token(role="superuser"),
    ],
    ids=["garbage", "refresh-as-access", "expired", "bad-signature", "alg-none", "bad-role"],
)
async def test_bad_tokens_are_401(client: httpx.AsyncClient, token: str):
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert "error" in response.json()
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_token_that_expires_after_it_was_verified_is_refused(
    client: httpx.AsyncClient,
):
    """Verified tokens are remembered for speed, but never past their expiry."""
    token = access_token("user", 7, ttl=timedelta(seconds=2))
    assert (await client.get("/me", headers=bearer(token))).status_code == 200

    await asyncio.sleep(2.1)

    assert (await client.get("/me", headers=bearer(token))).status_code == 401


def test_a_remembered_token_is_not_accepted_under_another_secret():
    token = access_token("user", 7)
    decode_token(token, secret=SETTINGS.jwt_secret, expected_type="access")

    with pytest.raises(Unauthorized):
        decode_token(token, secret="another-secret-another-secret-12345", expected_type="access")


async def test_a_bare_token_without_bearer_is_accepted_as_the_original_did(
    client: httpx.AsyncClient,
):
    response = await client.get("/me", headers={"Authorization": access_token("user", 42)})
    assert response.json() == {"user_id": 42, "role": "user"}
    basic = await client.get("/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401


async def test_missing_token_is_401(client: httpx.AsyncClient):
    assert (await client.get("/me")).status_code == 401


async def test_wrong_role_is_403(client: httpx.AsyncClient):
    response = await client.get("/admin-only", headers=bearer(access_token("user")))
    assert response.status_code == 403
    ok = await client.get("/admin-only", headers=bearer(access_token("admin")))
    assert ok.status_code == 200


async def test_internal_routes_need_the_service_token(client: httpx.AsyncClient):
    assert (await client.get("/internal/ping")).status_code == 401
    wrong = await client.get("/internal/ping", headers={"X-Service-Token": "guess"})
    assert wrong.status_code == 401
    right = await client.get("/internal/ping", headers={"X-Service-Token": SETTINGS.service_token})
    assert right.json() == {"pong": "yes"}


async def test_metrics_use_route_templates_not_raw_paths(client: httpx.AsyncClient):
    await client.post("/seats/123456", json={"seat_id": "normal-1-1", "count": 1})
    await client.get("/no/such/path/9876")
    text = (await client.get("/metrics")).text
    assert 'http_requests_total{method="POST",path="/seats/{event_id}",status="200"}' in text
    assert 'path="unmatched"' in text
    # Raw ids never become label values (sample values may contain any digits).
    series = [line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")]
    assert not [name for name in series if "123456" in name or "9876" in name]
    assert "http_request_duration_seconds_bucket" in text
    assert "process_resident_memory_bytes" in text


async def test_request_id_is_echoed_or_created(client: httpx.AsyncClient):
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32


def test_production_refuses_development_secrets():
    with pytest.raises(ValueError, match="JWT_SECRET"):
        ServiceSettings(APP_ENV="production")
    ServiceSettings(
        APP_ENV="production",
        JWT_SECRET="a" * 40,
        JWT_REFRESH_SECRET="b" * 40,
        SERVICE_TOKEN="c" * 40,
        PAYMENT_WEBHOOK_SECRET="d" * 40,
        TICKET_SIGNING_SECRET="e" * 40,
    )


async def test_a_client_that_hangs_up_mid_body_is_no_server_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_service_app(settings=SETTINGS, routers=[router], lifecycles=[pg_pool_lifecycle])
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/raw",
        "raw_path": b"/raw",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"t"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 1),
        "server": ("t", 80),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async with running_app(app):
        await app(scope, receive, send)

    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 499
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
