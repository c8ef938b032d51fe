"""Logins hash off the event loop: auth_service stays responsive while 20 run at once.

Twenty clients (each its own address, as the gateway limits per address) log the admin
in at the same moment through the gateway, with the stack's production argon2 settings,
while auth_service's ``/healthz`` is polled directly. Hashing is bounded (workers plus
``PASSWORD_HASH_QUEUE``, 4 per worker by default): on a small machine some of the twenty
are refused at once with a JSON 503 and Retry-After instead of waiting behind the rest.
Figures are printed; the bounds are generous on purpose (a shared machine is noisy).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable

import argon2
import httpx

from tests.support_auth import ADMIN_EMAIL, ADMIN_PASSWORD

LOGINS = 20


_HASHER = argon2.PasswordHasher()  # RFC 9106 low-memory: auth_service's defaults


def _seconds_per_hash(password_hash: str, runs: int = 3) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        _HASHER.verify(password_hash, ADMIN_PASSWORD)
    return (time.perf_counter() - started) / runs


async def test_twenty_concurrent_logins_leave_healthz_fast(
    new_client: Callable[[], httpx.AsyncClient], service_urls: dict[str, str]
) -> None:
    password_hash = _HASHER.hash(ADMIN_PASSWORD)
    hash_before = _seconds_per_hash(password_hash)
    clients = [new_client() for _ in range(LOGINS)]
    latencies: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=service_urls["auth_service"]) as health:
            await health.get("/healthz")
            started = time.perf_counter()
            logins = [
                asyncio.create_task(
                    c.post(
                        "/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
                    )
                )
                for c in clients
            ]
            while not all(task.done() for task in logins):
                probe = time.perf_counter()
                assert (await health.get("/healthz")).status_code == 200
                latencies.append(time.perf_counter() - probe)
                await asyncio.sleep(0.02)
            responses = await asyncio.gather(*logins)
            total = time.perf_counter() - started
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    # Measured before and after, so a machine that gets busier meanwhile skews both sides.
    one_hash = (hash_before + _seconds_per_hash(password_hash)) / 2

    cores = os.cpu_count() or 1
    print(
        f"\none argon2id hash {one_hash * 1000:.0f} ms; {LOGINS} concurrent logins via the "
        f"gateway took {total:.2f} s (sequential {LOGINS * one_hash:.2f} s, ideal on {cores} "
        f"cores {LOGINS * one_hash / cores:.2f} s); /healthz meanwhile: {len(latencies)} probes, "
        f"median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {statistics.quantiles(latencies, n=20)[-1] * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    signed_in = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 503]
    print(f"{len(signed_in)} signed in, {len(refused)} refused while the hash queue was full")
    assert len(signed_in) + len(refused) == LOGINS, [r.text for r in responses]
    assert len(signed_in) >= min(LOGINS, cores)
    for response in refused:
        assert response.json()["code"] == "password_hashing_busy"
        assert int(response.headers["Retry-After"]) >= 1
    # A loop blocked by hashing would make most probes wait a whole hash (~250 ms+).
    assert statistics.median(latencies) < 0.05
    assert statistics.quantiles(latencies, n=20)[-1] < 0.25
    assert max(latencies) < 1.0
    assert total < len(signed_in) * one_hash * 1.5
