"""Password hashing is bounded and the same for every email (production argon2 costs).

A flood of logins must not queue hashes without end (every login, the owner's too, would
wait behind them): beyond the workers and a short queue, a login is refused at once with
503 and Retry-After. A login for an email nobody has costs a hash too, the very first one
included, so timing tells no account apart.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert

from auth_service.app import create_app
from auth_service.models import User
from auth_service.settings import AuthSettings
from auth_service.tests.conftest import isolated_settings
from auth_service.tests.support import PASSWORD, new_email
from ticketing_common.testing import running_app


@pytest.fixture
async def one_worker_app(
    base_settings: AuthSettings, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """auth_service with production argon2, one hashing worker and a queue of two, and one
    verified user whose email it yields."""
    settings = isolated_settings(
        base_settings, tmp_path, PASSWORD_HASH_WORKERS=1, PASSWORD_HASH_QUEUE=2
    )
    app = create_app(settings)
    async with running_app(app) as client:
        email = new_email("hash")
        async with app.state.sessionmaker() as session, session.begin():
            password_hash = await app.state.passwords.hash(PASSWORD)
            await session.execute(
                insert(User).values(
                    email=email,
                    password_hash=password_hash,
                    role="user",
                    status="active",
                    is_verified=True,
                )
            )
        yield client, email


async def _timed_login(client: httpx.AsyncClient, email: str, password: str) -> float:
    started = time.perf_counter()
    response = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code in (200, 401), response.text
    return time.perf_counter() - started


async def test_beyond_the_queue_a_login_is_refused_at_once_with_503_and_retry_after(
    one_worker_app: tuple[httpx.AsyncClient, str],
) -> None:
    client, _ = one_worker_app

    async def login(n: int) -> tuple[httpx.Response, float]:
        started = time.perf_counter()
        response = await client.post(
            "/api/auth/login",
            json={"email": new_email(), "password": f"Guess-{n}-x"},
            headers={"X-Real-IP": f"203.0.113.{n}"},
        )
        return response, time.perf_counter() - started

    results = await asyncio.gather(*(login(n) for n in range(8)))

    taken = [(r, t) for r, t in results if r.status_code == 401]
    refused = [(r, t) for r, t in results if r.status_code == 503]
    assert len(taken) == 3  # one hashing, two waiting
    assert len(refused) == 5
    slowest_taken = max(t for _, t in taken)
    for response, seconds in refused:
        assert response.json()["code"] == "password_hashing_busy"
        assert int(response.headers["Retry-After"]) >= 1
        assert seconds < slowest_taken / 2  # refused at once, not after waiting


async def test_the_queue_frees_up_as_hashes_finish(
    one_worker_app: tuple[httpx.AsyncClient, str],
) -> None:
    client, email = one_worker_app
    await asyncio.gather(*(_timed_login(client, new_email(), "Guess-1-x") for _ in range(3)))

    response = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})

    assert response.status_code == 200


async def test_an_unknown_email_costs_one_hash_like_a_known_one_from_the_first_login(
    one_worker_app: tuple[httpx.AsyncClient, str],
) -> None:
    client, email = one_worker_app

    first_unknown = await _timed_login(client, new_email(), "Wrong-Password-1")
    known = [await _timed_login(client, email, "Wrong-Password-1") for _ in range(3)]
    unknown = [await _timed_login(client, new_email(), "Wrong-Password-1") for _ in range(3)]

    one_hash = statistics.median(known)
    print(
        f"\nlogin with a wrong password: known email {one_hash * 1000:.0f} ms, unknown "
        f"{statistics.median(unknown) * 1000:.0f} ms, first unknown {first_unknown * 1000:.0f} ms"
    )
    assert first_unknown < one_hash * 1.5  # not a second hash to make the dummy one
    assert one_hash / 1.5 < statistics.median(unknown) < one_hash * 1.5
