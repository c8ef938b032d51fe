"""``/healthz`` (the process is up) and ``/readyz`` (its dependencies answer)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from ticketing_common.settings import ServiceSettings

logger = logging.getLogger("ticketing.health")

CHECK_TIMEOUT_SECONDS = 2.0
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"

ReadinessCheck = Callable[[Request], Awaitable[None]]

health_router = APIRouter(include_in_schema=False)


async def check_database(request: Request) -> None:
    async with request.app.state.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def check_redis(request: Request) -> None:
    if not await request.app.state.redis.ping():
        raise RuntimeError("redis did not answer PING")


async def check_rabbitmq(request: Request) -> None:
    """Open an AMQP connection far enough to read the broker's Connection.Start frame."""
    settings: ServiceSettings = request.app.state.settings
    reader, writer = await asyncio.open_connection(settings.rabbitmq_host, settings.rabbitmq_port)
    try:
        writer.write(_AMQP_HEADER)
        await writer.drain()
        frame = await reader.read(7)
        if len(frame) < 7 or frame[0] != 1:
            raise RuntimeError("no AMQP Connection.Start from the broker")
    finally:
        writer.close()


READINESS_CHECKS: dict[str, ReadinessCheck] = {
    "database": check_database,
    "redis": check_redis,
    "rabbitmq": check_rabbitmq,
}


@health_router.get("/healthz")
async def healthz(request: Request) -> dict[str, str]:
    return {"status": "ok", "service": request.app.state.settings.service_name}


async def _run_check(name: str, check: ReadinessCheck, request: Request) -> str:
    """``ok``, or ``down`` with the kind of failure; what the failure says (addresses,
    ports) goes to the log, never into an answer."""
    try:
        await asyncio.wait_for(check(request), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        logger.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
        return f"down: {type(exc).__name__}"
    return "ok"


@health_router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, ReadinessCheck] = {**READINESS_CHECKS, **request.app.state.extra_checks}
    results = await asyncio.gather(*(_run_check(n, c, request) for n, c in checks.items()))
    status = dict(zip(checks, results, strict=True))
    down = sorted(name for name, result in status.items() if result != "ok")
    body = {
        "status": "ready" if not down else "unavailable",
        "service": request.app.state.settings.service_name,
        "checks": status,
    }
    if down:
        body["error"] = "not ready: " + ", ".join(down) + " down"
    return JSONResponse(body, status_code=503 if down else 200)
