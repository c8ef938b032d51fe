"""The nginx gateway in front of the test stack: routing, rate limit, refusals, headers."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from tests.conftest import gateway_client


async def test_api_events_reaches_event_service_through_gateway(client: httpx.AsyncClient):
    response = await client.get("/api/events")
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() is not None


@pytest.mark.parametrize(
    "prefix", ["/api/auth", "/api/events", "/api/bookings", "/api/payments", "/api/notifications"]
)
async def test_each_prefix_is_routed_to_a_live_service(client: httpx.AsyncClient, prefix: str):
    response = await client.get(f"{prefix}/__no_such_route__")
    assert response.status_code in (401, 404, 405, 400), response.text
    assert "error" in response.json()


async def test_unknown_path_gets_json_404(client: httpx.AsyncClient):
    response = await client.get("/definitely/not/here")
    assert response.status_code == 404
    assert response.json() == {"error": "no such route"}


async def test_burst_of_40_lets_21_through_and_rejects_the_rest_with_json_429():
    async with gateway_client() as one_ip:
        started = time.monotonic()
        responses = await asyncio.gather(
            *(one_ip.get("/api/auth/__burst_probe__") for _ in range(40))
        )
        elapsed = time.monotonic() - started
    rejected = [r for r in responses if r.status_code == 429]
    passed = [r for r in responses if r.status_code != 429]
    # 1 + burst 20 pass at once; the bucket refills at 10 r/s while the burst is in flight.
    refill = int(elapsed * 10)
    assert 21 <= len(passed) <= 21 + refill, (len(passed), elapsed)
    for r in rejected:
        assert r.json()["error"].startswith("rate limit exceeded")
        assert r.headers["retry-after"] == "1"
        assert r.headers["content-type"].startswith("application/json")


async def test_other_client_addresses_are_not_limited_by_a_busy_one():
    async with gateway_client() as noisy, gateway_client() as quiet:
        await asyncio.gather(*(noisy.get("/api/auth/__probe__") for _ in range(40)))
        response = await quiet.get("/api/auth/__probe__")
    assert response.status_code != 429


@pytest.mark.parametrize(
    "path",
    [
        "/internal/events/1/holds",
        "/api/events/internal/1",
        "/api/bookings/internal/bookings/1",
        "/api/auth/internal/users/1",
        "/api/events/../internal/users/1",
        "/api/events/1/lock",
        "/api/events/1/unlock",
        "/api/events/7/holds",
        "/api/events/7/holds/abc/confirm",
    ],
)
async def test_internal_and_seat_lock_paths_are_refused(client: httpx.AsyncClient, path: str):
    for method in ("GET", "POST", "DELETE"):
        response = await client.request(method, path)
        assert response.status_code == 403, (method, path, response.status_code)
        assert "error" in response.json()


async def test_request_id_is_created_when_absent_and_passed_on_when_present(
    client: httpx.AsyncClient,
):
    fresh = await client.get("/api/events")
    assert len(fresh.headers["x-request-id"]) >= 16
    assert fresh.headers.get_list("x-request-id") == [fresh.headers["x-request-id"]]
    given = await client.get("/api/events", headers={"X-Request-ID": "trace-me-123"})
    assert given.headers["x-request-id"] == "trace-me-123"


async def test_cors_preflight_answers_the_configured_origin_only(client: httpx.AsyncClient):
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    allowed = await client.options(
        "/api/bookings", headers={"Origin": "http://localhost:3000", **preflight}
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()

    foreign = await client.options(
        "/api/bookings", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in foreign.headers


async def test_oversized_upload_is_refused_with_json_413(client: httpx.AsyncClient):
    response = await client.post(
        "/api/auth/register",
        content=b"x" * (11 * 1024 * 1024),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


CREDENTIAL_ROUTES = [
    "/api/auth/login",
    "/api/auth/register",
    "/api/auth/verify-email",
    "/api/auth/resend-verification",
    "/api/auth/forgot-password",
    "/api/auth/reset-password",
    "/api/auth/reapply",
]


@pytest.mark.parametrize("path", CREDENTIAL_ROUTES)
async def test_credential_routes_allow_one_request_a_second_burst_5_per_address(path: str):
    """Ten at once from one address: 1 + burst 5 pass (bad bodies, so no hash is spent),
    the rest get the JSON 429; another address and the address's other calls still pass."""
    async with gateway_client() as one_ip, gateway_client() as other_ip:
        started = time.monotonic()
        responses = await asyncio.gather(*(one_ip.post(path, json={}) for _ in range(10)))
        elapsed = time.monotonic() - started
        other = await other_ip.post(path, json={})
        elsewhere = await one_ip.get("/api/auth/me")
    rejected = [r for r in responses if r.status_code == 429]
    passed = [r for r in responses if r.status_code != 429]
    assert 6 <= len(passed) <= 6 + int(elapsed), (len(passed), elapsed)
    for r in rejected:
        assert r.json()["code"] == "too_many_requests"
        assert r.json()["error"].startswith("rate limit exceeded")
        assert r.headers["retry-after"] == "1"
    assert other.status_code == 400
    assert elsewhere.status_code == 401


def _json_of_size(size: int) -> bytes:
    body = b'{"email": "a@example.com", "password": "x", "padding": "'
    return body + b"x" * (size - len(body) - 2) + b'"}'


@pytest.mark.parametrize(
    "path", ["/api/auth/login", "/api/auth/refresh-token", "/api/bookings", "/api/events"]
)
async def test_a_json_body_over_64_kb_is_refused_at_the_gateway_with_json_413(path: str):
    async with gateway_client() as client:
        over = await client.post(
            path, content=_json_of_size(64 * 1024 + 1), headers={"Content-Type": "application/json"}
        )
        under = await client.post(
            path, content=_json_of_size(60 * 1024), headers={"Content-Type": "application/json"}
        )
    assert over.status_code == 413
    assert over.headers["content-type"].startswith("application/json")
    assert over.json()["code"] == "payload_too_large"
    assert "64 KB" in over.json()["error"]
    assert under.status_code != 413
    assert under.json()["error"]  # the service's own answer


async def test_sign_up_and_reapply_uploads_keep_the_document_limit(client: httpx.AsyncClient):
    document = b"%PDF-1.7\n" + b"0" * (1024 * 1024)  # 1 MB, well past the JSON limit
    email = f"big-doc-{uuid.uuid4().hex[:10]}@example.com"
    registered = await client.post(
        "/api/auth/register",
        data={"email": email, "password": "Correct-Horse-1", "role": "organizer"},
        files={"document": ("licence.pdf", document, "application/pdf")},
    )
    reapplied = await client.post(
        "/api/auth/reapply",
        data={"email": email, "password": "Not-The-Password-1"},
        files={"document": ("licence.pdf", document, "application/pdf")},
    )
    assert registered.status_code == 201, registered.text
    assert reapplied.status_code == 401, reapplied.text


async def test_public_event_list_is_micro_cached_but_never_for_signed_in_callers(
    client: httpx.AsyncClient,
):
    path = f"/api/events?q=cache-probe-{uuid.uuid4().hex}"
    first = await client.get(path)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=1"
    assert first.headers["x-cache-status"] in ("MISS", "EXPIRED")
    again = [await client.get(path) for _ in range(3)]
    assert "HIT" in [r.headers["x-cache-status"] for r in again]
    assert all(r.json() == first.json() for r in again)

    signed_in = await client.get(path, headers={"Authorization": "Bearer anything"})
    assert signed_in.headers["x-cache-status"] == "BYPASS"
    detail = await client.get("/api/events/999999999")
    assert "x-cache-status" not in detail.headers
