"""What every request and message handler of auth_service shares (one per app)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.passwords import PasswordHasher
from auth_service.settings import AuthSettings


@dataclass(frozen=True, slots=True)
class AuthResources:
    settings: AuthSettings
    sessionmaker: async_sessionmaker[AsyncSession]
    #: refresh tokens, revocations, login throttles and code budgets
    redis: Redis
    #: argon2id (and imported bcrypt) on a bounded pool of threads
    passwords: PasswordHasher


def resources_of(app: Any) -> AuthResources:
    resources: AuthResources = app.state.auth_resources
    return resources


@contextlib.asynccontextmanager
async def auth_resources_lifecycle(app: FastAPI) -> AsyncIterator[None]:
    """After the password hasher's lifecycle: the app's shared pieces, typed, in one place."""
    app.state.auth_resources = AuthResources(
        settings=app.state.settings,
        sessionmaker=app.state.sessionmaker,
        redis=app.state.redis,
        passwords=app.state.passwords,
    )
    yield
