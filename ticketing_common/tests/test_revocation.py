"""Access-token revocation from each process's mirror, against a real Redis.

The mirror answers from memory, and must answer as strictly as a Redis read per request:
a revocation whose writer has returned is enforced by the very next check, in any
process, even one whose event loop has not turned since (the check reads the mirror's
socket first).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from ticketing_common.errors import ServiceUnavailable
from ticketing_common.redis import create_redis
from ticketing_common.revocation import (
    RevocationMirror,
    access_token_revoked_key,
    revoke_access_token,
    revoke_user_tokens,
    user_revoked_before_key,
)
from ticketing_common.security import Principal, Role
from ticketing_common.settings import ServiceSettings
from ticketing_common.testing import PYTEST_REDIS_DB

SETTINGS = ServiceSettings(
    service_name="revocation_probe", APP_ENV="test", REDIS_DB=PYTEST_REDIS_DB
)
IN_STEP_SECONDS = 5.0


def principal(user_id: int, *, issued_at_ms: int | None = None) -> Principal:
    return Principal(
        user_id=user_id,
        role=Role.USER,
        email=None,
        jti=uuid.uuid4().hex,
        issued_at_ms=time.time_ns() // 1_000_000 if issued_at_ms is None else issued_at_ms,
    )


def user_id() -> int:
    """A user no other test (or earlier run) revoked: revocations outlive a test."""
    return 10_000_000 + uuid.uuid4().int % 1_000_000_000


def checks(source: str) -> float:
    return REGISTRY.get_sample_value("access_revocation_checks_total", {"source": source}) or 0.0


@pytest.fixture
async def redis() -> AsyncIterator[Any]:
    client = create_redis(SETTINGS)
    yield client
    await client.aclose()


@pytest.fixture
async def mirror(redis: Any) -> AsyncIterator[RevocationMirror]:
    mirror = RevocationMirror(redis)
    async with mirror.running():
        async with asyncio.timeout(IN_STEP_SECONDS):
            await mirror.wait_in_step()
        yield mirror


class _NoRedis:
    """Stands in for the per-request read: the test fails if a check falls back to it."""

    async def __call__(self, principal: Principal) -> bool:
        raise AssertionError("the check read Redis instead of the mirror")


async def test_a_revocation_is_enforced_from_memory_as_soon_as_its_writer_returns(
    redis: Any, mirror: RevocationMirror
) -> None:
    mirror._per_request = _NoRedis()  # type: ignore[assignment]
    logged_out, other = principal(user_id()), principal(user_id())
    assert not await mirror(logged_out)

    await revoke_access_token(redis, logged_out.jti, 60)

    assert await mirror(logged_out)
    assert not await mirror(other)


async def test_a_revocation_written_by_another_process_is_enforced_before_this_loop_turns(
    redis: Any, mirror: RevocationMirror
) -> None:
    """The writer runs in a process of its own and this event loop is blocked meanwhile
    (subprocess.run): only the check's own read of the socket can find the message."""
    mirror._per_request = _NoRedis()  # type: ignore[assignment]
    for _ in range(10):
        token, user = principal(user_id()), principal(user_id())
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import asyncio, sys\n"
                "from ticketing_common.redis import create_redis\n"
                "from ticketing_common.revocation import revoke_access_token, revoke_user_tokens\n"
                "from ticketing_common.settings import ServiceSettings\n"
                "s = ServiceSettings(service_name='w', APP_ENV='test', "
                f"REDIS_DB={PYTEST_REDIS_DB})\n"
                "async def main():\n"
                "    r = create_redis(s)\n"
                f"    await revoke_access_token(r, '{token.jti}', 60)\n"
                f"    await revoke_user_tokens(r, {user.user_id}, {user.issued_at_ms + 1}, 60)\n"
                "    await r.aclose()\n"
                "asyncio.run(main())\n",
            ],
            check=True,
            timeout=60,
        )
        assert await mirror(token)
        assert await mirror(user)


