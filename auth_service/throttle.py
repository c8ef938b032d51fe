"""Redis counters that slow down guessing: failed logins, wrong codes, code emails.

They live in Redis, not in the request's transaction, so a refused attempt still counts
even though the request rolls back, and every replica sees the same count.
"""

from __future__ import annotations

from typing import Any

from auth_service.settings import AuthSettings
from ticketing_common.errors import TooManyRequests


def _login_failures_key(email: str) -> str:
    return f"auth:login_failures:{email}"


class LoginThrottle:
    """After ``LOGIN_MAX_FAILURES`` wrong passwords an account refuses logins (429) for
    ``LOGIN_LOCKOUT_SECONDS`` after the last failure. The lock always runs out, and a
    password reset lifts it at once, so the real owner is never locked out for good.
    Failures for addresses without an account count the same way (no enumeration).
    """

    def __init__(self, redis: Any, settings: AuthSettings) -> None:
        self.redis = redis
        self.max_failures = settings.login_max_failures
        self.lockout_seconds = settings.login_lockout_seconds

    async def ensure_not_locked(self, email: str) -> None:
        key = _login_failures_key(email)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.ttl(key)
            failures, ttl = await pipe.execute()
        if failures is not None and int(failures) >= self.max_failures:
            retry_after = max(1, int(ttl))
            raise TooManyRequests(
                f"too many failed logins for this account; try again in {retry_after} s "
                "or reset the password",
                headers={"Retry-After": str(retry_after)},
            )

    async def record_failure(self, email: str) -> int:
        """Count a failure; returns the count (the lock window restarts when it is reached)."""
        key = _login_failures_key(email)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.lockout_seconds, nx=True)
            failures, _ = await pipe.execute()
        if int(failures) >= self.max_failures:
            await self.redis.expire(key, self.lockout_seconds)
        return int(failures)

    async def clear(self, email: str) -> None:
        await self.redis.delete(_login_failures_key(email))


async def count_code_attempt(redis: Any, code_id: int, ttl_seconds: int) -> int:
    """One more guess at a code; returns how many guesses it has had."""
    key = f"auth:code_attempts:{code_id}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, max(1, ttl_seconds), nx=True)
        attempts, _ = await pipe.execute()
    return int(attempts)


async def allow_code_email(redis: Any, settings: AuthSettings, purpose: str, email: str) -> bool:
    """At most ``CODE_EMAILS_PER_WINDOW`` code emails per address and purpose per window."""
    key = f"auth:code_emails:{purpose}:{email}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, settings.code_email_window_seconds, nx=True)
        sent, _ = await pipe.execute()
    return int(sent) <= settings.code_emails_per_window
