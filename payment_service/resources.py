"""The raw asyncpg pool of payment initialize's statements (``app.state.pg``).

The hot path runs single statements on it, each committing on its own; the ORM's engine
(``app.state.sessionmaker``) serves everything else.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
from fastapi import FastAPI

from ticketing_common.db import create_pg_pool


@contextlib.asynccontextmanager
async def pg_pool_lifecycle(app: FastAPI) -> AsyncIterator[None]:
    pool = await create_pg_pool(app.state.settings)
    app.state.pg = pool
    try:
        yield
    finally:
        await pool.close()


def pg_pool_of(app: FastAPI) -> asyncpg.Pool:
    pool: asyncpg.Pool = app.state.pg
    return pool
