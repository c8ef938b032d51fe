"""/api/auth/admin: roles, organizer approval, users, deletion and the audit log."""

from __future__ import annotations

import json

import pytest

from auth_service.tests.support import PDF, Account, AuthClient, bearer, new_email
from ticketing_common.pagination import MAX_LIMIT as LIST_CAP

ADMIN_ROUTES = [
    ("POST", "/api/auth/admin/promote", {"user_id": 1}),
    ("POST", "/api/auth/admin/approve", {"user_id": 1}),
    ("POST", "/api/auth/admin/reject", {"user_id": 1}),
    ("GET", "/api/auth/admin/organizers/pending", None),
    ("GET", "/api/auth/admin/organizers/1/document", None),
    ("GET", "/api/auth/admin/users", None),
    ("DELETE", "/api/auth/admin/users", {"user_id": 1}),
    ("DELETE", "/api/auth/admin/users/1", None),
    ("GET", "/api/auth/admin/audit-logs", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_admin_routes_refuse_users_and_organizers_with_403(
    auth: AuthClient, method: str, path: str, body: dict[str, int] | None
) -> None:
    user = await auth.user()
    organizer = await auth.organizer()

    for account in (user, organizer):
        response = await auth.http.request(method, path, json=body, headers=account.headers)
        assert response.status_code == 403
        assert "admin" in response.json()["error"]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_admin_routes_refuse_anonymous_callers_with_401(
    auth: AuthClient, method: str, path: str, body: dict[str, int] | None
) -> None:
    response = await auth.http.request(method, path, json=body)

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/admin/promote", {}),
        ("/api/auth/admin/promote", {"user_id": "abc"}),
        ("/api/auth/admin/promote", {"user_id": 2, "role": "superuser"}),
        ("/api/auth/admin/approve", {"user_id": -1}),
        ("/api/auth/admin/approve", {"user_id": 10**30}),
        ("/api/auth/admin/reject", {"user_id": 2, "reason": "x" * 501}),
    ],
)
async def test_bad_admin_bodies_are_400(
    auth: AuthClient, path: str, body: dict[str, object]
) -> None:
    admin = await auth.admin()

    response = await auth.http.post(path, json=body, headers=admin.headers)

    assert response.status_code == 400


async def test_unknown_user_is_404(auth: AuthClient) -> None:
    admin = await auth.admin()

    for path in ("/api/auth/admin/promote", "/api/auth/admin/approve", "/api/auth/admin/reject"):
        response = await auth.http.post(path, json={"user_id": 999_999}, headers=admin.headers)
        assert response.status_code == 404


async def test_promote_makes_an_approved_organizer_as_the_original(auth: AuthClient) -> None:
    admin = await auth.admin()
    user = await auth.user()

    response = await auth.http.post(
        "/api/auth/admin/promote", json={"user_id": user.user_id}, headers=admin.headers
    )

    assert response.status_code == 200
    assert response.json()["message"] == "User promoted to Organizer"
    assert response.json()["user"]["role"] == "organizer"
    assert response.json()["user"]["approval_status"] == "approved"
    assert (await auth.http.get("/api/auth/me", headers=user.headers)).status_code == 401
    promoted = await auth.signed_in(user.email)
    me = await auth.http.get("/api/auth/me", headers=promoted.headers)
    assert me.json()["role"] == "organizer"


async def test_promote_approves_a_pending_organizer(auth: AuthClient) -> None:
    admin = await auth.admin()
    pending = await auth.pending_organizer()

    response = await auth.http.post(
        "/api/auth/admin/promote", json={"user_id": pending.user_id}, headers=admin.headers
    )

    assert response.json()["user"]["status"] == "active"
    assert (await auth.login(pending.email)).status_code == 200


