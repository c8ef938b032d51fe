"""The original's auth requests replayed through the gateway, route by route (ORIGINAL_API.md).

Each test sends what a client of the Go original sends (its front end, Postman collection
and services) and checks the answer's status and every field that client reads, with its
JSON type (``tests/contract/shapes.py``); the port's own fields may come in addition.
Where a fix that stays changes a request (``/reapply`` needs the password), the original's
request gets a 4xx whose ``error`` says what to send, and the amended one the original's
answer. Every simulated client has its own loopback address (the gateway limits per address).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import Mailbox, unique_email
from tests.contract.shapes import assert_shape
from tests.support_auth import (
    PASSWORD,
    PASSWORD_RESET,
    PDF_DOCUMENT,
    PNG_DOCUMENT,
    VERIFICATION,
    admin_token,
    admin_tokens,
    bearer,
    code_from_mailbox,
    login,
    post_hashing,
    register_user,
    verification_link_from_mailbox,
)

NewClient = Callable[[], httpx.AsyncClient]

USER = {
    "id": int,
    "created_at": str,
    "updated_at": str,
    "email": str,
    "role": str,
    "is_verified": bool,
    "approval_status": str,
    "document_path": str,
}
TOKENS = {"access_token": str, "refresh_token": str}
MESSAGE = {"message": str}
ERROR = {"error": str}
AUDIT_ENTRY = {
    "id": int,
    "created_at": str,
    "user_id": int,
    "action": str,
    "details": str,
    "ip_address": str,
}
#: the most an admin list answers without ``limit`` (documented in docs/MIGRATING.md)
LIST_CAP = 1000


async def _register_form(
    client: httpx.AsyncClient, email: str, role: str = "user", *, document: bool = False
) -> httpx.Response:
    """The original's sign-up: form fields, multipart with a document for organizers."""
    fields = {"email": email, "password": PASSWORD, "role": role}
    if document:
        files = {"document": ("licence.pdf", PDF_DOCUMENT, "application/pdf")}
        return await post_hashing(client, "/api/auth/register", data=fields, files=files)
    return await post_hashing(client, "/api/auth/register", data=fields)


async def _verify(client: httpx.AsyncClient, mailbox: Mailbox, email: str) -> httpx.Response:
    code = await code_from_mailbox(mailbox, email, VERIFICATION)
    return await client.post("/api/auth/verify-email", json={"email": email, "code": code})


async def _organizer(client: httpx.AsyncClient, mailbox: Mailbox) -> tuple[str, int]:
    """A verified organizer awaiting approval, registered as the original's front end does."""
    email = unique_email("organizer")
    registered = await _register_form(client, email, "organizer", document=True)
    assert registered.status_code == 201, registered.text
    assert (await _verify(client, mailbox, email)).status_code == 200
    return email, int(registered.json()["user"]["id"])


async def _admin(client: httpx.AsyncClient, path: str, user_id: int) -> httpx.Response:
    """An admin's ``{user_id}`` request, signed in afresh from ``client``."""
    token = await admin_token(client)
    return await client.post(path, json={"user_id": user_id}, headers=bearer(token))


# --- POST /register --------------------------------------------------------------------


