"""An organizer from application to first login, and through rejection and reapplication."""

from __future__ import annotations

from pathlib import Path

from auth_service.documents import DOCUMENTS_SUBDIR
from auth_service.tests.support import PNG, AuthClient, new_email


async def test_organizer_registers_gets_approved_verifies_and_logs_in(auth: AuthClient) -> None:
    admin = await auth.admin()
    email = new_email("org")
    registered = await auth.register_organizer(email)
    organizer_id = registered.json()["user"]["id"]

    pending = await auth.http.get("/api/auth/admin/organizers/pending", headers=admin.headers)
    assert organizer_id in [o["id"] for o in pending.json()["organizers"]]
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
    assert me.json()["user"]["role"] == "organizer"
    pending_after = await auth.http.get("/api/auth/admin/organizers/pending", headers=admin.headers)
    assert organizer_id not in [o["id"] for o in pending_after.json()["organizers"]]


async def test_rejected_organizer_reapplies_and_is_pending_again(auth: AuthClient) -> None:
    admin = await auth.admin()
    organizer = await auth.pending_organizer()
    await auth.http.post(
        "/api/auth/admin/reject",
        json={"user_id": organizer.user_id, "reason": "blurry"},
        headers=admin.headers,
    )
    assert (await auth.login(organizer.email)).json()["code"] == "organizer_rejected"

    reapplied = await auth.http.post("/api/auth/reapply", json={"email": organizer.email})

    assert reapplied.status_code == 200
    pending = await auth.http.get("/api/auth/admin/organizers/pending", headers=admin.headers)
    [listed] = [o for o in pending.json()["organizers"] if o["id"] == organizer.user_id]
    assert listed["status"] == "pending"
    assert listed["rejection_reason"] is None
    assert (await auth.login(organizer.email)).json()["code"] == "organizer_pending"
    await auth.http.post(
        "/api/auth/admin/approve", json={"user_id": organizer.user_id}, headers=admin.headers
    )
    assert (await auth.login(organizer.email)).status_code == 200


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
        data={"email": organizer.email},
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


async def test_reapply_refusals(auth: AuthClient) -> None:
    user = await auth.user()
    admin = await auth.admin()
    approved = await auth.organizer(admin)
    pending = await auth.pending_organizer()

    not_organizer = await auth.http.post("/api/auth/reapply", json={"email": user.email})
    unknown = await auth.http.post("/api/auth/reapply", json={"email": new_email()})
    already_approved = await auth.http.post("/api/auth/reapply", json={"email": approved.email})
    already_pending = await auth.http.post("/api/auth/reapply", json={"email": pending.email})
    bad_body = await auth.http.post("/api/auth/reapply", json={"mail": "x"})

    assert not_organizer.status_code == unknown.status_code == 404
    assert already_approved.status_code == 409
    assert already_pending.status_code == 200
    assert "already" in already_pending.json()["message"]
    assert bad_body.status_code == 400


async def test_reapplication_is_audited(auth: AuthClient) -> None:
    admin = await auth.admin()
    organizer = await auth.pending_organizer()
    await auth.http.post(
        "/api/auth/admin/reject", json={"user_id": organizer.user_id}, headers=admin.headers
    )
    await auth.http.post("/api/auth/reapply", json={"email": organizer.email})

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

    assert actions[-2:] == ["organizer_rejected", "organizer_reapplied"]