async def test_promote_makes_an_admin_only_when_asked_by_name(auth: AuthClient) -> None:
    admin = await auth.admin()
    user = await auth.user()

    response = await auth.http.post(
        "/api/auth/admin/promote",
        json={"user_id": user.user_id, "role": "admin"},
        headers=admin.headers,
    )

    assert response.status_code == 200
    assert response.json()["message"] == "User promoted to Admin"
    assert response.json()["user"]["role"] == "admin"
    assert (await auth.http.get("/api/auth/me", headers=user.headers)).status_code == 401
    promoted = await auth.signed_in(user.email)
    users = await auth.http.get("/api/auth/admin/users", headers=promoted.headers)
    assert users.status_code == 200


async def test_admins_are_not_demoted_and_promoting_twice_is_harmless(auth: AuthClient) -> None:
    admin = await auth.admin()
    other = await auth.user()
    as_admin = {"user_id": other.user_id, "role": "admin"}
    await auth.http.post("/api/auth/admin/promote", json=as_admin, headers=admin.headers)

    again = await auth.http.post("/api/auth/admin/promote", json=as_admin, headers=admin.headers)
    demote = await auth.http.post(
        "/api/auth/admin/promote", json={"user_id": other.user_id}, headers=admin.headers
    )

    assert again.status_code == 200
    assert again.json()["user"]["role"] == "admin"
    assert demote.status_code == 409
    promotions = await auth.sql("SELECT count(*) FROM audit_logs WHERE action = 'user_promoted'")
    assert promotions.scalar_one() == 1


async def test_pending_list_shows_waiting_organizers_with_a_total(auth: AuthClient) -> None:
    admin = await auth.admin()
    pending = [await auth.pending_organizer() for _ in range(3)]
    await auth.organizer(admin)  # approved: not listed
    await auth.user()  # not an organizer

    first_page = await auth.http.get(
        "/api/auth/admin/organizers/pending", params={"limit": 2}, headers=admin.headers
    )
    second_page = await auth.http.get(
        "/api/auth/admin/organizers/pending",
        params={"limit": 2, "offset": 2},
        headers=admin.headers,
    )

    assert first_page.status_code == 200
    assert first_page.headers["X-Total-Count"] == "3"
    listed = first_page.json() + second_page.json()
    assert [o["id"] for o in listed] == [p.user_id for p in pending]
    assert all(o["has_document"] and o["status"] == "pending" for o in listed)
    assert all(o["approval_status"] == "pending" for o in listed)
    assert [o["document_path"] for o in listed] == [
        f"/api/auth/admin/organizers/{p.user_id}/document" for p in pending
    ]


async def test_admin_downloads_the_organizer_document(auth: AuthClient) -> None:
    admin = await auth.admin()
    pending = await auth.pending_organizer()

    response = await auth.http.get(
        f"/api/auth/admin/organizers/{pending.user_id}/document", headers=admin.headers
    )

    assert response.status_code == 200
    assert response.content == PDF
    assert response.headers["content-type"] == "application/pdf"
    assert "attachment" in response.headers["content-disposition"]


async def test_approve_and_reject_only_apply_to_organizers(auth: AuthClient) -> None:
    admin = await auth.admin()
    user = await auth.user()

    for path in ("/api/auth/admin/approve", "/api/auth/admin/reject"):
        response = await auth.http.post(path, json={"user_id": user.user_id}, headers=admin.headers)
        assert response.status_code == 409


async def test_approved_organizer_cannot_be_rejected_and_approving_twice_is_harmless(
    auth: AuthClient,
) -> None:
    admin = await auth.admin()
    organizer = await auth.organizer(admin)

    again = await auth.http.post(
        "/api/auth/admin/approve", json={"user_id": organizer.user_id}, headers=admin.headers
    )
    reject = await auth.http.post(
        "/api/auth/admin/reject", json={"user_id": organizer.user_id}, headers=admin.headers
    )

    assert again.status_code == 200
    assert reject.status_code == 409


async def test_reject_records_the_reason(auth: AuthClient) -> None:
    admin = await auth.admin()
    pending = await auth.pending_organizer()

    response = await auth.http.post(
        "/api/auth/admin/reject",
        json={"user_id": pending.user_id, "reason": "document unreadable"},
        headers=admin.headers,
    )

    assert response.status_code == 200
    assert response.json()["user"]["status"] == "rejected"
    assert response.json()["user"]["rejection_reason"] == "document unreadable"


