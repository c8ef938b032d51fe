"""A login never blocks the event loop (measured with the production argon2 parameters).

Twenty logins start at once while ``/healthz`` is polled on the same event loop. The
hashes run in the bounded thread pool, so the loop keeps answering health checks, and the
logins finish in about ``20 / cores`` hash times. Bounds are generous: this is a benchmark
that prints its figures, not a tight timing assertion (hashing on the loop itself makes
the median probe wait a whole hash, and fails it).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path

import argon2
import httpx
from sqlalchemy import insert

from auth_service.app import create_app
from auth_service.models import User
from auth_service.settings import AuthSettings
from auth_service.tests.conftest import isolated_settings
from auth_service.tests.support import PASSWORD, new_email
from ticketing_common.testing import running_app

LOGINS = 20
PROBE_INTERVAL = 0.02


def _seconds_per_hash(hasher: argon2.PasswordHasher, password_hash: str, runs: int = 3) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        hasher.verify(password_hash, PASSWORD)
    return (time.perf_counter() - started) / runs


async def test_twenty_logins_run_in_parallel_while_healthz_stays_fast(
    base_settings: AuthSettings, tmp_path: Path
) -> None:
    # default (production) argon2; a queue that takes all twenty (its bound is tested in
    # test_password_hashing.py)
    production = isolated_settings(base_settings, tmp_path, PASSWORD_HASH_QUEUE=LOGINS)
    assert (production.argon2_time_cost, production.argon2_memory_cost) == (3, 65536)
    hasher = argon2.PasswordHasher(
        time_cost=production.argon2_time_cost,
        memory_cost=production.argon2_memory_cost,
        parallelism=production.argon2_parallelism,
    )
    password_hash = hasher.hash(PASSWORD)
    hash_before = _seconds_per_hash(hasher, password_hash)

    app = create_app(production)
    async with running_app(app) as client:
        emails = [new_email("bench") for _ in range(LOGINS)]
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(
                insert(User),
                [
                    {
                        "email": e,
                        "password_hash": password_hash,
                        "role": "user",
                        "status": "active",
                        "is_verified": True,
                    }
                    for e in emails
                ],
            )
        assert (await client.get("/healthz")).status_code == 200  # warm up

        health_latencies: list[float] = []
        started = time.perf_counter()
        logins = [
            asyncio.create_task(
                client.post("/api/auth/login", json={"email": e, "password": PASSWORD})
            )
            for e in emails
        ]
        while not all(task.done() for task in logins):
            # The app shares this event loop, so a probe is timed from the moment it was
            # due: a loop blocked by a hash delays the wake-up, and that delay counts.
            due = time.perf_counter() + PROBE_INTERVAL
            await asyncio.sleep(PROBE_INTERVAL)
            health = await client.get("/healthz")
            health_latencies.append(time.perf_counter() - due)
            assert health.status_code == 200
        responses: list[httpx.Response] = await asyncio.gather(*logins)
        total = time.perf_counter() - started

    # Measured before and after, so a machine that gets busier meanwhile skews both sides.
    one_hash = (hash_before + _seconds_per_hash(hasher, password_hash)) / 2

    cores = min(os.cpu_count() or 1, production.password_hash_workers)
    sequential = LOGINS * one_hash
    print(
        f"\nargon2id t={production.argon2_time_cost} m={production.argon2_memory_cost} KiB "
        f"p={production.argon2_parallelism}: one hash {one_hash * 1000:.0f} ms; "
        f"{LOGINS} concurrent logins took {total:.2f} s "
        f"(sequential {sequential:.2f} s, ideal on {cores} cores {sequential / cores:.2f} s); "
        f"/healthz during them: {len(health_latencies)} probes, "
        f"median {statistics.median(health_latencies) * 1000:.1f} ms, "
        f"p95 {statistics.quantiles(health_latencies, n=20)[-1] * 1000:.1f} ms, "
        f"max {max(health_latencies) * 1000:.1f} ms"
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert len(health_latencies) >= 5
    # A loop blocked by hashing would make most probes wait a whole hash (~250 ms+).
    assert statistics.median(health_latencies) < 0.05
    assert statistics.quantiles(health_latencies, n=20)[-1] < 0.25
    assert max(health_latencies) < 1.0
    assert total < sequential * 1.5
