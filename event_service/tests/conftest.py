"""event_service in-process, on real PostgreSQL and on Redis servers these tests start.

Seat-gate tests wipe Redis (FLUSHALL) to prove the gate is rebuilt from PostgreSQL, so
they never touch the shared Redis: the session starts a single redis-server and a
3-primary Redis Cluster (Debian's redis-server, loopback ports, no persistence) and stops
them at the end. The app runs once per Redis mode; before each test every table is
emptied and that Redis is flushed.
"""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from event_service.app import create_app
from event_service.models import Base
from event_service.seat_gate import RestoredHold
from event_service.settings import EventSettings
from ticketing_common.messaging import MESSAGING_TABLES
from ticketing_common.security import SERVICE_TOKEN_HEADER, issue_token
from ticketing_common.testing import fresh_database, running_app, truncate_all

VHOST = "ticketing_pytest_events"  # one per Redis mode: a message must reach the app on its Redis
MODES = ("single", "cluster")
CLUSTER_SIZE = 3


# -- Redis servers of our own ----------------------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports whose cluster-bus twin (port + 10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20_000, 39_999)
        if port not in ports and _port_free(port) and _port_free(port + 10_000):
            ports.append(port)
    return ports


def _redis_cli(port: int, *args: str) -> str:
    result = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return result.stdout + result.stderr


