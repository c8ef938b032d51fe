"""A 503 says what is unavailable, never where it lives: no internal URL, host or port."""

from __future__ import annotations

import socket

import httpx
from fastapi import APIRouter, Request

from ticketing_common.app import create_service_app
from ticketing_common.internal.clients import EventsApi
from ticketing_common.settings import ServiceSettings
from ticketing_common.testing import running_app


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the probe closes


def _names_no_address(response: httpx.Response, *addresses: str) -> None:
    text = response.text
    for address in ("127.0.0.1", "localhost", "http://", "amqp://", "redis://", *addresses):
        assert address not in text, f"{response.status_code} names {address!r}: {text}"


async def test_readyz_says_which_dependency_is_down_but_not_where_it_is() -> None:
    port = _dead_port()
    settings = ServiceSettings(
        service_name="readyz_probe", RABBITMQ_PORT=port, DB_NAME="postgres", APP_ENV="test"
    )
    app = create_service_app(settings=settings, routers=[APIRouter()])
    async with running_app(app) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["rabbitmq"].startswith("down: ")
    _names_no_address(response, str(port))


async def test_a_service_that_does_not_answer_is_a_503_without_its_address() -> None:
    port = _dead_port()
    router = APIRouter()

    @router.get("/needs-events")
    async def needs_events(request: Request) -> dict[str, str]:
        events = EventsApi.of(request.app.state.http, request.app.state.settings)
        await events.event(1)
        return {}

    settings = ServiceSettings(
        service_name="caller_probe",
        EVENT_SERVICE_URL=f"http://127.0.0.1:{port}",
        INTERNAL_HTTP_RETRIES=0,
        DB_NAME="postgres",
        APP_ENV="test",
    )
    app = create_service_app(settings=settings, routers=[router])
    async with running_app(app) as client:
        response = await client.get("/needs-events")

    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    _names_no_address(response, str(port))
