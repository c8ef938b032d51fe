"""The login throttle on its own, on real Redis with a clock the tests move."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from auth_service.settings import AuthSettings
from auth_service.throttle import LoginThrottle, LoginThrottled

EMAIL = "someone@example.com"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _throttle(redis: Redis, settings: AuthSettings, clock: Clock, **changes: int) -> LoginThrottle:
    return LoginThrottle(redis, settings.model_copy(update=changes), clock=clock)


async def _retry_after(throttle: LoginThrottle, address: str) -> int | None:
    """The Retry-After of the address's refusal, or None if it may try now."""
    try:
        await throttle.ensure_may_try(EMAIL, address)
    except LoginThrottled as refused:
        headers = refused.headers or {}
        return int(headers["Retry-After"])
    return None


async def test_the_wait_doubles_with_each_failure_up_to_the_cap(
    redis: Redis, settings: AuthSettings
) -> None:
    clock = Clock()
    throttle = _throttle(
        redis,
        settings,
        clock,
        login_backoff_after_failures=3,
        login_backoff_base_seconds=2,
        login_backoff_max_seconds=20,
    )
    waits = []
    for _ in range(8):
        assert await _retry_after(throttle, "192.0.2.1") is None
        failure = await throttle.record_failure(EMAIL, "192.0.2.1")
        waits.append(failure.wait_seconds)
        assert await _retry_after(throttle, "192.0.2.1") == (failure.wait_seconds or None)
        clock.now += failure.wait_seconds

    assert waits == [0, 0, 2, 4, 8, 16, 20, 20]


async def test_a_right_password_forgives_the_address_but_not_the_accounts_total(
    redis: Redis, settings: AuthSettings
) -> None:
    clock = Clock()
    throttle = _throttle(redis, settings, clock, login_backoff_after_failures=2)
    await throttle.record_failure(EMAIL, "192.0.2.1")
    await throttle.record_failure(EMAIL, "192.0.2.1")
    clock.now += 60

    await throttle.record_success(EMAIL, "192.0.2.1")
    after = await throttle.record_failure(EMAIL, "192.0.2.1")

    assert after.from_address == 1
    assert after.wait_seconds == 0
    assert after.for_account == 3


async def test_the_account_ceiling_stops_new_addresses_but_not_known_ones(
    redis: Redis, settings: AuthSettings
) -> None:
    clock = Clock()
    throttle = _throttle(redis, settings, clock, login_account_max_failures=6)
    await throttle.record_success(EMAIL, "198.51.100.7")  # the owner's usual address
    for n in range(6):  # a botnet: two guesses each from three addresses
        await throttle.record_failure(EMAIL, f"203.0.113.{n // 2}")

    new_address = await _retry_after(throttle, "203.0.113.99")
    owner = await _retry_after(throttle, "198.51.100.7")
    await throttle.clear(EMAIL)  # a password reset
    after_reset = await _retry_after(throttle, "203.0.113.99")

    assert new_address is not None
    assert 0 < new_address <= settings.login_failure_window_seconds
    assert owner is None
    assert after_reset is None


async def test_known_addresses_can_be_switched_off(redis: Redis, settings: AuthSettings) -> None:
    clock = Clock()
    throttle = _throttle(
        redis, settings, clock, login_account_max_failures=1, login_known_address_days=0
    )
    await throttle.record_success(EMAIL, "198.51.100.7")
    await throttle.record_failure(EMAIL, "203.0.113.1")

    assert await _retry_after(throttle, "198.51.100.7") is not None


@pytest.mark.parametrize(("failures", "wait"), [(4, 0), (5, 1), (6, 2), (15, 900), (10_000, 900)])
def test_backoff_with_the_default_settings(
    redis: Redis, settings: AuthSettings, failures: int, wait: int
) -> None:
    assert LoginThrottle(redis, settings).backoff_seconds(failures) == wait
