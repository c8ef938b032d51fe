"""POST /api/auth/register: JSON or form fields for users, multipart with a document for
organizers."""

from __future__ import annotations

from pathlib import Path

import pytest

from auth_service.settings import AuthSettings
from auth_service.tests.support import JPEG, PASSWORD, PDF, PNG, AuthClient, new_email


async def test_user_registers_with_json_and_gets_a_verification_code(auth: AuthClient) -> None:
    email = new_email()

    response = await auth.register(email)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"message", "user"}
    assert body["user"] == {
        **body["user"],
        "email": email,
        "role": "user",
        "is_verified": False,
        "approval_status": "approved",
        "document_path": "",
        "status": "active",
    }
    assert {"id", "created_at", "updated_at"} <= set(body["user"])
    assert "password_hash" not in body["user"]
    assert PASSWORD not in response.text
    [payload] = await auth.outbox_payloads("email_verification", email)
    assert payload["user_id"] == body["user"]["id"]
    assert payload["code"].isdigit()
    assert len(payload["code"]) == 6


async def test_email_is_normalised_to_lower_case(auth: AuthClient) -> None:
    response = await auth.register("  Mixed.Case@Example.COM ")

    assert response.status_code == 201
    assert response.json()["user"]["email"] == "mixed.case@example.com"
    not_verified = await auth.login("MIXED.case@example.com")
    assert not_verified.json()["error"] == "email not verified"


async def test_duplicate_email_is_409_whatever_its_case(auth: AuthClient) -> None:
    email = new_email()
    assert (await auth.register(email)).status_code == 201

    again = await auth.register(email.upper())

    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"


async def test_verification_code_is_stored_only_as_a_hash(auth: AuthClient) -> None:
    email = new_email()
    await auth.register(email)
    code = await auth.code(email)

    stored = (await auth.sql("SELECT code_hash FROM verification_codes")).scalar_one()

    assert code not in stored
    assert len(stored) == 64


async def test_password_is_stored_as_an_argon2id_hash(auth: AuthClient) -> None:
    email = new_email()
    await auth.register(email)

    stored = (
        await auth.sql("SELECT password_hash FROM users WHERE email = :e", e=email)
    ).scalar_one()

    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


@pytest.mark.parametrize(
    "password",
    ["short1", "no-digits-at-all", "1234567890", "x1" * 65],
    ids=["too-short", "no-digit", "no-letter", "too-long"],
)
async def test_weak_password_is_400_with_the_policy_in_the_message(
    auth: AuthClient, password: str
) -> None:
    response = await auth.register(password=password)

    assert response.status_code == 400
    assert "at least one letter and one digit" in response.json()["error"]


async def test_password_equal_to_the_email_is_refused(auth: AuthClient) -> None:
    email = "abc12345@example.com"

    response = await auth.register(email, password=email)

    assert response.status_code == 400
    assert "must not be the email" in response.json()["error"]


async def test_nobody_registers_as_admin(auth: AuthClient) -> None:
    response = await auth.register(role="admin")

    assert response.status_code == 400
    assert "role" in response.json()["error"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"", "application/json"),
        (b'{"email": "x@example.com"}', "application/json"),
        (b'{"email": "not-an-email", "password": "Correct-Horse-1"}', "application/json"),
        (b'{"email": 5, "password": ["Correct-Horse-1"]}', "application/json"),
        (b"email=x@example.com", "text/plain"),
    ],
    ids=["broken-json", "array", "empty", "no-password", "bad-email", "wrong-types", "text"],
)
async def test_bad_registration_bodies_are_400(
    auth: AuthClient, content: bytes, content_type: str
) -> None:
    response = await auth.http.post(
        "/api/auth/register", content=content, headers={"Content-Type": content_type}
    )

    assert response.status_code == 400
    assert response.json()["error"]


async def test_user_registers_with_the_originals_urlencoded_form(auth: AuthClient) -> None:
    email = new_email()

    response = await auth.http.post(
        "/api/auth/register", data={"email": email, "password": PASSWORD, "role": "user"}
    )

    assert response.status_code == 201, response.text
    assert response.json()["user"]["email"] == email
    assert (await auth.verify(email)).status_code == 200


async def test_organizer_needs_a_document(auth: AuthClient) -> None:
    response = await auth.register(role="organizer")
    as_form = await auth.http.post(
        "/api/auth/register", data={"email": new_email(), "password": PASSWORD, "role": "organizer"}
    )

    assert response.status_code == as_form.status_code == 400
    assert "document" in response.json()["error"]
    assert "document" in as_form.json()["error"]


async def test_organizer_registers_with_a_pdf_and_starts_pending(
    auth: AuthClient, settings: AuthSettings
) -> None:
    email = new_email("org")

    response = await auth.register_organizer(email, PDF, filename="../../etc/passwd.pdf")

    assert response.status_code == 201
    user = response.json()["user"]
    assert user["role"] == "organizer"
    assert user["status"] == user["approval_status"] == "pending"
    assert user["document_path"] == f"/api/auth/admin/organizers/{user['id']}/document"
    name = (
        await auth.sql("SELECT document_name FROM users WHERE id = :id", id=user["id"])
    ).scalar_one()
    assert "passwd" not in name
    assert name.endswith(".pdf")
    stored = Path(settings.upload_dir) / "organizer_documents" / name
    assert stored.read_bytes() == PDF


@pytest.mark.parametrize(("content", "extension"), [(PNG, "png"), (JPEG, "jpg")])
async def test_document_type_comes_from_its_content_not_its_name(
    auth: AuthClient, content: bytes, extension: str
) -> None:
    response = await auth.register_organizer(document=content, filename="claims-to-be.pdf")

    assert response.status_code == 201
    name = (await auth.sql("SELECT document_name FROM users")).scalars().all()
    assert any(n and n.endswith(f".{extension}") for n in name)


@pytest.mark.parametrize(
    "content",
    [b"MZ\x90\x00 an executable", b"<html><script>alert(1)</script>", b""],
    ids=["exe", "html", "empty"],
)
async def test_document_that_is_not_pdf_png_or_jpeg_is_400(
    auth: AuthClient, content: bytes
) -> None:
    response = await auth.register_organizer(document=content)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_document"
    assert (await auth.sql("SELECT count(*) FROM users WHERE role = 'organizer'")).scalar() == 0


async def test_document_over_the_size_limit_is_413(
    auth: AuthClient, settings: AuthSettings
) -> None:
    too_big = PDF + b"0" * settings.document_max_bytes

    response = await auth.register_organizer(document=too_big)

    assert response.status_code == 413
    assert "MB" in response.json()["error"]


async def test_multipart_organizer_with_a_bad_field_is_400_and_stores_nothing(
    auth: AuthClient, settings: AuthSettings
) -> None:
    before = set((Path(settings.upload_dir) / "organizer_documents").glob("*"))

    response = await auth.http.post(
        "/api/auth/register",
        data={"email": "not-an-email", "password": PASSWORD, "role": "organizer"},
        files={"document": ("a.pdf", PDF, "application/pdf")},
    )

    assert response.status_code == 400
    assert set((Path(settings.upload_dir) / "organizer_documents").glob("*")) == before


async def test_registration_is_audited(auth: AuthClient) -> None:
    response = await auth.register()

    actions = (
        (
            await auth.sql(
                "SELECT action FROM audit_logs WHERE target_id = :id",
                id=str(response.json()["user"]["id"]),
            )
        )
        .scalars()
        .all()
    )
    assert "user_registered" in actions
