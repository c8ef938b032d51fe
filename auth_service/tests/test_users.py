"""GET /api/auth/me, GET /api/auth/users/{id} and the internal lookup for other services."""

from __future__ import annotations

from auth_service.settings import AuthSettings
from auth_service.tests.support import AuthClient
from ticketing_common.security import SERVICE_TOKEN_HEADER

#: the original's user (``id`` to ``document_path``) and the port's ``status``
USER_FIELDS = {
    "id",
    "created_at",
    "updated_at",
    "email",
    "role",
    "is_verified",
    "approval_status",
    "document_path",
    "status",
}


async def test_me_returns_the_callers_profile_as_a_bare_object(auth: AuthClient) -> None:
    account = await auth.user()

    response = await auth.http.get("/api/auth/me", headers=account.headers)

    assert response.status_code == 200
    user = response.json()
    assert set(user) == USER_FIELDS
    assert user["id"] == account.user_id
    assert user["email"] == account.email
    assert (user["approval_status"], user["document_path"]) == ("approved", "")
    assert user["created_at"].endswith("Z") or user["created_at"].endswith("+00:00")


async def test_me_accepts_a_token_without_the_bearer_prefix(auth: AuthClient) -> None:
    account = await auth.user()

    response = await auth.http.get("/api/auth/me", headers={"Authorization": account.access_token})

    assert response.status_code == 200
    assert response.json()["id"] == account.user_id


async def test_user_can_read_their_own_account(auth: AuthClient) -> None:
    account = await auth.user()

    response = await auth.http.get(f"/api/auth/users/{account.user_id}", headers=account.headers)

    assert response.status_code == 200
    assert set(response.json()) == USER_FIELDS
    assert response.json()["id"] == account.user_id


async def test_user_cannot_read_someone_elses_account(auth: AuthClient) -> None:
    account = await auth.user()
    other = await auth.user()

    response = await auth.http.get(f"/api/auth/users/{other.user_id}", headers=account.headers)
    missing = await auth.http.get("/api/auth/users/987654", headers=account.headers)

    assert response.status_code == 403
    assert missing.status_code == 403  # no hint whether the id exists


async def test_admin_reads_any_account(auth: AuthClient) -> None:
    admin = await auth.admin()
    other = await auth.user()

    response = await auth.http.get(f"/api/auth/users/{other.user_id}", headers=admin.headers)
    missing = await auth.http.get("/api/auth/users/987654", headers=admin.headers)

    assert response.status_code == 200
    assert response.json()["email"] == other.email
    assert missing.status_code == 404


async def test_user_lookup_refusals(auth: AuthClient) -> None:
    account = await auth.user()

    anonymous = await auth.http.get(f"/api/auth/users/{account.user_id}")
    bad_id = await auth.http.get("/api/auth/users/abc", headers=account.headers)
    huge_id = await auth.http.get(f"/api/auth/users/{10**30}", headers=account.headers)

    assert anonymous.status_code == 401
    assert bad_id.status_code == 400
    assert huge_id.status_code == 400


async def test_internal_lookup_needs_the_service_token(
    auth: AuthClient, settings: AuthSettings
) -> None:
    account = await auth.user()
    path = f"/internal/users/{account.user_id}"

    without = await auth.http.get(path)
    wrong = await auth.http.get(path, headers={SERVICE_TOKEN_HEADER: "guess"})
    user_token = await auth.http.get(path, headers=account.headers)
    right = await auth.http.get(path, headers={SERVICE_TOKEN_HEADER: settings.service_token})

    assert without.status_code == wrong.status_code == user_token.status_code == 401
    assert right.status_code == 200
    assert set(right.json()) == USER_FIELDS
    assert right.json()["email"] == account.email


async def test_internal_lookup_reports_deleted_accounts_and_404s_unknown_ones(
    auth: AuthClient, settings: AuthSettings
) -> None:
    admin = await auth.admin()
    account = await auth.user()
    await auth.http.delete(f"/api/auth/admin/users/{account.user_id}", headers=admin.headers)
    headers = {SERVICE_TOKEN_HEADER: settings.service_token}

    deleted = await auth.http.get(f"/internal/users/{account.user_id}", headers=headers)
    unknown = await auth.http.get("/internal/users/987654", headers=headers)

    assert deleted.json()["status"] == "deleted"
    assert unknown.status_code == 404


async def test_openapi_documents_the_auth_routes(auth: AuthClient) -> None:
    response = await auth.http.get("/openapi.json")

    paths = response.json()["paths"]
    for path in (
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/refresh-token",
        "/api/auth/admin/audit-logs",
        "/internal/users/{user_id}",
    ):
        assert path in paths
    register_body = paths["/api/auth/register"]["post"]["requestBody"]["content"]
    assert {
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    } <= set(register_body)
