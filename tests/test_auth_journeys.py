"""Account journeys through the gateway, codes read from the emails notification sends.

These need notification_service to deliver the verification and reset emails to the
``mailbox`` SMTP server; everything else (refusals, sessions) is in test_auth_security.py.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.conftest import Mailbox, unique_email
from tests.support_auth import (
    PASSWORD,
    PASSWORD_RESET,
    admin_token,
    bearer,
    code_from_mailbox,
    login,
    register_organizer,
    register_user,
)

NEW_PASSWORD = "Brand-New-Secret-7"


async def test_user_registers_verifies_the_emailed_code_and_logs_in(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    email, password, tokens = await register_user(client, mailbox)

    me = await client.get("/api/auth/me", headers=bearer(tokens["access_token"]))
    again = await login(client, email, password)

    assert me.status_code == 200
    assert me.json() == {
        **me.json(),
        "email": email,
        "role": "user",
        "status": "active",
        "approval_status": "approved",
        "is_verified": True,
    }
    assert again["user_id"] == tokens["user_id"]


async def test_organizer_journey_from_application_to_login(
    client: httpx.AsyncClient, mailbox: Mailbox, new_client: Callable[[], httpx.AsyncClient]
) -> None:
    async with new_client() as admin_client:
        admin = bearer(await admin_token(admin_client))
        email, organizer_id = await register_organizer(client, mailbox, verify=False)

        pending = await admin_client.get("/api/auth/admin/organizers/pending", headers=admin)
        assert organizer_id in [o["id"] for o in pending.json()]
        refused = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert refused.status_code == 401
        assert refused.json()["error"] == "account pending approval"

        approved = await admin_client.post(
            "/api/auth/admin/approve", json={"user_id": organizer_id}, headers=admin
        )
        assert approved.status_code == 200

        code = await code_from_mailbox(mailbox, email)
        verified = await client.post("/api/auth/verify-email", json={"email": email, "code": code})
        assert verified.status_code == 200
        assert "access_token" in verified.json()

        tokens = await login(client, email)
        me = await client.get("/api/auth/me", headers=bearer(tokens["access_token"]))
        assert me.json()["role"] == "organizer"


async def test_rejected_organizer_is_refused_then_reapplies_and_waits_again(
    client: httpx.AsyncClient, mailbox: Mailbox, new_client: Callable[[], httpx.AsyncClient]
) -> None:
    async with new_client() as admin_client:
        admin = bearer(await admin_token(admin_client))
        email, organizer_id = await register_organizer(client, mailbox)
        rejected = await admin_client.post(
            "/api/auth/admin/reject",
            json={"user_id": organizer_id, "reason": "unreadable document"},
            headers=admin,
        )
        assert rejected.status_code == 200

        refused = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert refused.status_code == 401
        assert refused.json() == {"error": "account rejected", "code": "organizer_rejected"}

        reapplied = await client.post(
            "/api/auth/reapply", json={"email": email, "password": PASSWORD}
        )
        assert reapplied.status_code == 200

        pending = await admin_client.get("/api/auth/admin/organizers/pending", headers=admin)
        assert organizer_id in [o["id"] for o in pending.json()]
        still_waiting = await client.post(
            "/api/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert still_waiting.json()["error"] == "account pending approval"


async def test_password_reset_by_emailed_code(client: httpx.AsyncClient, mailbox: Mailbox) -> None:
    email, _, tokens = await register_user(client, mailbox)

    forgot = await client.post("/api/auth/forgot-password", json={"email": email})
    code = await code_from_mailbox(mailbox, email, PASSWORD_RESET)
    reset = await client.post(
        "/api/auth/reset-password",
        json={"email": email, "code": code, "new_password": NEW_PASSWORD},
    )
    reused = await client.post(
        "/api/auth/reset-password",
        json={"email": email, "code": code, "new_password": "Another-Secret-8"},
    )

    assert forgot.status_code == 200
    assert len(code) == 6
    assert code.isdigit()
    assert reset.status_code == 200
    assert reused.status_code == 400
    old_session = await client.get("/api/auth/me", headers=bearer(tokens["access_token"]))
    assert old_session.status_code == 401
    await login(client, email, NEW_PASSWORD)


async def test_forgot_password_for_an_unknown_address_sends_nothing_and_looks_the_same(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    email, _, _ = await register_user(client, mailbox)
    stranger = unique_email("nobody")

    known = await client.post("/api/auth/forgot-password", json={"email": email})
    unknown = await client.post("/api/auth/forgot-password", json={"email": stranger})

    assert known.status_code == unknown.status_code == 200
    assert known.json() == unknown.json()
    await code_from_mailbox(mailbox, email, PASSWORD_RESET)  # the real one arrives
    assert mailbox.matching(stranger) == []


async def test_user_reads_own_account_but_not_another(
    client: httpx.AsyncClient, mailbox: Mailbox, new_client: Callable[[], httpx.AsyncClient]
) -> None:
    _, _, mine = await register_user(client, mailbox)
    async with new_client() as other_client:
        _, _, theirs = await register_user(other_client, mailbox)

    own = await client.get(
        f"/api/auth/users/{mine['user_id']}", headers=bearer(mine["access_token"])
    )
    other = await client.get(
        f"/api/auth/users/{theirs['user_id']}", headers=bearer(mine["access_token"])
    )
    admin_routes = await client.get("/api/auth/admin/users", headers=bearer(mine["access_token"]))

    assert own.status_code == 200
    assert other.status_code == 403
    assert admin_routes.status_code == 403
