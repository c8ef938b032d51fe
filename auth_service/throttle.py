"""Redis counters that slow down guessing: wrong passwords, wrong codes, code emails.

They live in Redis, not in the request's transaction, so a refused attempt still counts
even though the request rolls back, and every replica sees the same count.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auth_service.settings import AuthSettings
from ticketing_common.errors import TooManyRequests

UNKNOWN_ADDRESS = "unknown"


class LoginThrottled(TooManyRequests):
    code = "login_throttled"


@dataclass(frozen=True, slots=True)
class Failure:
    """One more wrong password: the counts it made, and the wait it imposed."""

    from_address: int
    for_account: int
    wait_seconds: int


class _Keys:
    """One account's keys, all on one Redis Cluster slot (the ``{...}`` hash tag)."""

    def __init__(self, email: str, address: str) -> None:
        tag = hashlib.sha256(email.encode()).hexdigest()[:32]
        self.by_address = f"auth:login:{{{tag}}}:by_address"
        self.failures = f"auth:login:{{{tag}}}:failures"
        self.known = f"auth:login:{{{tag}}}:known:{address}"
        self.count_field = address
        self.until_field = f"{address}:until"


class LoginThrottle:
    """Throttles password guesses by account *and* source address (OWASP's authentication
    guidance): a stranger's wrong passwords slow down that stranger, never the owner.

    - Per (account, address): after ``LOGIN_BACKOFF_AFTER_FAILURES`` wrong passwords the
      address waits ``LOGIN_BACKOFF_BASE_SECONDS``, doubled by each further failure, up to
      ``LOGIN_BACKOFF_MAX_SECONDS``. Failures are forgotten ``LOGIN_FAILURE_WINDOW_SECONDS``
      after the last one, and a right password from that address forgets them at once.
    - Per account: after ``LOGIN_ACCOUNT_MAX_FAILURES`` failures from all addresses within
      the window (only many addresses get there, each backing off), only addresses the
      account signed in from in the last ``LOGIN_KNOWN_ADDRESS_DAYS`` may try until the
      window ends. A password reset lifts both.

    Attempts refused here cost no password hash and do not count. Addresses without an
    account are throttled the same way, so the answers enumerate nothing.
    """

    def __init__(
        self, redis: Any, settings: AuthSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock

    async def ensure_may_try(self, email: str, address: str | None) -> None:
        """Refuse (429 with Retry-After) an address that must wait, before any hashing."""
        keys = _Keys(email, address or UNKNOWN_ADDRESS)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.by_address, keys.until_field)
            pipe.get(keys.failures)
            pipe.ttl(keys.failures)
            pipe.exists(keys.known)
            until, account_failures, account_ttl, known = await pipe.execute()
        wait = float(until) - self.clock() if until is not None else 0.0
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise LoginThrottled(
                f"too many wrong passwords from this address: try again in {retry_after} s "
                "or reset the password",
                headers={"Retry-After": str(retry_after)},
            )
        if (
            account_failures is not None
            and int(account_failures) >= self.settings.login_account_max_failures
            and not known
        ):
            retry_after = max(1, int(account_ttl))
            raise LoginThrottled(
                "this account is under attack from many addresses: sign in from a device you "
                f"used before, reset the password, or try again in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )

    async def record_failure(self, email: str, address: str | None) -> Failure:
        keys = _Keys(email, address or UNKNOWN_ADDRESS)
        window = self.settings.login_failure_window_seconds
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(keys.by_address, keys.count_field, 1)
            pipe.expire(keys.by_address, window)
            pipe.incr(keys.failures)
            pipe.expire(keys.failures, window, nx=True)
            from_address, _, for_account, _ = await pipe.execute()
        wait = self.backoff_seconds(int(from_address))
        if wait:
            await self.redis.hset(keys.by_address, keys.until_field, str(self.clock() + wait))
        return Failure(int(from_address), int(for_account), wait)

    def backoff_seconds(self, failures: int) -> int:
        """The wait after the ``failures``-th wrong password from one address: none, then
        base, 2 x base, 4 x base, ... up to the maximum."""
        settings = self.settings
        beyond = failures - settings.login_backoff_after_failures
        if beyond < 0:
            return 0
        longest = settings.login_backoff_max_seconds
        if beyond >= 32:  # far past the cap; keeps the power small
            return longest
        return min(settings.login_backoff_base_seconds << beyond, longest)

    async def record_success(self, email: str, address: str | None) -> None:
        """The right password: this address's failures are forgiven and it becomes known."""
        keys = _Keys(email, address or UNKNOWN_ADDRESS)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hdel(keys.by_address, keys.count_field, keys.until_field)
            if self.settings.login_known_address_days:
                pipe.set(keys.known, "1", ex=self.settings.login_known_address_days * 86400)
            await pipe.execute()

    async def clear(self, email: str) -> None:
        """Forget every failure for the account (a password reset proved who asks)."""
        keys = _Keys(email, UNKNOWN_ADDRESS)
        await self.redis.delete(keys.by_address, keys.failures)


def _code_attempts_key(purpose: str, email: str) -> str:
    return f"auth:code_attempts:{purpose}:{email}"


async def count_code_attempt(redis: Any, purpose: str, email: str, ttl_seconds: int) -> int:
    """One more guess at the address's code; returns how many guesses it has had.

    Counted per address, whether or not it has an account or a live code, so the moment
    guesses run out says nothing about the account.
    """
    key = _code_attempts_key(purpose, email)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, max(1, ttl_seconds), nx=True)
        attempts, _ = await pipe.execute()
    return int(attempts)


async def forget_code_attempts(redis: Any, purpose: str, email: str) -> None:
    """Start the address's count of guesses afresh (a new code, or the right one)."""
    await redis.delete(_code_attempts_key(purpose, email))


async def allow_code_email(redis: Any, settings: AuthSettings, purpose: str, email: str) -> bool:
    """At most ``CODE_EMAILS_PER_WINDOW`` code emails per address and purpose per window.

    An allowed email starts a fresh count of guesses for the address, with or without an
    account behind it (the next code is a new one to guess).
    """
    key = f"auth:code_emails:{purpose}:{email}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, settings.code_email_window_seconds, nx=True)
        sent, _ = await pipe.execute()
    if int(sent) > settings.code_emails_per_window:
        return False
    await forget_code_attempts(redis, purpose, email)
    return True
