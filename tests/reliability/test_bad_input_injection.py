"""SQL-looking input through the gateway: treated as text, never as SQL.

Every string below reaches PostgreSQL as a bound parameter or is refused by validation,
so each request gets a normal answer (often an empty result) or a JSON 4xx, never a 500,
a login, or a wider result than the literal text allows. Afterwards the data is all
still there: the admin still signs in, events and users are still counted as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, unique_email
from tests.reliability.conftest import json_error
from tests.support_auth import PASSWORD, admin_token, bearer
from tests.support_events import event_payload, signed_headers

pytestmark = pytest.mark.stack

INJECTIONS = [
    "' OR 1=1 --",
    "1; DROP TABLE users",
    "1; DROP TABLE events; --",
    "admin@example.com' --",
    '" OR ""="',
    "'; SELECT pg_sleep(10); --",
    "1 UNION SELECT email, password_hash FROM users --",
    "%' OR '%'='",
]


async def _totals(client: httpx.AsyncClient, admin: dict[str, str]) -> tuple[int, int]:
    events = await client.get("/api/events", params={"limit": 1})
    users = await client.get("/api/auth/admin/users", params={"limit": 1}, headers=admin)
    assert events.status_code == 200, events.text
    assert users.status_code == 200, users.text
    return int(events.headers["X-Total-Count"]), int(users.headers["X-Total-Count"])


def _contains(event: dict[str, str], text: str) -> bool:
    haystack = f"{event['title']} {event['description']} {event['location']}".lower()
    return text.lower() in haystack


async def test_sql_in_query_parameters_is_searched_for_as_text(
    new_client: Callable[[], httpx.AsyncClient],
) -> None:
    async with new_client() as client:
        admin = bearer(await admin_token(client))
        before = await _totals(client, admin)
        marked = f"{INJECTIONS[0]} {uuid.uuid4().hex[:8]}"
        created = await client.post(
            "/api/events", json=event_payload(title=marked), headers=signed_headers()
        )
        assert created.status_code == 201, created.text

    async with new_client() as client:
        searches = {
            text: await client.get("/api/events", params={"q": text}) for text in INJECTIONS
        }
        by_location = await client.get("/api/events", params={"location": INJECTIONS[1]})
    async with new_client() as client:
        wildcards = {text: await client.get("/api/events", params={"q": text}) for text in "%_\\"}
        refused = {
            name: await client.get("/api/events", params=params)
            for name, params in {
                "limit": {"limit": "10; DROP TABLE events"},
                "offset": {"offset": "0 OR 1=1"},
                "from": {"from": "2020-01-01' OR '1'='1"},
                "to": {"to": "1; DROP TABLE events"},
            }.items()
        }

    for text, response in {**searches, **wildcards}.items():
        assert response.status_code == 200, f"q={text!r}: {response.status_code} {response.text}"
        events = response.json()
        assert all(_contains(event, text) for event in events), f"q={text!r} matched too much"
    assert marked in [e["title"] for e in searches[INJECTIONS[0]].json()]
    assert searches[INJECTIONS[5]].elapsed.total_seconds() < 5, "pg_sleep ran"
    assert by_location.status_code == 200
    located = by_location.json()
    assert all(INJECTIONS[1].lower() in event["location"].lower() for event in located)
    for name, response in refused.items():
        json_error(response, 400, what=name)
    async with new_client() as client:
        after = await _totals(client, admin)
    assert after[0] >= before[0]  # the public list may be cached for a few seconds
    assert after[1] == before[1]


async def test_sql_in_path_ids_is_a_json_4xx(client: httpx.AsyncClient) -> None:
    user = signed_headers(role="user")
    paths = [
        f"/api/events/{quote(text, safe='')}" for text in ("1 OR 1=1", "1; DROP TABLE events")
    ] + [
        f"/api/bookings/{quote('1; DROP TABLE bookings', safe='')}",
        f"/api/notifications/tickets/{quote('1 OR 1=1', safe='')}/pdf",
        f"/api/payments/verify/{quote(INJECTIONS[0], safe='')}",
    ]

    responses = {path: await client.get(path, headers=user) for path in paths}

    for path, response in responses.items():
        json_error(response, 400, 404, what=path)


async def test_sql_in_login_never_signs_anyone_in(
    new_client: Callable[[], httpx.AsyncClient],
) -> None:
    # The victim is an account of this test's own: failed logins lock an account for a while.
    victim = unique_email("victim")
    attempts = [
        {"email": f"{victim}' --", "password": "anything"},
        {"email": victim, "password": "' OR '1'='1"},
        {"email": victim, "password": "' OR 1=1 --"},
        {"email": "' OR 1=1 --", "password": "' OR 1=1 --"},
        {"email": "x@example.com' UNION SELECT * FROM users --", "password": "x"},
    ]
    async with new_client() as client:
        registered = await client.post(
            "/api/auth/register", json={"email": victim, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        responses = [await client.post("/api/auth/login", json=body) for body in attempts]
    async with new_client() as client:
        still = await client.post(
            "/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )

    for body, response in zip(attempts, responses, strict=True):
        json_error(response, 400, 401, what=str(body))
        assert "access_token" not in response.json()
    assert still.status_code == 200, still.text


async def test_sql_in_bodies_and_filters_is_stored_or_refused_and_the_data_is_intact(
    new_client: Callable[[], httpx.AsyncClient],
) -> None:
    async with new_client() as client:
        admin = bearer(await admin_token(client))
        before = await _totals(client, admin)
        title = f"Robert'); DROP TABLE events;-- {uuid.uuid4().hex[:8]}"
        organizer = signed_headers()
        created = await client.post(
            "/api/events",
            json=event_payload(title=title, description=INJECTIONS[6], location=INJECTIONS[1]),
            headers=organizer,
        )
        assert created.status_code == 201, created.text
        event = created.json()["event"]
        registrations = [
            await client.post(
                "/api/auth/register",
                json={"email": f"{text}@example.com", "password": PASSWORD},
            )
            for text in INJECTIONS[:3]
        ]
    async with new_client() as client:
        filters = {
            "role": await client.get(
                "/api/auth/admin/users", params={"role": INJECTIONS[0]}, headers=admin
            ),
            "status": await client.get(
                "/api/auth/admin/users", params={"status": INJECTIONS[1]}, headers=admin
            ),
            "audit action": await client.get(
                "/api/auth/admin/audit-logs", params={"action": INJECTIONS[0]}, headers=admin
            ),
            "booking status": await client.get(
                "/api/bookings/user",
                params={"status": INJECTIONS[0]},
                headers=signed_headers(role="user"),
            ),
        }
        update = await client.put(
            f"/api/events/{event['id']}", json={"description": INJECTIONS[2]}, headers=organizer
        )
        read = await client.get(f"/api/events/{event['id']}")

    for response in registrations:
        if response.status_code != 201:
            json_error(response, 400, 409)
    json_error(filters["role"], 400, what="role filter")
    json_error(filters["status"], 400, what="status filter")
    json_error(filters["booking status"], 400, what="booking status filter")
    assert filters["audit action"].status_code == 200, filters["audit action"].text
    assert filters["audit action"].json() == []  # a bare array, as the original's
    assert update.status_code == 200, update.text
    assert read.status_code == 200
    assert read.json()["title"] == title
    assert read.json()["description"] == INJECTIONS[2]
    assert read.json()["location"] == INJECTIONS[1]
    async with new_client() as client:
        after = await _totals(client, admin)
        admin_again = await client.post(
            "/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
    accepted = sum(response.status_code == 201 for response in registrations)
    assert after[0] >= before[0]  # the public list may be cached for a few seconds
    assert after[1] == before[1] + accepted
    assert admin_again.status_code == 200