def _wait_until(predicate: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def redis_servers(folder: Path, ports: list[int], *extra: str) -> Iterator[list[int]]:
    processes = []
    try:
        for port in ports:
            workdir = folder / str(port)
            workdir.mkdir()
            processes.append(
                subprocess.Popen(
                    [
                        "redis-server",
                        "--port", str(port),
                        "--bind", "127.0.0.1",
                        "--save", "",
                        "--appendonly", "no",
                        "--dir", str(workdir),
                        *extra,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        for port in ports:
            _wait_until(lambda p=port: "PONG" in _redis_cli(p, "ping"), f"redis on {port}")
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session")
def single_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("redis-single")
    with redis_servers(folder, _free_ports(1)) as [port]:
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def cluster_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("redis-cluster")
    ports = _free_ports(CLUSTER_SIZE)
    cluster_flags = ("--cluster-enabled", "yes", "--cluster-node-timeout", "5000")
    with redis_servers(folder, ports, *cluster_flags):
        nodes = [f"127.0.0.1:{port}" for port in ports]
        created = _redis_cli(
            ports[0], "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"
        )
        assert "All 16384 slots covered" in created, created
        for port in ports:
            _wait_until(
                lambda p=port: "cluster_state:ok" in _redis_cli(p, "cluster", "info"),
                f"cluster state ok on {port}",
            )
        yield nodes[0]


# -- settings and apps ------------------------------------------------------------------


def _ensure_vhost(name: str) -> None:
    """Our own RabbitMQ vhost for the consumers. Retried: another suite may be restarting
    the broker; without it the app still serves (its consumers wait for the broker)."""
    for _ in range(20):
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], capture_output=True, check=False)
        granted = subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
            capture_output=True,
            check=False,
        )
        if granted.returncode == 0:
            break
        time.sleep(1)
    for routing_key in ("booking_confirmed", "booking_cancelled"):  # leftovers of a past run
        subprocess.run(
            ["rabbitmqctl", "-q", "purge_queue", "-p", name, f"event_service.{routing_key}"],
            capture_output=True,
            check=False,
        )


@pytest.fixture(scope="session")
def database_name() -> str:
    for mode in MODES:
        _ensure_vhost(f"{VHOST}_{mode}")
    return fresh_database("event_service", EventSettings).db_name


def make_settings(database: str, redis_addr: str, cluster: bool, **overrides: Any) -> EventSettings:
    values: dict[str, Any] = {
        "DB_NAME": database,
        "REDIS_ADDR": redis_addr,
        "REDIS_CLUSTER": cluster,
        "REDIS_DB": 0,
        "RABBITMQ_VHOST": f"{VHOST}_{'cluster' if cluster else 'single'}",
        "APP_ENV": "test",
        # Small pools: the database server is shared with every other suite.
        "DB_POOL_SIZE": 5,
        "DB_MAX_OVERFLOW": 5,
        **overrides,
    }
    return EventSettings(**values)


@dataclass
class Service:
    """A running event_service and the ways a test talks to it."""

    mode: str
    app: FastAPI
    client: httpx.AsyncClient
    settings: EventSettings

    @property
    def redis(self) -> Any:
        return self.app.state.redis

    def organizer(self, user_id: int = 101, role: str = "organizer") -> dict[str, str]:
        return bearer(self.settings, user_id, role)

    @property
    def internal(self) -> dict[str, str]:
        return {SERVICE_TOKEN_HEADER: self.settings.service_token}

    async def create_event(self, user_id: int = 101, **overrides: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/api/events", json=event_body(**overrides), headers=self.organizer(user_id)
        )
        assert response.status_code == 201, response.text
        event: dict[str, Any] = response.json()["event"]
        return event

    async def hold(self, event_id: int, **body: Any) -> httpx.Response:
        return await self.client.post(
            f"/internal/events/{event_id}/holds", json=body, headers=self.internal
        )

    async def release(self, event_id: int, token: str) -> httpx.Response:
        return await self.client.delete(
            f"/internal/events/{event_id}/holds/{token}", headers=self.internal
        )

    async def confirm(self, event_id: int, token: str, booking_id: int) -> httpx.Response:
        return await self.client.post(
            f"/internal/events/{event_id}/holds/{token}/confirm",
            json={"booking_id": booking_id},
            headers=self.internal,
        )

    async def seat_statuses(self, event_id: int) -> dict[str, str]:
        response = await self.client.get(f"/api/events/{event_id}/seats")
        assert response.status_code == 200, response.text
        return {seat["seat_id"]: seat["status"] for seat in response.json()["seats"]}

    async def event(self, event_id: int) -> dict[str, Any]:
        response = await self.client.get(f"/api/events/{event_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def bearer(settings: EventSettings, user_id: int, role: str) -> dict[str, str]:
    token, _ = issue_token(
        secret=settings.jwt_secret,
        user_id=user_id,
        role=role,
        token_type="access",
        ttl=timedelta(minutes=15),
    )
    return {"Authorization": f"Bearer {token}"}


def event_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Rift Valley Jazz Night",
        "description": "An evening of Ethio-jazz.",
        "date": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "location": "Addis Ababa",
        "price_normal": "150.00",
        "price_vip": "400.00",
        "price_vvip": "900.00",
        "seats_normal": 20,
        "seats_vip": 10,
        "seats_vvip": 4,
        "seats_per_row": 10,
    }
    body.update(overrides)
    return body


@contextlib.asynccontextmanager
async def service_running(settings: EventSettings, mode: str) -> AsyncIterator[Service]:
    app = create_app(settings)
    async with running_app(app) as client:
        yield Service(mode, app, client, settings)


@pytest.fixture(scope="session")
async def single_service(database_name: str, single_redis: str) -> AsyncIterator[Service]:
    async with service_running(make_settings(database_name, single_redis, False), "single") as s:
        yield s


@pytest.fixture(scope="session", params=MODES)
async def gate_service(
    request: pytest.FixtureRequest, database_name: str
) -> AsyncIterator[Service]:
    redis_addr: str = request.getfixturevalue(f"{request.param}_redis")
    settings = make_settings(database_name, redis_addr, request.param == "cluster")
    async with service_running(settings, request.param) as service:
        yield service


async def no_pending_bookings(_: int) -> list[RestoredHold]:
    """booking_service is not part of this suite: a rebuild finds no pending bookings (its
    own tests rebuild against the real booking_service)."""
    return []


async def reset(service: Service) -> None:
    await truncate_all(service.settings, Base.metadata, extra_tables=MESSAGING_TABLES)
    await service.redis.flushall()
    service.app.state.event_resources.gate.use_holds_source(no_pending_bookings)


@pytest.fixture
async def events(single_service: Service) -> Service:
    """The service on a single Redis node, emptied."""
    await reset(single_service)
    return single_service


@pytest.fixture
async def gate(gate_service: Service) -> Service:
    """The service on a single Redis node, then on a 3-primary Redis Cluster, emptied."""
    await reset(gate_service)
    return gate_service
