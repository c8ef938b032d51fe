"""Accounts and a small event catalogue, made through the gateway as real users make them.

Buyers register, receive their verification code by email and verify (the verify answer
carries their tokens); an organizer registers with a document, is approved by the seeded
admin and signs in; the organizer publishes a catalogue of events so the event list has a
realistic body. Everything lands in one JSON file that the k6 scripts ``open()``.

Registration costs an argon2id hash each, on purpose: accounts are made in parallel
(bounded) once per run and every benchmark row reuses them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

CodeSource = Callable[[str], Awaitable[str]]

PASSWORD = "Bench-Password-1"  # noqa: S105 - throwaway accounts of a local stack
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Admin-Password-1"  # noqa: S105 - devstack's seeded admin
PDF_DOCUMENT = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
# Source addresses of the setup clients (k6 uses 127.0.1.1-127.0.8.254, the tests 127.10+).
SETUP_ADDRESS_PREFIX = "127.0.9."
RETRIES = 5


@dataclass(frozen=True)
class Account:
    email: str
    user_id: int
    access_token: str
    refresh_token: str = ""


@dataclass
class BenchData:
    gateway_url: str
    created_at: str
    admin: Account
    organizer: Account
    buyers: list[Account]
    catalogue_event_ids: list[int] = field(default_factory=list)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1))


class SetupFailed(RuntimeError):
    """The stack refused to create an account or an event."""


def _addresses() -> Iterator[str]:
    while True:
        for host in range(1, 255):
            yield f"{SETUP_ADDRESS_PREFIX}{host}"


class Gateway:
    """httpx clients on the gateway, each from its own loopback address."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._addresses = _addresses()

    def client(self) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(local_address=next(self._addresses))
        return httpx.AsyncClient(base_url=self.url, transport=transport, timeout=120.0)