async def test_users_list_is_paginated_and_filtered(auth: AuthClient) -> None:
    admin = await auth.admin()
    users = [await auth.user() for _ in range(3)]
    await auth.pending_organizer()

    everyone = await auth.http.get("/api/auth/admin/users", headers=admin.headers)
    page = await auth.http.get(
        "/api/auth/admin/users", params={"limit": 2, "offset": 1}, headers=admin.headers
    )
    only_users = await auth.http.get(
        "/api/auth/admin/users", params={"role": "user"}, headers=admin.headers
    )
    pending = await auth.http.get(
        "/api/auth/admin/users", params={"status": "pending"}, headers=admin.headers
    )

    assert everyone.headers["X-Total-Count"] == "5"
    assert len(everyone.json()) == 5
    assert page.headers["X-Total-Count"] == "5"
    assert [u["id"] for u in page.json()] == [users[0].user_id, users[1].user_id]
    assert {u["id"] for u in only_users.json()} == {u.user_id for u in users}
    assert [u["role"] for u in pending.json()] == ["organizer"]


async def test_lists_without_a_limit_answer_whole_up_to_the_cap(auth: AuthClient) -> None:
    admin = await auth.admin()
    await auth.sql(
        "INSERT INTO users (email, password_hash, role, status, is_verified) "
        "SELECT 'bulk-' || n || '@example.com', 'x', 'organizer', 'pending', true "
        "FROM generate_series(1, :n) AS n",
        n=LIST_CAP + 4,
    )

    everyone = await auth.http.get("/api/auth/admin/users", headers=admin.headers)
    pending = await auth.http.get("/api/auth/admin/organizers/pending", headers=admin.headers)
    rest = await auth.http.get(
        "/api/auth/admin/users", params={"offset": LIST_CAP}, headers=admin.headers
    )

    assert everyone.headers["X-Total-Count"] == str(LIST_CAP + 5)
    assert len(everyone.json()) == LIST_CAP
    assert pending.headers["X-Total-Count"] == str(LIST_CAP + 4)
    assert len(pending.json()) == LIST_CAP
    assert len(rest.json()) == 5


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": LIST_CAP + 1},
        {"offset": -1},
        {"limit": "ten"},
        {"role": "god"},
        {"status": "sleeping"},
    ],
)
async def test_bad_list_parameters_are_400(auth: AuthClient, params: dict[str, int | str]) -> None:
    admin = await auth.admin()

    response = await auth.http.get("/api/auth/admin/users", params=params, headers=admin.headers)

    assert response.status_code == 400


async def test_limit_up_to_the_cap_is_allowed(auth: AuthClient) -> None:
    admin = await auth.admin()

    response = await auth.http.get(
        "/api/auth/admin/users", params={"limit": LIST_CAP}, headers=admin.headers
    )

    assert response.status_code == 200


async def test_delete_is_soft_and_ends_the_account(auth: AuthClient) -> None:
    admin = await auth.admin()
    user = await auth.user()

    response = await auth.http.request(
        "DELETE", "/api/auth/admin/users", json={"user_id": user.user_id}, headers=admin.headers
    )

    assert response.status_code == 200
    assert response.json() == {"message": "user deleted"}
    assert (await auth.login(user.email)).status_code == 401
    assert (await auth.http.get("/api/auth/me", headers=user.headers)).status_code == 401
    refresh = await auth.http.post(
        "/api/auth/refresh-token", json={"refresh_token": user.refresh_token}
    )
    assert refresh.status_code == 401
    row = (
        await auth.sql("SELECT status, deleted_at FROM users WHERE id = :id", id=user.user_id)
    ).one()
    assert row.status == "deleted"
    assert row.deleted_at is not None
    listed = await auth.http.get("/api/auth/admin/users", headers=admin.headers)
    assert user.user_id not in [u["id"] for u in listed.json()]
    deleted = await auth.http.get(
        "/api/auth/admin/users", params={"status": "deleted"}, headers=admin.headers
    )
    assert [u["id"] for u in deleted.json()] == [user.user_id]


