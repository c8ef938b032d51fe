"""/healthz and /readyz with a real PostgreSQL that is killed mid-test."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter
from sqlalchemy import text

from ticketing_common.app import create_service_app
from ticketing_common.db import SessionDep
from ticketing_common.settings import ServiceSettings
from ticketing_common.testing import running_app

PG_BIN = Path("/usr/lib/postgresql") / sorted(os.listdir("/usr/lib/postgresql"))[-1] / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _db_router() -> APIRouter:
    router = APIRouter()

    @router.get("/db-time")
    async def db_time(session: SessionDep) -> dict[str, str]:
        return {"now": str((await session.execute(text("SELECT now()"))).scalar_one())}

    return router


@pytest.fixture
def private_postgres() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A throwaway PostgreSQL server of our own, so the test can kill it for real."""
    data = Path(tempfile.mkdtemp(prefix="pg-readyz-"))
    shutil.chown(data, "postgres", "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *as_postgres,
            str(PG_BIN / "initdb"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-D",
            str(data / "db"),
        ],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    server = subprocess.Popen(
        [
            *as_postgres,
            str(PG_BIN / "postgres"),
            "-D",
            str(data / "db"),
            "-p",
            str(port),
            "-k",
            str(data),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield port, server
    finally:
        subprocess.run(["pkill", "-KILL", "-f", f"-D {data / 'db'}"], check=False)
        server.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)


async def test_killing_postgres_makes_readyz_name_the_database_while_healthz_stays_up(
    private_postgres: tuple[int, subprocess.Popen[bytes]],
):
    port, server = private_postgres
    settings = ServiceSettings(
        service_name="readyz_probe",
        DB_PORT=port,
        DB_USER="postgres",
        DB_PASSWORD="",
        DB_NAME="postgres",
        APP_ENV="test",
    )
    app = create_service_app(settings=settings, routers=[_db_router()])
    async with running_app(app) as client:
        assert (await client.get("/db-time")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "rabbitmq": "ok"}

        subprocess.run(["pkill", "-KILL", "-f", f"postgres -D .*-p {port}"], check=False)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)

        down = await client.get("/readyz")
        assert down.status_code == 503
        body = down.json()
        assert body["checks"]["database"].startswith("down")
        assert body["checks"]["redis"] == "ok"
        assert body["checks"]["rabbitmq"] == "ok"
        assert body["error"] == "not ready: database down"

        # A request that needs the dead database is a retryable 503, not a 500.
        needs_db = await client.get("/db-time")
        assert needs_db.status_code == 503, needs_db.text
        assert needs_db.json()["code"] == "service_unavailable"
        assert needs_db.headers["retry-after"] == "1"

        alive = await client.get("/healthz")
        assert alive.status_code == 200
        assert alive.json()["status"] == "ok"


async def test_readyz_names_rabbitmq_when_the_broker_port_is_dead():
    settings = ServiceSettings(
        service_name="readyz_probe", RABBITMQ_PORT=_free_port(), DB_NAME="postgres", APP_ENV="test"
    )
    app = create_service_app(settings=settings, routers=[APIRouter()])
    async with running_app(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["rabbitmq"].startswith("down")
