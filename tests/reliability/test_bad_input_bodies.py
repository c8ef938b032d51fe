"""Bodies no service should choke on, sent through the gateway: each gets a clear 4xx.

Oversized bodies stop at the gateway with a JSON 413, whatever the service (JSON over
64 KB; uploads over 10 MB). Broken JSON (truncated, not UTF-8, nested thirty thousand
deep, NaN...) is a JSON 400 on every route that takes a body. Numbers past a 64-bit id
are refused, not passed to PostgreSQL. Unicode that is hard to store (NUL bytes, lone
surrogates, right-to-left overrides, emoji) is either accepted and kept exactly, or
refused with a 4xx: never a 500.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import unique_email
from tests.reliability.conftest import json_error
from tests.support_auth import PASSWORD, admin_token, bearer
from tests.support_events import event_payload, signed_headers

pytestmark = pytest.mark.stack

GATEWAY_BODY_LIMIT = 10 * 1024 * 1024
BIG_ID = 2**63  # one past the largest BIGINT


def _organizer() -> dict[str, str]:
    return signed_headers(role="organizer")


def _user() -> dict[str, str]:
    return signed_headers(role="user")


def _anonymous() -> dict[str, str]:
    return {}


#: every public route that reads a body, with who may call it
BODY_ROUTES: list[tuple[str, str, Callable[[], dict[str, str]]]] = [
    ("POST", "/api/auth/register", _anonymous),
    ("POST", "/api/auth/login", _anonymous),
    ("POST", "/api/auth/refresh-token", _anonymous),
    ("POST", "/api/auth/reapply", _anonymous),
    ("POST", "/api/auth/forgot-password", _anonymous),
    ("POST", "/api/events", _organizer),
    ("PUT", "/api/events/1", _organizer),
    ("POST", "/api/bookings", _user),
    ("POST", "/api/payments/initialize", _user),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in BODY_ROUTES]


def raw_json(value: Any) -> bytes:
    """JSON with every non-ASCII character escaped: lone surrogates survive the trip."""
    return json.dumps(value).encode()


async def send_json(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.request(
        method, path, content=body, headers={"Content-Type": "application/json", **(headers or {})}
    )


# -- oversized ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/auth/register"),
        ("POST", "/api/events"),
        ("POST", "/api/bookings"),
        ("POST", "/api/payments/initialize"),
        ("POST", "/api/payments/callback"),
        ("POST", "/api/notifications"),
    ],
)
async def test_a_body_over_the_gateway_limit_is_a_json_413_for_every_service(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    body = b'{"title": "' + b"x" * (GATEWAY_BODY_LIMIT + 1024) + b'"}'

    response = await send_json(client, method, path, body, _organizer())

    assert json_error(response, 413)["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        pytest.param("/api/auth/me", {"Authorization": "Bearer " + "a" * 20_000}, id="header"),
        pytest.param("/api/events?q=" + "a" * 20_000, {}, id="url"),
    ],
)
async def test_an_oversized_header_or_url_is_a_json_4xx_from_the_gateway(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    response = await client.get(path, headers=headers)

    json_error(response, 400, 414, 431)


@pytest.mark.parametrize(("method", "path", "who"), BODY_ROUTES, ids=ROUTE_IDS)
async def test_a_huge_field_under_the_gateway_limit_is_refused_with_a_4xx(
    client: httpx.AsyncClient, method: str, path: str, who: Callable[[], dict[str, str]]
) -> None:
    huge = "x" * (1024 * 1024)  # eight fields of it: under the gateway's limit, so it passes
    body = raw_json(
        {
            **event_payload(title=huge, description=huge, location=huge),
            "email": f"{huge}@example.com",
            "password": huge,
            "refresh_token": huge,
            "event_id": 1,
            "seats": [{"id": huge}],
            "booking_id": 1,
            "first_name": huge,
        }
    )

    assert len(body) < GATEWAY_BODY_LIMIT

    response = await send_json(client, method, path, body, who())

    json_error(response)


# -- broken JSON ----------------------------------------------------------------------

MALFORMED: dict[str, bytes] = {
    "truncated object": b'{"email": "a@example.com", ',
    "missing value": b'{"email": }',
    "trailing garbage": b'{"email": "a@example.com"} and more',
    "single quotes": b"{'email': 'a@example.com'}",
    "not utf-8": b'{"email": "\xff\xfe\xfd"}',
    "empty body": b"",
    "bare null": b"null",
    "array instead of object": b"[1, 2, 3]",
    "string instead of object": b'"hello"',
    "NaN": b'{"event_id": NaN, "booking_id": NaN, "email": NaN}',
    "infinite number": b'{"event_id": 1e999999, "booking_id": 1e999999}',
    # as deep as fits in the gateway's 64 KB: far past any parser's recursion limit
    "nested thirty thousand deep": b"[" * 30_000 + b"]" * 30_000,
    "object nested deep": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
}


def _malformed_cases() -> list[Any]:
    cases = []
    for method, path, who in BODY_ROUTES:
        for name, body in MALFORMED.items():
            cases.append(pytest.param(method, path, who, body, id=f"{method} {path}: {name}"))
    return cases


@pytest.mark.parametrize(("method", "path", "who", "body"), _malformed_cases())
async def test_malformed_json_is_a_json_400_on_every_route_with_a_body(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    who: Callable[[], dict[str, str]],
    body: bytes,
) -> None:
    response = await send_json(client, method, path, body, who())

    json_error(response, 400)


async def test_a_malformed_provider_callback_is_refused_with_a_json_4xx(
    client: httpx.AsyncClient,
) -> None:
    responses = {
        name: await send_json(client, "POST", "/api/payments/callback", body)
        for name, body in MALFORMED.items()
    }

    for name, response in responses.items():
        json_error(response, what=name)


# -- numbers past a 64-bit id ---------------------------------------------------------


async def test_ids_past_bigint_in_paths_are_refused_with_a_json_4xx(
    client: httpx.AsyncClient,
) -> None:
    admin = bearer(await admin_token(client))
    user = _user()
    paths = {
        f"/api/events/{BIG_ID}": {},
        f"/api/events/{BIG_ID}/seats": {},
        f"/api/events/-{BIG_ID}": {},
        f"/api/bookings/{BIG_ID}": user,
        f"/api/bookings/event/{BIG_ID}/seats": user,
        f"/api/notifications/tickets/{BIG_ID}/pdf": user,
        f"/api/auth/users/{BIG_ID}": admin,
        f"/api/auth/admin/organizers/{BIG_ID}/document": admin,
        f"/api/events?limit={BIG_ID}&offset={BIG_ID}": {},
        f"/api/bookings/user?limit={BIG_ID}&offset={BIG_ID}": user,
        f"/api/notifications?limit={BIG_ID}&offset={BIG_ID}": user,
    }

    responses = {path: await client.get(path, headers=headers) for path, headers in paths.items()}

    for path, response in responses.items():
        json_error(response, 400, 404, what=path)


def _admin() -> dict[str, str]:
    return signed_headers(user_id=1, role="admin")


@pytest.mark.parametrize(
    ("path", "body", "who"),
    [
        pytest.param(
            "/api/bookings",
            {"event_id": BIG_ID, "seat_count": 1, "ticket_class": "vip"},
            _user,
            id="booking for a huge event id",
        ),
        pytest.param(
            "/api/payments/initialize",
            {"booking_id": BIG_ID},
            _user,
            id="payment for a huge booking id",
        ),
        pytest.param(
            "/api/events", event_payload(seats_vip=BIG_ID), _organizer, id="huge capacity"
        ),
        pytest.param("/api/events", event_payload(price_vip="1e30"), _organizer, id="huge price"),
        pytest.param("/api/auth/admin/approve", {"user_id": BIG_ID}, _admin, id="approve"),
        pytest.param("/api/auth/admin/promote", {"user_id": BIG_ID}, _admin, id="promote"),
        pytest.param("/api/auth/admin/reject", {"user_id": BIG_ID}, _admin, id="reject"),
    ],
)
async def test_ids_past_bigint_in_bodies_are_refused_with_a_json_4xx(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], who: Callable[[], dict[str, str]]
) -> None:
    response = await send_json(client, "POST", path, raw_json(body), who())

    json_error(response, 400, 404)


# -- unicode --------------------------------------------------------------------------

AWKWARD_TEXT = {
    "emoji": "Gala 🎟️🎉👩🏽‍🎤",
    "right-to-left override": "Gala \u202egnp.exe",
    "arabic and hebrew": "حفلة موسيقية שלום",
    "nul byte": "Gala\u0000night",
    "lone surrogate": "Gala \ud800 night",
    "zero width and combining marks": "G\u200ba\u0301l\u0336a\u0489",
    "non-characters": "Gala \uffff\ufffe",
    "mathematical letters": "\U0001d572\U0001d586\U0001d591\U0001d586 \U0010ffff",
}


def _accepted_or_refused(response: httpx.Response, what: str) -> bool:
    """True when accepted (2xx); otherwise it must be a JSON 4xx."""
    if response.status_code < 300:
        return True
    json_error(response, what=what)
    return False


def awkward() -> list[Any]:
    """``AWKWARD_TEXT`` as parameters, named by case."""
    return [pytest.param(text, id=name) for name, text in AWKWARD_TEXT.items()]


async def _event(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    created = await send_json(
        client, "POST", "/api/events", raw_json(event_payload(**fields)), _organizer()
    )
    assert created.status_code == 201, created.text
    event: dict[str, Any] = created.json()["event"]
    return event


@pytest.mark.parametrize("text", awkward())
async def test_awkward_unicode_in_event_text_is_kept_exactly_or_refused(
    client: httpx.AsyncClient, text: str
) -> None:
    title = f"{text} {uuid.uuid4().hex[:8]}"
    body = raw_json(event_payload(title=title, description=text, location=text))

    created = await send_json(client, "POST", "/api/events", body, _organizer())

    if _accepted_or_refused(created, "event with it in title, description and location"):
        read = await client.get(f"/api/events/{created.json()['event']['id']}")
        assert read.status_code == 200, read.text
        assert (read.json()["title"], read.json()["location"]) == (title, text)
        assert read.json()["description"] == text


@pytest.mark.parametrize("text", awkward())
async def test_searching_for_awkward_unicode_finds_only_what_contains_it(
    client: httpx.AsyncClient, text: str
) -> None:
    as_sent = quote(text.encode(errors="surrogatepass"))  # a lone surrogate as broken UTF-8

    searched = await client.get(f"/api/events?q={as_sent}&location={as_sent}")

    if _accepted_or_refused(searched, "search for it"):
        for found in searched.json():
            assert text in f"{found['title']} {found['description']} {found['location']}"


@pytest.mark.parametrize("text", awkward())
async def test_awkward_unicode_in_a_new_password_is_accepted_or_refused(
    client: httpx.AsyncClient, text: str
) -> None:
    body = {"email": unique_email("unicode"), "password": f"{PASSWORD}{text}"}

    registered = await send_json(client, "POST", "/api/auth/register", raw_json(body))

    _accepted_or_refused(registered, "password with it")


@pytest.mark.parametrize("text", awkward())
async def test_awkward_unicode_in_an_email_is_accepted_or_refused(
    client: httpx.AsyncClient, text: str
) -> None:
    body = {"email": f"{text}@example.com", "password": PASSWORD}

    registered = await send_json(client, "POST", "/api/auth/register", raw_json(body))

    _accepted_or_refused(registered, "email with it")


@pytest.mark.parametrize("text", awkward())
async def test_awkward_unicode_as_a_login_password_is_refused(
    client: httpx.AsyncClient, text: str
) -> None:
    # An account of this test's own: failed logins lock an account for a while.
    email = unique_email("unicode-login")
    registered = await send_json(
        client, "POST", "/api/auth/register", raw_json({"email": email, "password": PASSWORD})
    )
    assert registered.status_code == 201, registered.text
    wrong_password = {"email": email, "password": text}
    odd_email = {"email": f"{text}@example.com", "password": text}

    responses = [
        await send_json(client, "POST", "/api/auth/login", raw_json(body))
        for body in (wrong_password, odd_email)
    ]

    for response in responses:
        json_error(response, 400, 401, what="login with it")


@pytest.mark.parametrize("text", awkward())
async def test_awkward_unicode_as_a_seat_id_is_refused(
    client: httpx.AsyncClient, text: str
) -> None:
    event = await _event(client)
    body = {"event_id": event["id"], "seats": [{"id": text}]}

    response = await send_json(client, "POST", "/api/bookings", raw_json(body), _user())

    json_error(response, 400, 404, 409)


@pytest.mark.parametrize("text", awkward())
async def test_awkward_unicode_in_the_buyers_name_is_accepted_or_refused(
    client: httpx.AsyncClient, text: str
) -> None:
    event, user = await _event(client), _user()
    booking = {"event_id": event["id"], "seat_count": 1, "ticket_class": "vip"}
    booked = await send_json(client, "POST", "/api/bookings", raw_json(booking), user)
    assert booked.status_code == 201, booked.text
    body = {
        "booking_id": booked.json()["booking"]["id"],
        "email": unique_email("buyer"),
        "first_name": text,
        "last_name": text,
    }

    payment = await send_json(client, "POST", "/api/payments/initialize", raw_json(body), user)

    _accepted_or_refused(payment, "buyer's name with it")


@pytest.mark.parametrize(
    "seat_id",
    [
        "vip-\uff11-\uff11",
        "vip-\u0661-\u0661",
        "VIP-1-1",
        "vip-1-1\u0000",
        "vip-01-001",
        "vip-1-1 ",
    ],
)
async def test_seat_ids_that_only_look_right_are_refused_or_mean_one_real_seat(
    client: httpx.AsyncClient, seat_id: str
) -> None:
    created = await send_json(
        client, "POST", "/api/events", raw_json(event_payload()), _organizer()
    )
    assert created.status_code == 201, created.text
    event_id = created.json()["event"]["id"]

    response = await send_json(
        client,
        "POST",
        "/api/bookings",
        raw_json({"event_id": event_id, "seats": [{"id": seat_id}]}),
        _user(),
    )

    if _accepted_or_refused(response, f"seat {seat_id!r}"):
        seats = response.json()["booking"]["seat_list"]
        assert [seat["seat_id"] for seat in seats] == ["vip-1-1"], seats
