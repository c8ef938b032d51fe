"""An organizer from application to first login, and through rejection and reapplication."""

from __future__ import annotations

from pathlib import Path

import httpx

from auth_service.documents import DOCUMENTS_SUBDIR
from auth_service.settings import AuthSettings
from auth_service.tests.support import PASSWORD, PNG, AuthClient, new_email


async def test_organizer_registers_gets_approved_verifies_and_logs_in(auth: AuthClient) -> None:
    admin = await auth.admin()
    email = new_email("org")
    registered = await auth.register_organizer(email)
    organizer_id = registered.json()["user"]["id"]

    pending = await auth.http.get("/api/auth/admin/organizers/pending", headers=admin.headers)
    assert organizer_id in [o["id"] for o in pending.json()]
    assert (await auth.login(email)).json()["code"] == "organizer_pending"

    approved = await auth.http.post(
        "/api/auth/admin/approve", json={"user_id": organizer_id}, headers=admin.headers
    )
    assert approved.json()["user"]["status"] == "active"
    assert (await auth.login(email)).json()["code"] == "email_not_verified"

    verified = await auth.verify(email)
    assert "access_token" in verified.json()  # approved already, so verification signs in

    login = await auth.login(email)
    assert login.status_code == 200
    me = await auth.http.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert me.json()["role"] == "organizer"
    pending_after = await auth.http.get("/api/auth/admin/organizers/pending", headers=admin.headers)
    assert organizer_id not in [o["id"] for o in pending_after.json()]


async def test_rejected_organizer_reapplies_and_is_pending_again(auth: AuthClient) -> None:
    admin = await auth.admin()
    organizer = await auth.pending_organizer()
    await auth.http.post(
        "/api/auth/admin/reject",
        json={"user_id": organizer.user_id, "reason": "blurry"},
        headers=admin.headers,
    )
    assert (await auth.login(organizer.email)).json()["code"] == "organizer_rejected"

    reapplied = await auth.http.post(
        "/api/auth/reapply", json={"email": organizer.email, "password": PASSWORD}
    )

    assert reapplied.status_code == 200
    assert set(reapplied.json()) == {"message"}
    pending = await auth.http.get("/api/auth/admin/organizers/pending", headers=admin.headers)
    [listed] = [o for o in pending.json() if o["id"] == organizer.user_id]
    assert listed["status"] == "pending"
    assert listed["rejection_reason"] is None
    assert (await auth.login(organizer.email)).json()["code"] == "organizer_pending"
    await auth.http.post(
        "/api/auth/admin/approve", json={"user_id": organizer.user_id}, headers=admin.headers
    )
    assert (await auth.login(organizer.email)).status_code == 200


async def test_reapply_takes_the_originals_urlencoded_form_with_the_password(
    auth: AuthClient,
) -> None:
    user_id, email = await _rejected_organizer(auth)

    without_password = await auth.http.post("/api/auth/reapply", data={"email": email})
    reapplied = await auth.http.post(
        "/api/auth/reapply", data={"email": email, "password": PASSWORD}
    )

    assert without_password.status_code == 400
    assert "send email and password" in without_password.json()["error"]
    assert reapplied.status_code == 200, reapplied.text
    status = await auth.sql("SELECT status FROM users WHERE id = :id", id=user_id)
    assert status.scalar_one() == "pending"


async def test_reapplying_with_a_new_document_replaces_it(auth: AuthClient) -> None:
    admin = await auth.admin()
    organizer = await auth.pending_organizer()
    await auth.http.post(
        "/api/auth/admin/reject", json={"user_id": organizer.user_id}, headers=admin.headers
    )

    documents = Path(auth.settings.upload_dir) / DOCUMENTS_SUBDIR
    first = documents / await _document_name(auth, organizer.user_id)
    assert first.is_file()

    reapplied = await auth.http.post(
        "/api/auth/reapply",
        data={"email": organizer.email, "password": PASSWORD},
        files={"document": ("better.png", PNG, "image/png")},
    )

    assert reapplied.status_code == 200
    document = await auth.http.get(
        f"/api/auth/admin/organizers/{organizer.user_id}/document", headers=admin.headers
    )
    assert document.content == PNG
    assert document.headers["content-type"] == "image/png"
    assert (documents / await _document_name(auth, organizer.user_id)).is_file()
    assert not first.exists()  # the replaced document is not kept


