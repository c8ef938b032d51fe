"""Back from a restart: pooled connections the server closed never fail a request.

A restart of PostgreSQL or Redis closes every connection a pool keeps. These tests close
this pool's connections from the server side (``pg_terminate_backend``, ``CLIENT KILL``),
as a restart does, without disturbing anyone else's, then use the pool at once.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest
from sqlalchemy import text

from ticketing_common.db import close_pg_pool, create_engine, create_pg_pool
from ticketing_common.redis import create_redis
from ticketing_common.settings import ServiceSettings

SETTINGS = ServiceSettings(
    service_name="reconnect_probe", DB_NAME="postgres", APP_ENV="test", REDIS_DB=2
)


async def _terminate(application_name: str) -> int:
    """Close every server connection of ``application_name`` (what a restart does)."""
    admin = await asyncpg.connect(
        host=SETTINGS.db_host,
        port=SETTINGS.db_port,
        user=SETTINGS.db_user,
        password=SETTINGS.db_password,
        database=SETTINGS.db_name,
    )
    try:
        killed: int = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1",
            application_name,
        )
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # the termination notices reach the pool's connections
    return killed


async def test_sqlalchemy_pool_replaces_connections_the_server_closed() -> None:
    name = f"probe-{uuid.uuid4().hex[:8]}"
    engine = create_engine(SETTINGS, pool_size=5, max_overflow=0, application_name=name)
    try:

        async def query() -> int:
            async with engine.connect() as conn:
                await asyncio.sleep(0.05)  # hold it, so five connections get opened
                return int((await conn.execute(text("SELECT 1"))).scalar_one())

        assert await asyncio.gather(*(query() for _ in range(5))) == [1] * 5
        assert await _terminate(name) == 5

        assert await asyncio.gather(*(query() for _ in range(5))) == [1] * 5
    finally:
        await engine.dispose()


async def test_sqlalchemy_pool_pings_a_connection_that_sat_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection whose server went away without a word is found out before use."""
    monkeypatch.setattr("ticketing_common.db.PING_AFTER_IDLE_SECONDS", 0.0)
    name = f"probe-{uuid.uuid4().hex[:8]}"
    engine = create_engine(SETTINGS, pool_size=1, max_overflow=0, application_name=name)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        await _terminate(name)
        # The client side never hears of it: as after a failover behind a proxy.
        monkeypatch.setattr(asyncpg.Connection, "is_closed", lambda self: False)

        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 2"))).scalar_one() == 2
    finally:
        await engine.dispose()


async def test_raw_asyncpg_pool_replaces_connections_the_server_closed() -> None:
    name = f"probe-{uuid.uuid4().hex[:8]}"
    settings = SETTINGS.model_copy(update={"db_pool_size": 3})
    pool = await create_pg_pool(settings, application_name=name)
    try:

        async def query() -> int:
            async with pool.acquire() as conn:
                await asyncio.sleep(0.05)
                return int(await conn.fetchval("SELECT 1"))

        assert await asyncio.gather(*(query() for _ in range(3))) == [1] * 3
        assert await _terminate(name) == 3

        assert await asyncio.gather(*(query() for _ in range(3))) == [1] * 3
    finally:
        await pool.close()


async def test_redis_commands_survive_connections_redis_closed() -> None:
    redis = create_redis(SETTINGS)
    name = f"probe-{uuid.uuid4().hex[:8]}"
    key = f"reconnect-probe:{name}"
    try:

        async def command(i: int) -> None:
            await redis.client_setname(name)
            await redis.set(f"{key}:{i}", i, ex=30)

        await asyncio.gather(*(command(i) for i in range(5)))
        clients = [c for c in await redis.client_list() if c.get("name") == name]
        assert clients, "the pool's connections are named"
        for client in clients:
            await redis.client_kill_filter(_id=client["id"])

        values = await asyncio.gather(*(redis.get(f"{key}:{i}") for i in range(5)))
        assert values == [str(i) for i in range(5)]
    finally:
        await redis.delete(*(f"{key}:{i}" for i in range(5)))
        await redis.aclose()


async def test_closing_a_raw_pool_does_not_wait_forever_for_a_connection_in_use() -> None:
    """asyncpg's close waits for every connection to come back; a request stuck at
    shutdown would keep the process alive for good. close_pg_pool cuts it after a bound."""
    pool = await create_pg_pool(SETTINGS, application_name=f"probe-{uuid.uuid4().hex[:8]}")
    await pool.acquire()  # a request that never finishes
    started = time.monotonic()

    await close_pg_pool(pool, wait_seconds=0.5)

    assert time.monotonic() - started < 3
