"""Async SQLAlchemy engine and the per-request session.

The session belongs to the request (or message handler) that opened it: the dependency
commits when the handler returns and rolls back when it raises. Services never commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapped, mapped_column

from ticketing_common.settings import ServiceSettings

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


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


async def _keep_session_state(_: asyncpg.Connection) -> None:
    """asyncpg's pool resets every connection it takes back with a second round trip
    (``pg_advisory_unlock_all; CLOSE ALL; UNLISTEN *; RESET ALL``). The raw pool's users
    change no session state (no SET, LISTEN, advisory lock or cursor), so there is
    nothing to reset; asyncpg still ends any open transaction itself."""


async def create_pg_pool(settings: ServiceSettings) -> asyncpg.Pool:
    """A raw asyncpg pool for a hot path's statements (the ORM's engine serves the rest).

    Its users must leave no session state behind (see :func:`_keep_session_state`).
    """
    pool: asyncpg.Pool = await asyncpg.create_pool(
        host=settings.db_host,
        port=settings.db_port,
        user=settings.db_user,
        password=settings.db_password,
        database=settings.db_name,
        min_size=1,
        max_size=settings.db_pool_size,
        max_inactive_connection_lifetime=300,
        reset=_keep_session_state,
    )
    return pool


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