async def test_deleted_address_can_register_again(auth: AuthClient) -> None:
    admin = await auth.admin()
    user = await auth.user()
    await auth.http.delete(f"/api/auth/admin/users/{user.user_id}", headers=admin.headers)

    again = await auth.register(user.email)

    assert again.status_code == 201
    assert again.json()["user"]["id"] != user.user_id


async def test_deleting_twice_or_an_unknown_user_is_404(auth: AuthClient) -> None:
    admin = await auth.admin()
    user = await auth.user()
    await auth.http.delete(f"/api/auth/admin/users/{user.user_id}", headers=admin.headers)

    again = await auth.http.delete(f"/api/auth/admin/users/{user.user_id}", headers=admin.headers)
    unknown = await auth.http.delete("/api/auth/admin/users/987654", headers=admin.headers)

    assert again.status_code == unknown.status_code == 404


async def test_admin_cannot_delete_themselves(auth: AuthClient) -> None:
    admin = await auth.admin()

    response = await auth.http.request(
        "DELETE", "/api/auth/admin/users", json={"user_id": admin.user_id}, headers=admin.headers
    )

    assert response.status_code == 409
    assert (await auth.http.get("/api/auth/me", headers=admin.headers)).status_code == 200


async def _admin_actions(auth: AuthClient, admin: Account) -> tuple[Account, Account]:
    user = await auth.user()
    pending = await auth.pending_organizer()
    headers = admin.headers
    await auth.http.post(
        "/api/auth/admin/approve", json={"user_id": pending.user_id}, headers=headers
    )
    await auth.http.post("/api/auth/admin/promote", json={"user_id": user.user_id}, headers=headers)
    await auth.http.delete(f"/api/auth/admin/users/{user.user_id}", headers=headers)
    return user, pending


async def test_audit_log_entries_have_the_originals_shape_and_action_names(
    auth: AuthClient,
) -> None:
    admin = await auth.admin()
    rejected = await auth.pending_organizer()
    await auth.http.post(
        "/api/auth/admin/reject",
        json={"user_id": rejected.user_id, "reason": "blurry"},
        headers={**admin.headers, "X-Real-IP": "203.0.113.7"},
    )
    await auth.http.post(
        "/api/auth/reapply", json={"email": rejected.email, "password": rejected.password}
    )
    user, organizer = await _admin_actions(auth, admin)

    response = await auth.http.get("/api/auth/admin/audit-logs", headers=admin.headers)

    entries = response.json()
    by_action = {e["action"]: e for e in entries}
    assert {"APPROVE_ORGANIZER", "REJECT_ORGANIZER", "REAPPLY_ORGANIZER", "DELETE_USER"} <= set(
        by_action
    )
    for entry in entries:
        assert set(entry) >= {"id", "created_at", "user_id", "action", "details", "ip_address"}
        assert isinstance(entry["details"], str)
        assert isinstance(entry["user_id"], int)
        assert isinstance(entry["ip_address"], str)
    reject = by_action["REJECT_ORGANIZER"]
    assert reject["user_id"] == admin.user_id
    assert reject["ip_address"] == "203.0.113.7"
    assert json.loads(reject["details"]) == {
        "reason": "blurry",
        "target_id": str(rejected.user_id),
        "target_type": "user",
    }
    assert reject["data"] == {"reason": "blurry"}
    assert by_action["REAPPLY_ORGANIZER"]["user_id"] == rejected.user_id
    assert by_action["DELETE_USER"]["target_id"] == str(user.user_id)
    assert by_action["APPROVE_ORGANIZER"]["target_id"] == str(organizer.user_id)


