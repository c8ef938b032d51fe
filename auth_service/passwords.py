"""argon2id password hashing, kept off the event loop.

Each hash takes a few hundred milliseconds of CPU and tens of megabytes on purpose, so it
runs in a small dedicated thread pool (argon2-cffi releases the GIL): the event loop keeps
answering other requests, and at most ``PASSWORD_HASH_WORKERS`` hashes hold memory at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import FastAPI

from auth_service.settings import AuthSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PasswordHasher:
    def __init__(self, settings: AuthSettings) -> None:
        self._argon2 = argon2.PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
            type=argon2.Type.ID,
        )
        self._pool = ThreadPoolExecutor(
            max_workers=settings.password_hash_workers,
            thread_name_prefix="argon2",
        )
        self._dummy_hash: str | None = None

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def hash(self, password: str) -> str:
        return await self._run(self._argon2.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._run(self._verify_sync, password_hash, password)

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except VerificationError:
            return False
        except InvalidHashError:
            logger.error("stored password hash is not a valid argon2 hash")
            return False

    async def verify_nobody(self, password: str) -> None:
        """Spend the time a real check would, so a missing account is not told apart."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash("no such account")
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@contextlib.asynccontextmanager
async def password_hasher_lifecycle(app: FastAPI) -> AsyncIterator[None]:
    hasher = PasswordHasher(app.state.settings)
    app.state.passwords = hasher
    try:
        yield
    finally:
        hasher.close()
