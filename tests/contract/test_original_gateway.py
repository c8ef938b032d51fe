"""ORIGINAL_API.md, gateway: the five prefixes on one address, CORS for the front end's
origin with credentials, and the per-address rate limit (the port answers 429 with
``Retry-After`` where the original answered 503)."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import gateway_client
from tests.contract.shapes import assert_shape

pytestmark = pytest.mark.stack

FRONT_END = "http://localhost:3000"


@pytest.mark.parametrize("prefix", ["auth", "events", "bookings", "payments", "notifications"])
async def test_every_prefix_answers_through_the_gateway_with_cors_for_the_front_end(
    prefix: str,
) -> None:
    async with gateway_client() as client:
        preflight = await client.options(
            f"/api/{prefix}/anything",
            headers={
                "Origin": FRONT_END,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        answer = await client.get(f"/api/{prefix}/me", headers={"Origin": FRONT_END})

    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == FRONT_END
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert answer.headers["access-control-allow-origin"] == FRONT_END
    assert answer.status_code < 500
    assert answer.headers["content-type"].startswith("application/json")


async def test_a_client_over_the_rate_limit_gets_a_json_429_with_retry_after() -> None:
    async with gateway_client() as client:
        answers = await asyncio.gather(*(client.get("/api/events/999999999") for _ in range(60)))

    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert "Retry-After" in limited[0].headers
    assert_shape(limited[0].json(), {"error": str})
    assert {a.status_code for a in answers} <= {404, 429}
