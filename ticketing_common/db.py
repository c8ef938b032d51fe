"""Async SQLAlchemy engine and the per-request session.

The session belongs to the request (or message handler) that opened it: the dependency
commits when the handler returns and rolls back when it raises. Services never commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapped, mapped_column

from ticketing_common.settings import ServiceSettings

logger = logging.getLogger("ticketing.db")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


TYPE_ANNOTATION_MAP: dict[Any, Any] = {datetime: DateTime(timezone=True)}


def service_metadata() -> MetaData:
    """A fresh MetaData with the shared constraint naming convention.

    Each service declares its own ``Base`` with this metadata, so its Alembic env only
    sees its own tables even when several services are imported into one process.
    """
    return MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


#: a pooled connection idle longer than this is pinged before it is handed out; under load
#: connections never sit that long, so the ping costs nothing where it matters
PING_AFTER_IDLE_SECONDS = 10.0
#: connections older than this are replaced (a server-side idle timeout never bites)
RECYCLE_SECONDS = 1800


def create_engine(
    settings: ServiceSettings,
    *,
    url: str | None = None,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    application_name: str | None = None,
) -> AsyncEngine:
    """An engine whose pool never hands out a dead connection (see :func:`discard_dead`).

    Every SQLAlchemy engine of the project comes from here, so every pool gets the same
    protection; ``url`` and the sizes default to the service's own database settings.
    Connections carry the service's name (``pg_stat_activity.application_name``).
    """
    engine = create_async_engine(
        url or settings.database_url,
        pool_size=settings.db_pool_size if pool_size is None else pool_size,
        max_overflow=settings.db_max_overflow if max_overflow is None else max_overflow,
        pool_recycle=RECYCLE_SECONDS,
        connect_args={
            "server_settings": {"application_name": application_name or settings.service_name}
        },
    )
    discard_dead(engine)
    return engine


def discard_dead(engine: AsyncEngine) -> None:
    """Check each pooled connection as it is checked out; a dead one is replaced.

    A PostgreSQL restart or failover closes every server connection; asyncpg notices the
    close when it arrives, so a connection already known closed is refused for free. One
    that sat idle (its server may be gone without a word) is pinged first. SQLAlchemy's
    own ``pool_pre_ping`` would instead cost three round trips (BEGIN, ping, ROLLBACK) on
    every checkout, which on the purchase path is a large share of each transaction.
    Raising ``DisconnectionError`` here makes the pool discard the connection and hand out
    a fresh one.
    """
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _idle_from_now(_: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _refuse_dead(dbapi_connection: Any, record: Any, _: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this connection")
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS:
            try:
                dbapi_connection.ping()
            except Exception as exc:
                raise DisconnectionError(f"idle connection failed its ping: {exc}") from exc


async def _keep_session_state(_: asyncpg.Connection) -> None:
    """asyncpg's pool resets every connection it takes back with a second round trip
    (``pg_advisory_unlock_all; CLOSE ALL; UNLISTEN *; RESET ALL``). The raw pool's users
    change no session state (no SET, LISTEN, advisory lock or cursor), so there is
    nothing to reset; asyncpg still ends any open transaction itself."""


async def create_pg_pool(
    settings: ServiceSettings,
    *,
    application_name: str | None = None,
    max_size: int | None = None,
) -> asyncpg.Pool:
    """A raw asyncpg pool for a hot path's statements (the ORM's engine serves the rest).

    Its users must leave no session state behind (see :func:`_keep_session_state`). A
    connection the server closed (a restart) is replaced when it is next acquired.
    """
    pool: asyncpg.Pool = await asyncpg.create_pool(
        host=settings.db_host,
        port=settings.db_port,
        user=settings.db_user,
        password=settings.db_password,
        database=settings.db_name,
        min_size=1,
        max_size=max_size or settings.db_pool_size,
        max_inactive_connection_lifetime=300,
        reset=_keep_session_state,
        server_settings={"application_name": application_name or settings.service_name},
    )
    return pool


#: how long closing a raw pool waits for its connections to come back before cutting them
POOL_CLOSE_SECONDS = 5.0


async def close_pg_pool(pool: asyncpg.Pool, wait_seconds: float = POOL_CLOSE_SECONDS) -> None:
    """Close ``pool``, waiting at most ``wait_seconds`` for connections still in use (asyncpg's
    own close waits for them forever: one request stuck at shutdown would keep the
    process from ever exiting); then the rest are terminated."""
    try:
        await asyncio.wait_for(pool.close(), wait_seconds)
    except TimeoutError:
        logger.warning("pool connections still in use at shutdown: terminated")
        pool.terminate()


@contextlib.asynccontextmanager
async def pg_pool_lifecycle(app: Any) -> AsyncIterator[None]:
    """A service lifecycle giving the app a raw asyncpg pool (``app.state.pg``) for the
    single statements of its hot path; closed at shutdown."""
    app.state.pg = await create_pg_pool(app.state.settings)
    try:
        yield
    finally:
        await close_pg_pool(app.state.pg)


def pg_pool_of(app: Any) -> asyncpg.Pool:
    pool: asyncpg.Pool = app.state.pg
    return pool


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under ``session``, for statements in its open transaction.

    A message handler writes through the consumer's session, whose transaction has begun
    with the inbox row and commits it with the handler's writes. A hot handler's statement
    sent on this connection skips the ORM's statement building and result processing and
    still commits (or rolls back) with the inbox row. The driver begins a session's
    transaction lazily, with its first statement: a session that has sent none yet sends
    one here, so nothing written on the connection can commit on its own.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    if not driver.is_in_transaction():
        await connection.exec_driver_sql("SELECT 1")
    if not driver.is_in_transaction():
        raise RuntimeError("the session's connection is in autocommit: nothing to join")
    return driver


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: commit when the route succeeds, roll back when it raises."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


# scope="function": commit (or roll back) before the response leaves, so a client never
# sees 201 for a transaction that then failed to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def release_connection(session: AsyncSession) -> None:
    """End the session's transaction, committing what it did, so its pooled connection is
    back in the pool before a call that leaves the process (another service, a payment
    provider). The session opens a new transaction on its next statement.

    Call it before every such call: a connection held across one waits on another
    system's latency, and under an on-sale the pool runs dry behind it.
    """
    if session.in_transaction():
        await session.commit()


def on_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run ``action`` once the session's current transaction has committed (never after a
    rollback): for effects outside the database, such as a metric or a file removal."""

    def run(_: object) -> None:
        action()

    event.listen(session.sync_session, "after_commit", run, once=True)
