"""Helpers for auth_service's in-process tests: accounts in one call, codes from the outbox."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.codes import link_token
from auth_service.settings import AuthSettings
from ticketing_common.messaging.schema import outbox_messages

PASSWORD = "Correct-Horse-1"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Admin-Password-1"
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def new_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Account:
    email: str
    password: str
    user_id: int
    access_token: str = ""
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


class AuthClient:
    """Drives the in-process app the way a client would, reading codes from the outbox."""

    def __init__(self, client: httpx.AsyncClient, engine: AsyncEngine, settings: AuthSettings):
        self.http = client
        self.engine = engine
        self.settings = settings

    async def outbox_payloads(self, routing_key: str, email: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(outbox_messages.c.envelope)
                .where(
                    outbox_messages.c.routing_key == routing_key,
                    outbox_messages.c.envelope["payload"]["email"].astext == email,
                )
                .order_by(outbox_messages.c.id)
            )
            return [row.envelope["payload"] for row in rows]

    async def code(self, email: str, routing_key: str = "email_verification") -> str:
        payloads = await self.outbox_payloads(routing_key, email)
        assert payloads, f"no {routing_key} message for {email}"
        return str(payloads[-1]["code"])

    async def link_token(self, email: str, purpose: str = "email_verification") -> str:
        """The 64-hex token of the link for the address's latest code."""
        code_hash = (
            await self.sql(
                "SELECT c.code_hash FROM verification_codes c JOIN users u ON u.id = c.user_id "
                "WHERE u.email = :email AND c.purpose = :purpose ORDER BY c.id DESC LIMIT 1",
                email=email,
                purpose=purpose,
            )
        ).scalar_one()
        return link_token(self.settings, code_hash)

    async def sql(self, statement: str, **params: Any) -> Any:
        async with self.engine.begin() as conn:
            return await conn.execute(text(statement), params)

    async def register(
        self, email: str | None = None, password: str = PASSWORD, role: str = "user"
    ) -> httpx.Response:
        return await self.http.post(
            "/api/auth/register",
            json={"email": email or new_email(), "password": password, "role": role},
        )

    async def register_organizer(
        self, email: str | None = None, document: bytes = PDF, filename: str = "licence.pdf"
    ) -> httpx.Response:
        return await self.http.post(
            "/api/auth/register",
            data={"email": email or new_email("org"), "password": PASSWORD, "role": "organizer"},
            files={"document": (filename, document, "application/pdf")},
        )

    async def verify(self, email: str) -> httpx.Response:
        code = await self.code(email)
        return await self.http.post("/api/auth/verify-email", json={"email": email, "code": code})

    async def login(
        self, email: str, password: str = PASSWORD, *, ip: str | None = None
    ) -> httpx.Response:
        """Log in, from ``ip`` as the gateway would report it (``X-Real-IP``) if given."""
        return await self.http.post(
            "/api/auth/login",
            json={"email": email, "password": password},
            headers={"X-Real-IP": ip} if ip else None,
        )

    async def signed_in(self, email: str, password: str = PASSWORD) -> Account:
        response = await self.login(email, password)
        assert response.status_code == 200, response.text
        me = await self.http.get("/api/auth/me", headers=bearer(response.json()["access_token"]))
        return Account(
            email=email,
            password=password,
            user_id=me.json()["id"],
            access_token=response.json()["access_token"],
            refresh_token=response.json()["refresh_token"],
        )

    async def admin(self) -> Account:
        return await self.signed_in(ADMIN_EMAIL, ADMIN_PASSWORD)

    async def user(self, email: str | None = None) -> Account:
        """A registered, verified, signed-in ``user``."""
        email = email or new_email()
        registered = await self.register(email)
        assert registered.status_code == 201, registered.text
        verified = await self.verify(email)
        assert verified.status_code == 200, verified.text
        return await self.signed_in(email)

    async def pending_organizer(self, email: str | None = None) -> Account:
        """A registered, verified organizer awaiting approval (cannot sign in yet)."""
        email = email or new_email("org")
        registered = await self.register_organizer(email)
        assert registered.status_code == 201, registered.text
        verified = await self.verify(email)
        assert verified.status_code == 200, verified.text
        return Account(email=email, password=PASSWORD, user_id=registered.json()["user"]["id"])

    async def organizer(self, admin: Account | None = None) -> Account:
        """An approved, signed-in organizer."""
        pending = await self.pending_organizer()
        admin = admin or await self.admin()
        approved = await self.http.post(
            "/api/auth/admin/approve", json={"user_id": pending.user_id}, headers=admin.headers
        )
        assert approved.status_code == 200, approved.text
        return await self.signed_in(pending.email)


async def asgi_post(
    app: FastAPI, path: str, body: dict[str, Any], on_answer: Callable[[], Awaitable[None]]
) -> int:
    """POST straight to the ASGI app, calling ``on_answer`` the moment the answer's body
    leaves (an httpx client only returns once the app, background work included, is done).
    Returns the status."""
    content = json.dumps(body).encode()
    chunks = [{"type": "http.request", "body": content, "more_body": False}]
    answered = asyncio.Event()
    status = 0

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop(0)
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            await on_answer()
            answered.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return status
