"""Tampered, expired and wrong-kind JWTs on a protected route of every service: JSON 401.

Each service verifies access tokens itself, so each is tried: a token that is almost
right (re-signed, edited, ``alg: none``, another algorithm, expired, a refresh token, a
refresh-typed token signed with the access secret, unknown role) or not a token at all.
A genuine token on the same route gets through, so the refusals are the tokens' doing.
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning

from tests.reliability.conftest import json_error
from tests.support_auth import admin_tokens, bearer
from ticketing_common.security import issue_token
from ticketing_common.settings import ServiceSettings

pytestmark = pytest.mark.stack

STACK_SETTINGS = ServiceSettings()

#: a route of each service that needs a valid access token (the admin may call each)
PROTECTED = {
    "auth_service": "/api/auth/me",
    "event_service": "/api/events/my",
    "booking_service": "/api/bookings/user",
    "payment_service": "/api/payments/verify/tx-not-a-real-one",
    "notification_service": "/api/notifications",
}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def _signed(
    *,
    ttl: timedelta = timedelta(minutes=15),
    kind: str = "access",
    role: str = "admin",
    claims: dict[str, Any] | None = None,
) -> str:
    """A token signed with the stack's access secret, like the admin's but for the changes."""
    token, _ = issue_token(
        secret=STACK_SETTINGS.jwt_secret,
        user_id=1,
        role=role,
        token_type=kind,
        ttl=ttl,
        extra=claims,
    )
    return token


def _hs512(claims: dict[str, Any]) -> str:
    """The claims signed with the right secret but HS512, which no service accepts."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)  # short for HS512: fine here
        return jwt.encode(claims, STACK_SETTINGS.jwt_secret, "HS512")


def tampered_tokens(tokens: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Authorization headers that must all be refused, by name."""
    access = str(tokens["access_token"])
    head, payload, signature = access.split(".")
    claims = _claims_of(access)
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return {
        "no token": {},
        "scheme without a token": {"Authorization": "Bearer"},
        "not a jwt": bearer("garbage"),
        "three dots of nothing": bearer("a.b.c"),
        "basic credentials": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        "bad signature": bearer(f"{head}.{payload}.{flipped}"),
        # a bare token is accepted as the original's clients send it, but only a valid one
        "bad signature without a scheme": {"Authorization": f"{head}.{payload}.{flipped}"},
        "signed with another secret": bearer(jwt.encode(claims, "not-the-secret" * 4, "HS256")),
        "edited claims": bearer(f"{head}.{_b64({**claims, 'user_id': 2, 'sub': '2'})}.{signature}"),
        "alg none": bearer(f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."),
        "another algorithm": bearer(_hs512(claims)),
        "expired": bearer(_signed(ttl=timedelta(minutes=-5))),
        "refresh token as access": bearer(str(tokens["refresh_token"])),
        "refresh-typed with the access secret": bearer(_signed(kind="refresh")),
        "unknown role": bearer(_signed(role="superuser")),
        "user id not a number": bearer(_signed(claims={"user_id": "abc", "sub": "abc"})),
        "no expiry": bearer(_signed(claims={"exp": None})),
    }


@pytest.mark.parametrize("service", list(PROTECTED))
async def test_tampered_and_wrong_kind_tokens_get_a_json_401_from_every_service(
    service: str, new_client: Callable[[], httpx.AsyncClient]
) -> None:
    path = PROTECTED[service]
    async with new_client() as client:
        tokens = await admin_tokens(client)
        genuine = await client.get(path, headers=bearer(str(tokens["access_token"])))
    async with new_client() as client:  # a fresh address: the tries stay under the rate limit
        refused = {
            name: await client.get(path, headers=headers)
            for name, headers in tampered_tokens(tokens).items()
        }

    assert genuine.status_code != 401, f"{service} refused a genuine token: {genuine.text}"
    assert genuine.status_code < 500, genuine.text
    for name, response in refused.items():
        json_error(response, 401, what=f"{service}, {name}")
