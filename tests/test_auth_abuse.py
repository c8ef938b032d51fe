"""Guessing and probing auth_service through the gateway, as an attacker would.

A stranger's wrong passwords slow down that stranger's address, never the account's owner
elsewhere; /reapply needs the account's password; and neither the answers nor the time of
forgot-password tell whether an account exists. Each simulated client has its own
loopback address, as the gateway limits per address.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable

import httpx

from tests.conftest import Mailbox, unique_email
from tests.support_auth import (
    PASSWORD,
    admin_token,
    bearer,
    register_organizer,
    register_user,
)

WRONG = "Not-The-Password-1"


async def test_a_strangers_wrong_passwords_do_not_lock_the_owner_out(
    new_client: Callable[[], httpx.AsyncClient], mailbox: Mailbox
) -> None:
    async with new_client() as owner:
        email, password, _ = await register_user(owner, mailbox)
    async with new_client() as stranger:
        guesses = [
            await stranger.post("/api/auth/login", json={"email": email, "password": WRONG})
            for _ in range(6)
        ]
        right_from_stranger = await stranger.post(
            "/api/auth/login", json={"email": email, "password": password}
        )
    async with new_client() as owner_elsewhere:
        owner_login = await owner_elsewhere.post(
            "/api/auth/login", json={"email": email, "password": password}
        )

    assert [r.status_code for r in guesses] == [401] * 5 + [429]
    assert guesses[-1].json()["code"] == "login_throttled"
    assert int(guesses[-1].headers["Retry-After"]) >= 1
    assert right_from_stranger.status_code == 429  # that address waits, whatever it sends
    assert owner_login.status_code == 200, owner_login.text


async def test_reapply_needs_the_password_and_tells_strangers_nothing(
    new_client: Callable[[], httpx.AsyncClient], mailbox: Mailbox
) -> None:
    async with new_client() as organizer, new_client() as admin_client:
        email, organizer_id = await register_organizer(organizer, mailbox)
        admin = bearer(await admin_token(admin_client))
        rejected = await admin_client.post(
            "/api/auth/admin/reject", json={"user_id": organizer_id}, headers=admin
        )
        assert rejected.status_code == 200
    async with new_client() as stranger:
        no_password = await stranger.post("/api/auth/reapply", json={"email": email})
        wrong = await stranger.post("/api/auth/reapply", json={"email": email, "password": WRONG})
        unknown = await stranger.post(
            "/api/auth/reapply", json={"email": unique_email("org"), "password": WRONG}
        )
        login = await stranger.post("/api/auth/login", json={"email": email, "password": WRONG})
    async with new_client() as admin_client:
        admin = bearer(await admin_token(admin_client))
        pending = await admin_client.get("/api/auth/admin/organizers/pending", headers=admin)
    async with new_client() as organizer:
        reapplied = await organizer.post(
            "/api/auth/reapply", json={"email": email, "password": PASSWORD}
        )

    assert no_password.status_code == 400
    assert "password" in no_password.json()["error"]
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == login.json()
    assert organizer_id not in [o["id"] for o in pending.json()]
    assert reapplied.status_code == 200, reapplied.text


async def test_forgot_password_takes_as_long_for_an_unknown_email_as_for_a_known_one(
    new_client: Callable[[], httpx.AsyncClient], mailbox: Mailbox
) -> None:
    """Each sample from a fresh address (the gateway allows 1 r/s per address there), known
    and unknown interleaved at random, with a pause so no request overlaps another's work.
    Medians: a few slow samples on a busy machine do not decide it."""
    accounts = []
    for _ in range(12):
        async with new_client() as client:
            response = await client.post(
                "/api/auth/register", json={"email": unique_email("timing"), "password": PASSWORD}
            )
            assert response.status_code == 201, response.text
            accounts.append(response.json()["user"]["email"])
    # three each: the code emails an address may receive per window
    samples = [("known", email) for email in accounts * 3]
    samples += [("unknown", unique_email("nobody")) for _ in samples]
    random.Random(17).shuffle(samples)
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for kind, email in samples:
        async with new_client() as client:
            await client.get("/gateway/healthz")  # connected before the clock starts
            started = time.perf_counter()
            response = await client.post("/api/auth/forgot-password", json={"email": email})
            times[kind].append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
        await asyncio.sleep(0.1)

    known, unknown = statistics.median(times["known"]), statistics.median(times["unknown"])
    print(f"\nforgot-password median: known {known * 1000:.1f} ms, unknown {unknown * 1000:.1f} ms")
    # before: a known email took the unknown's time plus a code, an outbox message, an
    # audit line and their commit (7 to 30 ms more here)
    assert abs(known - unknown) < max(0.003, 0.25 * unknown)