async def _document_name(auth: AuthClient, user_id: int) -> str:
    result = await auth.sql("SELECT document_name FROM users WHERE id = :id", id=user_id)
    name = result.scalar_one()
    assert isinstance(name, str)
    return name


async def test_reapply_refusals_for_the_accounts_owner(auth: AuthClient) -> None:
    user = await auth.user()
    admin = await auth.admin()
    approved = await auth.organizer(admin)
    pending = await auth.pending_organizer()

    async def reapply(email: str) -> httpx.Response:
        return await auth.http.post(
            "/api/auth/reapply", json={"email": email, "password": PASSWORD}
        )

    not_organizer = await reapply(user.email)
    already_approved = await reapply(approved.email)
    already_pending = await reapply(pending.email)
    bad_body = await auth.http.post("/api/auth/reapply", json={"mail": "x", "password": PASSWORD})

    assert not_organizer.status_code == 409
    assert not_organizer.json()["code"] == "not_an_organizer"
    assert already_approved.status_code == 409
    assert already_pending.status_code == 200
    assert "already" in already_pending.json()["message"]
    assert bad_body.status_code == 400


async def _rejected_organizer(auth: AuthClient) -> tuple[int, str]:
    admin = await auth.admin()
    organizer = await auth.pending_organizer()
    await auth.http.post(
        "/api/auth/admin/reject", json={"user_id": organizer.user_id}, headers=admin.headers
    )
    return organizer.user_id, organizer.email


async def test_reapply_without_the_right_password_changes_nothing(auth: AuthClient) -> None:
    user_id, email = await _rejected_organizer(auth)
    document = await _document_name(auth, user_id)

    wrong = await auth.http.post(
        "/api/auth/reapply",
        data={"email": email, "password": "Not-The-Password-1"},
        files={"document": ("forged.png", PNG, "image/png")},
    )
    missing = await auth.http.post(
        "/api/auth/reapply",
        data={"email": email},
        files={"document": ("forged.png", PNG, "image/png")},
    )

    assert wrong.status_code == 401
    assert wrong.json()["code"] == "invalid_credentials"
    assert missing.status_code == 400
    assert "needs the account's password" in missing.json()["error"]
    state = (
        await auth.sql("SELECT status, document_name FROM users WHERE id = :id", id=user_id)
    ).one()
    assert tuple(state) == ("rejected", document)
    documents = Path(auth.settings.upload_dir) / DOCUMENTS_SUBDIR
    assert (documents / document).is_file()


async def test_reapply_answers_strangers_exactly_as_login_does(auth: AuthClient) -> None:
    _, rejected = await _rejected_organizer(auth)
    user = await auth.user()
    approved = await auth.organizer()
    login = await auth.login(rejected, "Not-The-Password-1")

    answers = [
        await auth.http.post(
            "/api/auth/reapply", json={"email": email, "password": "Not-The-Password-1"}
        )
        for email in (rejected, user.email, approved.email, new_email("org"))
    ]

    assert {r.status_code for r in answers} == {401}
    assert all(r.json() == login.json() for r in answers)


async def test_wrong_reapply_passwords_count_as_failed_logins(
    auth: AuthClient, settings: AuthSettings
) -> None:
    _, email = await _rejected_organizer(auth)
    for _ in range(settings.login_backoff_after_failures):
        await auth.http.post(
            "/api/auth/reapply",
            json={"email": email, "password": "Not-The-Password-1"},
            headers={"X-Real-IP": "203.0.113.9"},
        )

    again = await auth.http.post(
        "/api/auth/reapply",
        json={"email": email, "password": PASSWORD},
        headers={"X-Real-IP": "203.0.113.9"},
    )
    login = await auth.login(email, ip="203.0.113.9")

    assert again.status_code == login.status_code == 429


async def test_reapplication_is_audited(auth: AuthClient) -> None:
    admin = await auth.admin()
    organizer = await auth.pending_organizer()
    await auth.http.post(
        "/api/auth/admin/reject", json={"user_id": organizer.user_id}, headers=admin.headers
    )
    await auth.http.post("/api/auth/reapply", json={"email": organizer.email, "password": PASSWORD})

    actions = (
        (
            await auth.sql(
                "SELECT action FROM audit_logs WHERE target_id = :id ORDER BY id",
                id=str(organizer.user_id),
            )
        )
        .scalars()
        .all()
    )

    assert actions[-2:] == ["REJECT_ORGANIZER", "REAPPLY_ORGANIZER"]
