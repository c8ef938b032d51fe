"""Accounts for journeys through the gateway: import these instead of calling /api/auth by hand.

Every helper talks to the running test stack through the ``client`` it is given (one
loopback address per client, so the gateway's per-IP rate limit holds). Verification and
reset codes are read from the ``mailbox`` fixture: notification_service's plain-text
part carries the code on its own line after ``code:`` (``Your verification code: 123456``).

Token dicts are the ``/login`` body (``access_token``, ``refresh_token``, ``token_type``,
``expires_in``) plus ``user_id`` and ``email`` for convenience.

    email, password, tokens = await register_user(client, mailbox)
    headers = bearer(tokens["access_token"])
    admin = await admin_token(admin_client)
    organizer = await approved_organizer(client, mailbox, admin_client)
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from email.message import EmailMessage
from typing import Any

import httpx

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Mailbox, unique_email

PASSWORD = "Correct-Horse-1"
PDF_DOCUMENT = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG_DOCUMENT = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

VERIFICATION = "verification code"
PASSWORD_RESET = "password reset code"

__all__ = [
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "PASSWORD",
    "PASSWORD_RESET",
    "PDF_DOCUMENT",
    "PNG_DOCUMENT",
    "VERIFICATION",
    "admin_token",
    "admin_tokens",
    "approved_organizer",
    "bare",
    "bearer",
    "code_from_mailbox",
    "login",
    "post_hashing",
    "register_organizer",
    "register_user",
    "unique_email",
    "user_id_of",
    "verification_link_from_mailbox",
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def bare(token: str) -> dict[str, str]:
    """``Authorization`` as some of the original's clients send it: the token alone."""
    return {"Authorization": token}


def user_id_of(access_token: str) -> int:
    """The ``user_id`` claim of a token (read, not verified: for test bookkeeping only)."""
    payload = access_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return int(claims["user_id"])


def _plain_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return str(part.get_content()) if part is not None else ""


def _code_in(message: EmailMessage, kind: str) -> str | None:
    match = re.search(rf"{kind}:\s*(\S+)", _plain_text(message), flags=re.IGNORECASE)
    return match.group(1) if match else None


async def code_from_mailbox(
    mailbox: Mailbox, email: str, kind: str = VERIFICATION, *, nth: int = 1, timeout: float = 30.0
) -> str:
    """The code in the ``nth`` email of ``kind`` sent to ``email``, waiting for it to arrive."""
    deadline = time.monotonic() + timeout
    while True:
        codes = [c for m in mailbox.matching(email) if (c := _code_in(m, kind)) is not None]
        if len(codes) >= nth:
            return codes[nth - 1]
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no email #{nth} with a {kind} to {email!r} within {timeout}s "
                f"(is notification_service running?)"
            )
        await asyncio.sleep(0.2)


async def verification_link_from_mailbox(
    mailbox: Mailbox, email: str, *, timeout: float = 30.0
) -> str:
    """The original's link in the verification email to ``email``
    (``<FRONTEND_URL>/verify-email?token=<64 hex>&email=<address>``), waiting for it."""
    deadline = time.monotonic() + timeout
    while True:
        for message in mailbox.matching(email):
            link = re.search(r"\S+/verify-email\?\S+", _plain_text(message))
            if link:
                return link.group(0)
        if time.monotonic() > deadline:
            raise AssertionError(f"no verification link to {email!r} within {timeout}s")
        await asyncio.sleep(0.2)


#: how often a sign-up or login is retried while auth_service's hash queue is full
HASHING_BUSY_RETRIES = 20


async def post_hashing(client: httpx.AsyncClient, path: str, **kwargs: Any) -> httpx.Response:
    """POST a request that hashes a password (register, login), as a well-behaved client
    does: auth_service takes on a bounded number of hashes at once and answers the rest
    503 ``password_hashing_busy`` with Retry-After, so wait that long and try again."""
    for _ in range(HASHING_BUSY_RETRIES):
        response = await client.post(path, **kwargs)
        if response.status_code != 503 or "Retry-After" not in response.headers:
            return response
        await asyncio.sleep(float(response.headers["Retry-After"]))
    return response


def _tokens(body: dict[str, Any], email: str) -> dict[str, Any]:
    tokens = {
        key: body[key] for key in ("access_token", "refresh_token", "token_type", "expires_in")
    }
    return {**tokens, "user_id": user_id_of(body["access_token"]), "email": email}


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await post_hashing(
        client, "/api/auth/login", json={"email": email, "password": password}
    )
    assert response.status_code == 200, f"login {email}: {response.status_code} {response.text}"
    return _tokens(response.json(), email)


async def admin_tokens(client: httpx.AsyncClient) -> dict[str, Any]:
    """A fresh session of the seeded admin (ADMIN_EMAIL / ADMIN_PASSWORD)."""
    return await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)


async def admin_token(client: httpx.AsyncClient) -> str:
    """An access token of the seeded admin."""
    return str((await admin_tokens(client))["access_token"])


async def _verify(client: httpx.AsyncClient, mailbox: Mailbox, email: str) -> httpx.Response:
    code = await code_from_mailbox(mailbox, email, VERIFICATION)
    response = await client.post("/api/auth/verify-email", json={"email": email, "code": code})
    assert response.status_code == 200, f"verify {email}: {response.status_code} {response.text}"
    return response


async def register_user(
    client: httpx.AsyncClient,
    mailbox: Mailbox,
    *,
    email: str | None = None,
    password: str = PASSWORD,
) -> tuple[str, str, dict[str, Any]]:
    """Register a ``user``, verify the address with the emailed code; signed in."""
    email = email or unique_email("user")
    response = await post_hashing(
        client, "/api/auth/register", json={"email": email, "password": password, "role": "user"}
    )
    assert response.status_code == 201, f"register {email}: {response.status_code} {response.text}"
    verified = await _verify(client, mailbox, email)
    return email, password, _tokens(verified.json(), email)


async def register_organizer(
    client: httpx.AsyncClient,
    mailbox: Mailbox,
    *,
    email: str | None = None,
    document: bytes = PDF_DOCUMENT,
    verify: bool = True,
) -> tuple[str, int]:
    """Register an ``organizer`` with a document (pending approval); returns (email, id)."""
    email = email or unique_email("organizer")
    response = await post_hashing(
        client,
        "/api/auth/register",
        data={"email": email, "password": PASSWORD, "role": "organizer"},
        files={"document": ("document.pdf", document, "application/pdf")},
    )
    assert response.status_code == 201, f"register {email}: {response.status_code} {response.text}"
    if verify:
        await _verify(client, mailbox, email)
    return email, int(response.json()["user"]["id"])


async def approved_organizer(
    client: httpx.AsyncClient, mailbox: Mailbox, admin_client: httpx.AsyncClient
) -> dict[str, Any]:
    """A verified organizer approved by the admin (through ``admin_client``), signed in."""
    email, user_id = await register_organizer(client, mailbox)
    token = await admin_token(admin_client)
    approved = await admin_client.post(
        "/api/auth/admin/approve", json={"user_id": user_id}, headers=bearer(token)
    )
    assert approved.status_code == 200, f"approve {email}: {approved.text}"
    return await login(client, email)