async def test_every_admin_action_lands_in_the_audit_log(auth: AuthClient) -> None:
    admin = await auth.admin()
    user, organizer = await _admin_actions(auth, admin)

    response = await auth.http.get(
        "/api/auth/admin/audit-logs", params={"user_id": admin.user_id}, headers=admin.headers
    )

    entries = response.json()
    by_action = {e["action"]: e for e in entries}
    assert {"APPROVE_ORGANIZER", "user_promoted", "DELETE_USER"} <= set(by_action)
    assert by_action["user_promoted"]["target_id"] == str(user.user_id)
    assert by_action["user_promoted"]["data"] == {
        "from": "user",
        "status": "active",
        "to": "organizer",
    }
    assert by_action["APPROVE_ORGANIZER"]["target_id"] == str(organizer.user_id)
    for action in ("APPROVE_ORGANIZER", "user_promoted", "DELETE_USER"):
        assert by_action[action]["actor_user_id"] == admin.user_id
    assert all(e["service"] == "auth_service" for e in entries)


async def test_audit_log_is_paginated_newest_first_and_filtered_by_action(
    auth: AuthClient,
) -> None:
    admin = await auth.admin()
    await _admin_actions(auth, admin)

    everything = await auth.http.get("/api/auth/admin/audit-logs", headers=admin.headers)
    page = await auth.http.get(
        "/api/auth/admin/audit-logs", params={"limit": 2, "offset": 1}, headers=admin.headers
    )
    deletions = await auth.http.get(
        "/api/auth/admin/audit-logs", params={"action": "DELETE_USER"}, headers=admin.headers
    )
    by_earlier_name = await auth.http.get(
        "/api/auth/admin/audit-logs", params={"action": "user_deleted"}, headers=admin.headers
    )

    ids = [e["id"] for e in everything.json()]
    assert ids == sorted(ids, reverse=True)
    assert everything.headers["X-Total-Count"] == str(len(ids))
    assert [e["id"] for e in page.json()] == ids[1:3]
    assert deletions.headers["X-Total-Count"] == "1"
    assert deletions.json()[0]["action"] == "DELETE_USER"
    assert by_earlier_name.json() == deletions.json()


async def test_audit_log_filter_by_user_matches_actor_or_target(auth: AuthClient) -> None:
    admin = await auth.admin()
    user, _ = await _admin_actions(auth, admin)

    response = await auth.http.get(
        "/api/auth/admin/audit-logs", params={"user_id": user.user_id}, headers=admin.headers
    )

    actions = {e["action"] for e in response.json()}
    assert {"user_registered", "email_verified", "user_promoted", "DELETE_USER"} <= actions
    assert "APPROVE_ORGANIZER" not in actions


async def test_audit_entries_carry_the_callers_address(auth: AuthClient) -> None:
    admin = await auth.admin()
    pending = await auth.pending_organizer()

    await auth.http.post(
        "/api/auth/admin/approve",
        json={"user_id": pending.user_id},
        headers={**admin.headers, "X-Real-IP": "203.0.113.9"},
    )

    ip = (
        await auth.sql("SELECT ip FROM audit_logs WHERE action = 'APPROVE_ORGANIZER'")
    ).scalar_one()
    assert ip == "203.0.113.9"


async def test_token_of_a_user_whose_role_changed_is_refused_everywhere(
    auth: AuthClient,
) -> None:
    admin = await auth.admin()
    organizer = await auth.organizer(admin)
    await auth.http.post(
        "/api/auth/admin/promote",
        json={"user_id": organizer.user_id, "role": "admin"},
        headers=admin.headers,
    )

    response = await auth.http.get(
        f"/api/auth/users/{organizer.user_id}", headers=bearer(organizer.access_token)
    )

    assert response.status_code == 401


async def test_audit_log_filter_without_matches_is_an_empty_page(auth: AuthClient) -> None:
    admin = await auth.admin()

    response = await auth.http.get(
        "/api/auth/admin/audit-logs", params={"action": new_email()}, headers=admin.headers
    )

    assert response.status_code == 200
    assert response.json() == []
    assert response.headers["X-Total-Count"] == "0"