async def _call(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request, retried while the gateway rate-limits it or a service is restarting."""
    for attempt in range(RETRIES):
        response = await client.request(method, path, **kwargs)
        if response.status_code == 429:
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        if response.status_code in (502, 503, 504) and attempt < RETRIES - 1:
            await asyncio.sleep(0.5 * (attempt + 1))
            continue
        return response
    return response


def _expect(response: httpx.Response, status: int, what: str) -> dict[str, Any]:
    if response.status_code != status:
        raise SetupFailed(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


def _user_id(body: dict[str, Any]) -> int:
    return int(body["user"]["id"])


async def _verify(client: httpx.AsyncClient, codes: CodeSource, email: str) -> dict[str, Any]:
    code = await codes(email)
    response = await _call(
        client, "POST", "/api/auth/verify-email", json={"email": email, "code": code}
    )
    return _expect(response, 200, f"verify {email}")


async def register_buyer(gateway: Gateway, codes: CodeSource, tag: str) -> Account:
    email = f"buyer-{tag}-{uuid.uuid4().hex[:10]}@bench.example.com"
    async with gateway.client() as client:
        registered = await _call(
            client,
            "POST",
            "/api/auth/register",
            json={"email": email, "password": PASSWORD, "role": "user"},
        )
        user_id = _user_id(_expect(registered, 201, f"register {email}"))
        verified = await _verify(client, codes, email)
    return Account(email, user_id, str(verified["access_token"]), str(verified["refresh_token"]))


async def login(client: httpx.AsyncClient, email: str, password: str) -> tuple[str, str]:
    """(access token, refresh token) of a password sign-in."""
    response = await _call(
        client, "POST", "/api/auth/login", json={"email": email, "password": password}
    )
    body = _expect(response, 200, f"login {email}")
    return str(body["access_token"]), str(body["refresh_token"])


async def approved_organizer(gateway: Gateway, codes: CodeSource, admin: Account) -> Account:
    email = f"organizer-{uuid.uuid4().hex[:10]}@bench.example.com"
    async with gateway.client() as client:
        registered = await _call(
            client,
            "POST",
            "/api/auth/register",
            data={"email": email, "password": PASSWORD, "role": "organizer"},
            files={"document": ("licence.pdf", PDF_DOCUMENT, "application/pdf")},
        )
        user_id = _user_id(_expect(registered, 201, f"register organizer {email}"))
        await _verify(client, codes, email)
        approved = await _call(
            client,
            "POST",
            "/api/auth/admin/approve",
            json={"user_id": user_id},
            headers={"Authorization": f"Bearer {admin.access_token}"},
        )
        _expect(approved, 200, f"approve organizer {email}")
        access, refresh = await login(client, email, PASSWORD)
    return Account(email, user_id, access, refresh)


def event_body(title: str, *, normal: int, vip: int, vvip: int, per_row: int) -> dict[str, Any]:
    """A ``POST /api/events`` body for an event a month from now."""
    return {
        "title": title,
        "description": "Benchmark event on the bench stack.",
        "date": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "location": "Addis Ababa",
        "price_normal": "150.00",
        "price_vip": "400.00",
        "price_vvip": "900.00",
        "seats_normal": normal,
        "seats_vip": vip,
        "seats_vvip": vvip,
        "seats_per_row": per_row,
    }


async def create_event(gateway: Gateway, organizer: Account, body: dict[str, Any]) -> int:
    async with gateway.client() as client:
        response = await _call(
            client,
            "POST",
            "/api/events",
            json=body,
            headers={"Authorization": f"Bearer {organizer.access_token}"},
        )
    return int(_expect(response, 201, f"create event {body['title']!r}")["event"]["id"])


async def _refreshed(gateway: Gateway, account: Account) -> Account:
    async with gateway.client() as client:
        response = await _call(
            client,
            "POST",
            "/api/auth/refresh-token",
            json={"refresh_token": account.refresh_token},
        )
    body = _expect(response, 200, f"refresh {account.email}")
    return replace(
        account, access_token=str(body["access_token"]), refresh_token=str(body["refresh_token"])
    )


async def refresh_sessions(data: BenchData, concurrency: int = 16) -> BenchData:
    """Fresh access tokens for every account (they live 15 minutes; a run is longer).

    Refresh tokens rotate, so each account's new refresh token replaces the old one.
    """
    gateway = Gateway(data.gateway_url)
    limit = asyncio.Semaphore(concurrency)

    async def one(account: Account) -> Account:
        async with limit:
            return await _refreshed(gateway, account)

    admin, organizer, *buyers = await asyncio.gather(
        *(one(a) for a in [data.admin, data.organizer, *data.buyers])
    )
    return replace(data, admin=admin, organizer=organizer, buyers=buyers)


async def prepare(
    gateway_url: str,
    codes: CodeSource,
    *,
    buyers: int,
    catalogue_events: int = 20,
    concurrency: int = 8,
    progress: Callable[[str], None] | None = None,
) -> BenchData:
    """Make the admin session, an approved organizer, ``buyers`` buyers and the catalogue."""
    gateway = Gateway(gateway_url)
    async with gateway.client() as client:
        admin = Account(ADMIN_EMAIL, 0, *await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
    organizer = await approved_organizer(gateway, codes, admin)

    limit = asyncio.Semaphore(concurrency)
    made = 0

    async def one(index: int) -> Account:
        nonlocal made
        async with limit:
            account = await register_buyer(gateway, codes, str(index))
        made += 1
        if progress is not None and (made % 50 == 0 or made == buyers):
            progress(f"{made}/{buyers} buyers registered and verified")
        return account

    accounts = await asyncio.gather(*(one(i) for i in range(buyers)))
    catalogue = [
        await create_event(
            gateway,
            organizer,
            event_body(f"Catalogue night {i + 1}", normal=100, vip=20, vvip=10, per_row=10),
        )
        for i in range(catalogue_events)
    ]
    return BenchData(
        gateway_url=gateway_url,
        created_at=datetime.now(UTC).isoformat(),
        admin=admin,
        organizer=organizer,
        buyers=list(accounts),
        catalogue_event_ids=catalogue,
    )
