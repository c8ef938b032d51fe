"""Seat holds are never reachable through the gateway; only the service token opens them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support_events import (
    create_event,
    event_service_url,
    internal_headers,
    seat_statuses,
    signed_headers,
)

pytestmark = pytest.mark.stack

HOLD_PATHS = [
    ("POST", "/internal/events/{id}/holds"),
    ("DELETE", "/internal/events/{id}/holds/probe-token"),
    ("POST", "/internal/events/{id}/holds/probe-token/confirm"),
    ("GET", "/internal/events/{id}"),
    ("POST", "/INTERNAL/events/{id}/holds"),
    ("POST", "/%69nternal/events/{id}/holds"),
    ("POST", "/api/events/../../internal/events/{id}/holds"),
    ("POST", "/api/events/%2e%2e/%2e%2e/internal/events/{id}/holds"),
    ("POST", "/api/events/{id}/holds"),
    ("POST", "/api/events/{id}/holds/probe-token/confirm"),
    ("DELETE", "/api/events/{id}/holds/probe-token"),
    ("POST", "/api/events/{id}/lock"),
    ("POST", "/api/events/{id}/hold"),
]
HOLD_BODY: dict[str, Any] = {"token": "probe-token", "seat_ids": ["vip-1-1"], "ttl_seconds": 60}


@pytest.mark.parametrize(("method", "path"), HOLD_PATHS)
async def test_gateway_refuses_hold_paths_even_with_the_service_token(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    event = await create_event(client, headers=signed_headers())
    url = httpx.URL(client.base_url.join("/")).copy_with(
        raw_path=path.format(id=event["id"]).encode()
    )

    response = await client.request(
        method, url, json=HOLD_BODY if method == "POST" else None, headers=internal_headers()
    )

    assert response.status_code in (400, 403), (path, response.status_code, response.text)
    assert (await seat_statuses(client, event["id"]))["vip-1-1"] == "available"


async def test_only_the_service_token_opens_the_hold_api_on_the_service_itself(
    client: httpx.AsyncClient,
) -> None:
    event = await create_event(client, headers=signed_headers())
    holds = f"{event_service_url()}/internal/events/{event['id']}/holds"

    async with httpx.AsyncClient(timeout=10) as direct:
        anonymous = await direct.post(holds, json=HOLD_BODY)
        as_admin = await direct.post(holds, json=HOLD_BODY, headers=signed_headers(role="admin"))
        wrong = await direct.post(holds, json=HOLD_BODY, headers={"X-Service-Token": "guess"})
        assert (anonymous.status_code, as_admin.status_code, wrong.status_code) == (401, 401, 401)
        assert (await seat_statuses(client, event["id"]))["vip-1-1"] == "available"

        held = await direct.post(holds, json=HOLD_BODY, headers=internal_headers())
        assert held.status_code == 201, held.text
        assert (await seat_statuses(client, event["id"]))["vip-1-1"] == "held"
        released = await direct.delete(f"{holds}/probe-token", headers=internal_headers())
        assert released.status_code == 204
    assert (await seat_statuses(client, event["id"]))["vip-1-1"] == "available"