async def test_revoking_a_users_tokens_refuses_those_issued_before_the_moment_only(
    redis: Any, mirror: RevocationMirror
) -> None:
    now_ms = time.time_ns() // 1_000_000
    user = user_id()
    await revoke_user_tokens(redis, user, now_ms, 60)

    assert await mirror(principal(user, issued_at_ms=now_ms - 1))
    assert not await mirror(principal(user, issued_at_ms=now_ms))
    # a later revocation moves the moment on; an earlier one arriving late does not undo it
    await revoke_user_tokens(redis, user, now_ms + 10, 60)
    await revoke_user_tokens(redis, user, now_ms + 5, 60)
    assert await mirror(principal(user, issued_at_ms=now_ms + 9))
    assert not await mirror(principal(user, issued_at_ms=now_ms + 10))


async def test_revocations_written_before_the_mirror_started_are_copied(redis: Any) -> None:
    token, user = principal(user_id()), principal(user_id())
    await redis.set(access_token_revoked_key(token.jti), "1", ex=60)
    await redis.set(user_revoked_before_key(user.user_id), str(user.issued_at_ms + 1), ex=60)

    mirror = RevocationMirror(redis)
    async with mirror.running():
        async with asyncio.timeout(IN_STEP_SECONDS):
            await mirror.wait_in_step()
        mirror._per_request = _NoRedis()  # type: ignore[assignment]
        assert await mirror(token)
        assert await mirror(user)
        assert not await mirror(principal(user.user_id))  # issued after the moment


async def test_a_revocation_past_its_lifetime_is_forgotten(
    redis: Any, mirror: RevocationMirror
) -> None:
    token = principal(user_id())
    await revoke_access_token(redis, token.jti, 1)
    assert await mirror(token)
    await asyncio.sleep(1.1)
    assert not await mirror(token)
    mirror._forget_expired()
    assert token.jti not in mirror._tokens


async def test_a_lost_connection_reads_redis_until_the_mirror_is_rebuilt(
    redis: Any, mirror: RevocationMirror
) -> None:
    assert mirror._sock is not None
    host, port = mirror._sock.getsockname()[:2]
    await redis.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}")

    # Written behind the mirror's back while it is cut off: no message reaches it.
    token = principal(user_id())
    await redis.set(access_token_revoked_key(token.jti), "1", ex=60)
    from_redis = checks("redis")
    assert await mirror(token)  # found the closed socket, read the key instead
    assert not mirror.in_step
    assert checks("redis") == from_redis + 1

    async with asyncio.timeout(IN_STEP_SECONDS):
        await mirror.wait_in_step()
    mirror._per_request = _NoRedis()  # type: ignore[assignment]
    assert await mirror(token)  # copied again when rebuilt
    assert not await mirror(principal(user_id()))


async def test_out_of_step_and_redis_unreachable_the_check_fails_closed() -> None:
    unreachable = create_redis(SETTINGS.model_copy(update={"redis_addr": "127.0.0.1:1"}))
    mirror = RevocationMirror(unreachable)
    try:
        async with mirror.running():
            await asyncio.sleep(0.3)  # it tries, and cannot connect
            assert not mirror.in_step
            with pytest.raises(ServiceUnavailable):
                await mirror(principal(user_id()))
    finally:
        await unreachable.aclose()


async def test_another_databases_revocations_are_not_taken(
    redis: Any, mirror: RevocationMirror
) -> None:
    other_db = create_redis(SETTINGS.model_copy(update={"redis_db": PYTEST_REDIS_DB + 1}))
    try:
        token = principal(user_id())
        await revoke_access_token(other_db, token.jti, 60)
        assert not await mirror(token)
    finally:
        await other_db.delete(access_token_revoked_key(token.jti))
        await other_db.aclose()


async def test_the_mirror_stops_promptly_at_whatever_point_its_app_stops(redis: Any) -> None:
    """Stopped while connecting, subscribing, copying the keys or in step (redis-py can
    swallow a cancellation that reaches it mid-command: the mirror is told, too)."""
    for step in range(40):
        mirror = RevocationMirror(redis)
        stopping = asyncio.create_task(_run_briefly(mirror, step / 4000))  # 0 to 10 ms
        done, _ = await asyncio.wait({stopping}, timeout=3)
        assert done, f"still stopping after 3 s (stopped {step / 4} ms after it started)"
        assert mirror._sock is None


async def _run_briefly(mirror: RevocationMirror, seconds: float) -> None:
    async with mirror.running():
        await asyncio.sleep(seconds)
