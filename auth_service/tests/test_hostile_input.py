"""Odd and hostile input gets a JSON 4xx, never a 500."""

from __future__ import annotations

import pytest

from auth_service.tests.support import PASSWORD, PDF, AuthClient, new_email


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/login", {"email": "a\u0000b@example.com", "password": "x"}),
        ("/api/auth/forgot-password", {"email": "a\u0000b@example.com"}),
        ("/api/auth/verify-email", {"email": "a@example.com", "code": "12\u000034"}),
        (
            "/api/auth/reset-password",
            {"email": "a\u0000@example.com", "code": "123456", "new_password": PASSWORD},
        ),
        ("/api/auth/reapply", {"email": "a\u0000b@example.com"}),
        ("/api/auth/login", {"email": "é" * 400, "password": "x"}),
    ],
)
async def test_nul_characters_and_oversized_fields_are_400(
    auth: AuthClient, path: str, body: dict[str, str]
) -> None:
    response = await auth.http.post(path, json=body)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


async def test_nul_characters_in_admin_input_are_400(auth: AuthClient) -> None:
    admin = await auth.admin()
    pending = await auth.pending_organizer()

    reject = await auth.http.post(
        "/api/auth/admin/reject",
        json={"user_id": pending.user_id, "reason": "bad\u0000"},
        headers=admin.headers,
    )
    logs = await auth.http.get(
        "/api/auth/admin/audit-logs", params={"action": "a\u0000"}, headers=admin.headers
    )

    assert reject.status_code == logs.status_code == 400


async def test_garbage_refresh_token_is_401(auth: AuthClient) -> None:
    response = await auth.http.post("/api/auth/refresh-token", json={"refresh_token": "a.b\u0000"})

    assert response.status_code == 401


async def test_malformed_multipart_is_400(auth: AuthClient) -> None:
    two_documents = await auth.http.post(
        "/api/auth/register",
        data={"email": new_email(), "password": PASSWORD, "role": "organizer"},
        files=[
            ("document", ("a.pdf", PDF, "application/pdf")),
            ("document", ("b.pdf", PDF, "application/pdf")),
        ],
    )
    broken = await auth.http.post(
        "/api/auth/register",
        content=b"--xx\r\nbroken",
        headers={"Content-Type": "multipart/form-data; boundary=xx"},
    )
    plain_text = await auth.http.post(
        "/api/auth/register",
        content=f"email={new_email()}&password={PASSWORD}",
        headers={"Content-Type": "text/plain"},
    )
    not_utf8 = await auth.http.post(
        "/api/auth/register", content=b"\xff\xfe", headers={"Content-Type": "application/json"}
    )

    for response in (two_documents, broken, plain_text, not_utf8):
        assert response.status_code == 400
        assert response.json()["error"]


async def test_document_sent_by_a_user_is_not_stored(auth: AuthClient) -> None:
    response = await auth.http.post(
        "/api/auth/register",
        data={"email": new_email(), "password": PASSWORD, "role": "user"},
        files={"document": ("a.pdf", PDF, "application/pdf")},
    )

    assert response.status_code == 201
    names = (await auth.sql("SELECT document_name FROM users")).scalars().all()
    assert names == [None, None]  # the admin and this user


async def test_an_oversized_forwarded_address_is_cut_to_fit(auth: AuthClient) -> None:
    response = await auth.http.post(
        "/api/auth/register",
        json={"email": new_email(), "password": PASSWORD},
        headers={"X-Real-IP": "x" * 500},
    )

    assert response.status_code == 201
