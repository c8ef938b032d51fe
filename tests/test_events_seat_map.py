"""The seat map through the gateway: gzipped, versioned by ETag, 304 while unchanged."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from tests.support_events import (
    create_event,
    event_service_url,
    internal_headers,
    signed_headers,
)

pytestmark = pytest.mark.stack


async def _raw_get(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as the gateway sent it (not decompressed)."""
    response = await client.send(client.build_request("GET", path, headers=headers), stream=True)
    raw = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    return response, raw


async def test_the_seat_map_comes_gzipped_with_a_version_and_answers_304_until_it_changes(
    client: httpx.AsyncClient,
) -> None:
    event = await create_event(client, headers=signed_headers(), seats_normal=2000)
    path = f"/api/events/{event['id']}/seats"

    zipped, raw = await _raw_get(client, path, {"Accept-Encoding": "gzip"})
    plain = await client.get(path, headers={"Accept-Encoding": "identity"})
    etag = zipped.headers["etag"]
    unchanged = await client.get(path, headers={"If-None-Match": etag})

    assert zipped.status_code == plain.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert json.loads(gzip.decompress(raw)) == plain.json()
    assert len(raw) * 5 < len(plain.content)
    assert plain.headers["etag"] == etag
    assert unchanged.status_code == 304
    assert unchanged.content == b""

    async with httpx.AsyncClient(headers=internal_headers(), timeout=10) as service:
        held = await service.post(
            f"{event_service_url()}/internal/events/{event['id']}/holds",
            json={"token": "gateway-map", "seat_ids": ["vip-1-1"]},
        )
        assert held.status_code == 201, held.text
    changed = await client.get(path, headers={"If-None-Match": etag})

    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    statuses = {seat["seat_id"]: seat["status"] for seat in changed.json()["seats"]}
    assert statuses["vip-1-1"] == "held"


async def test_the_gateway_gzips_json_above_a_kilobyte_and_leaves_small_answers_alone(
    client: httpx.AsyncClient,
) -> None:
    headers = signed_headers()
    for _ in range(3):
        await create_event(client, headers=headers)

    listed, raw = await _raw_get(client, "/api/events?limit=50", {"Accept-Encoding": "gzip"})
    missing, _ = await _raw_get(client, "/api/events/999999999", {"Accept-Encoding": "gzip"})

    assert listed.status_code == 200
    assert listed.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in listed.headers["vary"]
    assert json.loads(gzip.decompress(raw))  # a non-empty bare array
    assert missing.status_code == 404
    assert "content-encoding" not in missing.headers