async def test_register_takes_urlencoded_form_fields(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    email = unique_email("form")

    response = await _register_form(client, email)

    assert response.status_code == 201, response.text
    assert_shape(response.json(), {"message": str, "user": USER})
    user = response.json()["user"]
    assert (user["email"], user["role"], user["is_verified"]) == (email, "user", False)
    assert user["approval_status"] == "approved"


async def test_register_takes_multipart_with_the_organizers_document(
    client: httpx.AsyncClient,
) -> None:
    response = await _register_form(client, unique_email("organizer"), "organizer", document=True)

    assert response.status_code == 201, response.text
    assert_shape(response.json(), {"message": str, "user": USER})
    user = response.json()["user"]
    assert (user["role"], user["approval_status"]) == ("organizer", "pending")
    assert user["document_path"]


# --- POST /verify-email and the verification email -------------------------------------


async def test_verify_email_with_the_code_answers_a_message_and_tokens(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    email = unique_email("verify")
    assert (await _register_form(client, email)).status_code == 201

    response = await _verify(client, mailbox, email)

    assert response.status_code == 200, response.text
    assert_shape(response.json(), {"message": str, **TOKENS})


async def test_the_email_links_to_the_front_end_whose_token_verifies(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    """The original's front end verifies only through the link: its page posts the
    link's token as ``code``."""
    email = unique_email("link")
    assert (await _register_form(client, email)).status_code == 201

    link = urlsplit(await verification_link_from_mailbox(mailbox, email))
    query = parse_qs(link.query)
    response = await client.post(
        "/api/auth/verify-email", json={"email": query["email"][0], "code": query["token"][0]}
    )

    assert f"{link.scheme}://{link.netloc}{link.path}" == "http://localhost:3000/verify-email"
    assert query["email"] == [email]
    assert re.fullmatch(r"[0-9a-f]{64}", query["token"][0])
    assert response.status_code == 200, response.text
    assert_shape(response.json(), {"message": str, **TOKENS})


# --- POST /login -------------------------------------------------------------------------


async def test_login_answers_tokens(client: httpx.AsyncClient, mailbox: Mailbox) -> None:
    email, password, _ = await register_user(client, mailbox)

    response = await post_hashing(
        client, "/api/auth/login", json={"email": email, "password": password}
    )

    assert response.status_code == 200, response.text
    assert_shape(response.json(), TOKENS)


async def test_login_refusals_are_401_with_the_originals_texts(
    client: httpx.AsyncClient, mailbox: Mailbox, new_client: NewClient
) -> None:
    """The front end compares ``account rejected`` and ``account pending approval``."""
    unverified = unique_email("unverified")
    assert (await _register_form(client, unverified)).status_code == 201
    pending, _ = await _organizer(client, mailbox)
    async with new_client() as organizer_client, new_client() as admin_client:
        rejected, rejected_id = await _organizer(organizer_client, mailbox)
        assert (await _admin(admin_client, "/api/auth/admin/reject", rejected_id)).is_success

    answers = {}
    for email, password in (
        (unverified, PASSWORD),
        (pending, PASSWORD),
        (rejected, PASSWORD),
        (pending, "Wrong-Password-1"),
    ):
        async with new_client() as someone:
            answers[email, password] = await post_hashing(
                someone, "/api/auth/login", json={"email": email, "password": password}
            )

    texts = {key: r.json()["error"] for key, r in answers.items()}
    assert {r.status_code for r in answers.values()} == {401}
    for response in answers.values():
        assert_shape(response.json(), ERROR)
    assert texts == {
        (unverified, PASSWORD): "email not verified",
        (pending, PASSWORD): "account pending approval",
        (rejected, PASSWORD): "account rejected",
        (pending, "Wrong-Password-1"): "invalid credentials",
    }


# --- POST /refresh-token, /forgot-password, /reset-password --------------------------------


async def test_refresh_token_answers_a_new_pair(client: httpx.AsyncClient) -> None:
    tokens = await admin_tokens(client)

    response = await client.post(
        "/api/auth/refresh-token", json={"refresh_token": tokens["refresh_token"]}
    )

    assert response.status_code == 200, response.text
    assert_shape(response.json(), TOKENS)


async def test_forgot_and_reset_password_answer_messages(
    client: httpx.AsyncClient, mailbox: Mailbox, new_client: NewClient
) -> None:
    email, _, _ = await register_user(client, mailbox)

    forgot = await client.post("/api/auth/forgot-password", json={"email": email})
    code = await code_from_mailbox(mailbox, email, PASSWORD_RESET)
    reset = await client.post(
        "/api/auth/reset-password",
        json={"email": email, "code": code, "new_password": "Brand-New-Secret-7"},
    )

    assert forgot.status_code == reset.status_code == 200, reset.text
    assert_shape(forgot.json(), MESSAGE)
    assert_shape(reset.json(), MESSAGE)
    async with new_client() as elsewhere:
        await login(elsewhere, email, "Brand-New-Secret-7")


# --- POST /reapply ---------------------------------------------------------------------------


async def test_reapply_asks_for_the_password_then_answers_a_message(
    client: httpx.AsyncClient, mailbox: Mailbox, new_client: NewClient
) -> None:
    """A documented break (docs/MIGRATING.md): the original's form without the password is
    refused with the field to send; with it, the original's answer."""
    email, organizer_id = await _organizer(client, mailbox)
    async with new_client() as admin_client:
        assert (await _admin(admin_client, "/api/auth/admin/reject", organizer_id)).is_success
    document = {"document": ("better.png", PNG_DOCUMENT, "image/png")}

    original = await client.post("/api/auth/reapply", data={"email": email}, files=document)
    amended = await post_hashing(
        client,
        "/api/auth/reapply",
        data={"email": email, "password": PASSWORD},
        files=document,
    )

    assert original.status_code == 400
    assert_shape(original.json(), ERROR)
    assert "password" in original.json()["error"]
    assert amended.status_code == 200, amended.text
    assert_shape(amended.json(), MESSAGE)


# --- GET /me, GET /users/:id, POST /change-password ----------------------------------------


async def test_me_answers_the_bare_user_with_or_without_bearer(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    email, _, tokens = await register_user(client, mailbox)

    with_bearer = await client.get("/api/auth/me", headers=bearer(tokens["access_token"]))
    bare_token = await client.get("/api/auth/me", headers={"Authorization": tokens["access_token"]})

    assert with_bearer.status_code == bare_token.status_code == 200
    assert_shape(with_bearer.json(), USER)
    assert with_bearer.json() == bare_token.json()
    assert (with_bearer.json()["email"], with_bearer.json()["role"]) == (email, "user")
    assert with_bearer.json()["id"] == tokens["user_id"]


async def test_users_id_answers_the_bare_user(client: httpx.AsyncClient, mailbox: Mailbox) -> None:
    _, _, tokens = await register_user(client, mailbox)

    response = await client.get(
        f"/api/auth/users/{tokens['user_id']}", headers=bearer(tokens["access_token"])
    )

    assert response.status_code == 200, response.text
    assert_shape(response.json(), USER)
    assert response.json()["id"] == tokens["user_id"]


async def test_change_password_answers_a_message(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    _, password, tokens = await register_user(client, mailbox)

    response = await post_hashing(
        client,
        "/api/auth/change-password",
        json={"old_password": password, "new_password": "Brand-New-Secret-7"},
        headers=bearer(tokens["access_token"]),
    )

    assert response.status_code == 200, response.text
    assert_shape(response.json(), MESSAGE)


# --- /admin --------------------------------------------------------------------------------


async def test_promote_makes_the_user_an_approved_organizer(
    client: httpx.AsyncClient, mailbox: Mailbox, new_client: NewClient
) -> None:
    email, _, tokens = await register_user(client, mailbox)
    async with new_client() as admin_client:
        promoted = await _admin(admin_client, "/api/auth/admin/promote", tokens["user_id"])

    assert promoted.status_code == 200, promoted.text
    assert_shape(promoted.json(), MESSAGE)
    assert promoted.json()["message"] == "User promoted to Organizer"
    async with new_client() as organizer_client:
        session = await login(organizer_client, email)
        me = await organizer_client.get("/api/auth/me", headers=bearer(session["access_token"]))
    assert (me.json()["role"], me.json()["approval_status"]) == ("organizer", "approved")


async def test_approve_and_reject_answer_messages(
    client: httpx.AsyncClient, mailbox: Mailbox, new_client: NewClient
) -> None:
    _, approved_id = await _organizer(client, mailbox)
    async with new_client() as other:
        _, rejected_id = await _organizer(other, mailbox)
    async with new_client() as admin_client:
        approved = await _admin(admin_client, "/api/auth/admin/approve", approved_id)
        rejected = await _admin(admin_client, "/api/auth/admin/reject", rejected_id)

    assert approved.status_code == rejected.status_code == 200
    assert_shape(approved.json(), MESSAGE)
    assert_shape(rejected.json(), MESSAGE)


@pytest.mark.parametrize("path", ["/api/auth/admin/organizers/pending", "/api/auth/admin/users"])
async def test_admin_user_lists_are_bare_arrays_of_all_users(
    client: httpx.AsyncClient, mailbox: Mailbox, new_client: NewClient, path: str
) -> None:
    _, organizer_id = await _organizer(client, mailbox)
    async with new_client() as admin_client:
        response = await admin_client.get(path, headers=bearer(await admin_token(admin_client)))

    assert response.status_code == 200, response.text
    assert_shape(response.json(), [USER])
    total = int(response.headers["X-Total-Count"])
    assert len(response.json()) == min(total, LIST_CAP)
    if total <= LIST_CAP:  # the test stack's database outlives runs: oldest first, capped
        assert organizer_id in [user["id"] for user in response.json()]


async def test_delete_user_takes_the_id_in_the_body_and_answers_a_message(
    client: httpx.AsyncClient, mailbox: Mailbox, new_client: NewClient
) -> None:
    _, _, tokens = await register_user(client, mailbox)
    async with new_client() as admin_client:
        response = await admin_client.request(
            "DELETE",
            "/api/auth/admin/users",
            json={"user_id": tokens["user_id"]},
            headers=bearer(await admin_token(admin_client)),
        )

    assert response.status_code == 200, response.text
    assert_shape(response.json(), MESSAGE)


async def test_audit_logs_are_a_bare_array_with_the_originals_fields_and_actions(
    client: httpx.AsyncClient, mailbox: Mailbox, new_client: NewClient
) -> None:
    """The organizer actions auth_service logs; CREATE_EVENT and the booking actions come
    from event_service and booking_service (their contract suites)."""
    email, organizer_id = await _organizer(client, mailbox)
    async with new_client() as other:
        _, _, doomed = await register_user(other, mailbox)
    async with new_client() as admin_client:
        headers = bearer(await admin_token(admin_client))
        reject = {"user_id": organizer_id}
        rejected = await admin_client.post("/api/auth/admin/reject", json=reject, headers=headers)
        assert rejected.status_code == 200, rejected.text
        reapplied = await post_hashing(
            client, "/api/auth/reapply", data={"email": email, "password": PASSWORD}
        )
        assert reapplied.status_code == 200, reapplied.text
        approved = await admin_client.post(
            "/api/auth/admin/approve", json={"user_id": organizer_id}, headers=headers
        )
        assert approved.status_code == 200, approved.text
        deleted = await admin_client.request(
            "DELETE", "/api/auth/admin/users", json={"user_id": doomed["user_id"]}, headers=headers
        )
        assert deleted.status_code == 200
        response = await admin_client.get("/api/auth/admin/audit-logs", headers=headers)

    assert response.status_code == 200, response.text
    assert_shape(response.json(), [AUDIT_ENTRY])
    about = {
        (entry["action"], entry["target_id"]) for entry in response.json() if entry["target_id"]
    }
    for action in ("REJECT_ORGANIZER", "REAPPLY_ORGANIZER", "APPROVE_ORGANIZER"):
        assert (action, str(organizer_id)) in about
    assert ("DELETE_USER", str(doomed["user_id"])) in about
