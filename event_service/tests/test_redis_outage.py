"""Redis unreachable: public reads fall back to PostgreSQL, holds and writes answer 503."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from event_service.tests.conftest import Service, event_body, make_settings, service_running


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the probe closes


@pytest.fixture
async def without_redis(events: Service) -> AsyncIterator[Service]:
    """A second app on the same database whose Redis is down."""
    settings = make_settings(events.settings.db_name, f"127.0.0.1:{_closed_port()}", False)
    async with service_running(settings, "single") as service:
        yield service


async def test_reads_fall_back_to_postgres_when_redis_is_down(
    events: Service, without_redis: Service
) -> None:
    event = await events.create_event(seats_vip=10)
    await events.hold(event["id"], token="sold", seat_ids=["vip-1-1"])
    await events.confirm(event["id"], "sold", booking_id=1)

    detail = await without_redis.client.get(f"/api/events/{event['id']}")
    listed = await without_redis.client.get("/api/events")

    assert detail.status_code == 200
    assert detail.json()["available_vip"] == 9
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()] == [event["id"]]


async def test_holds_and_writes_answer_503_when_redis_is_down(
    events: Service, without_redis: Service
) -> None:
    event = await events.create_event()

    hold = await without_redis.hold(event["id"], token="t", seat_ids=["vip-1-1"])
    seat_map = await without_redis.client.get(f"/api/events/{event['id']}/seats")
    created = await without_redis.client.post(
        "/api/events", json=event_body(), headers=without_redis.organizer()
    )
    updated = await without_redis.client.put(
        f"/api/events/{event['id']}", json={"title": "Renamed"}, headers=without_redis.organizer()
    )

    assert (hold.status_code, seat_map.status_code) == (503, 503)
    assert (created.status_code, updated.status_code) == (503, 503)
    assert (await events.event(event["id"]))["title"] == event["title"]
    assert len((await events.client.get("/api/events")).json()) == 1


async def test_a_503_names_no_internal_address(events: Service, without_redis: Service) -> None:
    event = await events.create_event()
    redis_host, redis_port = without_redis.settings.redis_addr.split(":")

    answers = [
        await without_redis.hold(event["id"], token="t", seat_ids=["vip-1-1"]),
        await without_redis.client.get(f"/api/events/{event['id']}/seats"),
        await without_redis.client.put(
            f"/api/events/{event['id']}",
            json={"title": "Renamed"},
            headers=without_redis.organizer(),
        ),
        await without_redis.client.get("/readyz"),
    ]

    for answer in answers:
        assert answer.status_code == 503, answer.text
        for address in (redis_host, redis_port, "redis://", "http://"):
            assert address not in answer.text, f"{answer.request.url.path}: {answer.text}"
