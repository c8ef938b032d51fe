"""Password hashing (argon2id), kept off the event loop and bounded.

Every new hash is argon2id. Accounts imported from the Go original carry its bcrypt hashes:
those are verified too (pwdlib's bcrypt hasher) and replaced by argon2id at the account's
first successful login (``needs_rehash``).

Each hash takes a few hundred milliseconds of CPU and tens of megabytes on purpose, so it
runs in a small dedicated thread pool (argon2-cffi releases the GIL): the event loop keeps
answering other requests, and at most ``PASSWORD_HASH_WORKERS`` hashes hold memory at once.

A flood of logins would otherwise queue hashes without end, and every login, the owner's
too, would wait behind all of them. So a process takes on at most its workers plus
``PASSWORD_HASH_QUEUE`` hashes; the next one is refused at once with 503 and a
Retry-After of about the time the queue needs to drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from argon2.exceptions import InvalidHashError
from fastapi import FastAPI
from pwdlib import PasswordHash
from pwdlib.exceptions import HashVerificationError, UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.base import ensure_bytes
from pwdlib.hashers.bcrypt import BcryptHasher

from auth_service.metrics import PASSWORD_HASHES_REFUSED, PASSWORD_HASHES_TAKEN_ON
from auth_service.settings import AuthSettings
from ticketing_common.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: what a hash is assumed to cost until one has been measured
_FIRST_GUESS_SECONDS = 0.3


class PasswordHashingBusy(ServiceUnavailable):
    code = "password_hashing_busy"


#: Go's bcrypt reads at most this many bytes of a password
BCRYPT_MAX_PASSWORD_BYTES = 72


class OriginalBcryptHasher(BcryptHasher):
    """The Go original's bcrypt hashes (``$2a$10$...``): verified, never made.

    Go's bcrypt keys on the first 72 bytes of a password and ignores the rest, so a longer
    password that signed in there signs in here too (the ``bcrypt`` library would refuse it).
    """

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        return super().verify(ensure_bytes(password)[:BCRYPT_MAX_PASSWORD_BYTES], hash)


class PasswordHasher:
    def __init__(self, settings: AuthSettings) -> None:
        self._argon2 = Argon2Hasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
        )
        # The first hasher makes every new hash; the others only verify old ones.
        self._hashes = PasswordHash((self._argon2, OriginalBcryptHasher()))
        self._workers = settings.password_hash_workers
        self._capacity = settings.password_hash_capacity
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="argon2")
        self._taken_on = 0  # queued or running; only touched on the event loop
        self._seconds_per_hash = _FIRST_GUESS_SECONDS
        self._dummy_hash: str | None = None

    async def prepare(self) -> None:
        """Make the hash a missing account is checked against, before the first login."""
        self._dummy_hash = await self.hash("no such account")

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        if self._taken_on >= self._capacity:
            PASSWORD_HASHES_REFUSED.inc()
            retry_after = self.retry_after_seconds()
            raise PasswordHashingBusy(
                f"too many sign-ins at once: try again in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
        loop = asyncio.get_running_loop()
        future: Future[T] = self._pool.submit(self._timed, fn, *args)
        self._taken_on += 1
        PASSWORD_HASHES_TAKEN_ON.inc()
        # Released when the hash is really done: a caller that gave up waiting does not
        # free a worker that is still busy with its hash.
        future.add_done_callback(lambda _: _call_soon(loop, self._finished))
        return await asyncio.wrap_future(future)

    def _timed(self, fn: Callable[..., T], *args: str) -> T:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            elapsed = time.perf_counter() - started
            self._seconds_per_hash = 0.8 * self._seconds_per_hash + 0.2 * elapsed

    def _finished(self) -> None:
        self._taken_on -= 1
        PASSWORD_HASHES_TAKEN_ON.dec()

    def retry_after_seconds(self) -> int:
        """About how long the hashes already taken on need to finish."""
        return max(1, math.ceil(self._taken_on / self._workers * self._seconds_per_hash))

    async def hash(self, password: str) -> str:
        return await self._run(self._hashes.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._run(self._verify_sync, password_hash, password)

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._hashes.verify(password, password_hash)
        except (UnknownHashError, HashVerificationError):
            logger.error("stored password hash is neither a valid argon2 nor bcrypt hash")
            return False

    async def verify_nobody(self, password: str) -> None:
        """Spend the time a real check would, so a missing account is not told apart."""
        if self._dummy_hash is None:
            await self.prepare()
        assert self._dummy_hash is not None
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """True for a bcrypt hash, or an argon2 one made with other parameters."""
        if not self._argon2.identify(password_hash):
            return True
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed at shutdown: nothing to count
        loop.call_soon_threadsafe(callback)


@contextlib.asynccontextmanager
async def password_hasher_lifecycle(app: FastAPI) -> AsyncIterator[None]:
    hasher = PasswordHasher(app.state.settings)
    app.state.passwords = hasher
    await hasher.prepare()
    try:
        yield
    finally:
        hasher.close()
