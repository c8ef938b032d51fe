"""Access-token verification, role guards and the service-token guard.

Every service verifies access tokens itself with the shared ``JWT_SECRET``; nothing trusts
a user id sent in a body. Only HS256 is accepted, so ``alg: none`` and key-confusion
tokens are refused, and a refresh token is never accepted where an access token is due.
"""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import jwt
from cachetools import LRUCache
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from ticketing_common.errors import Forbidden, Unauthorized
from ticketing_common.settings import ServiceSettings

ALGORITHM = "HS256"
SERVICE_TOKEN_HEADER = "X-Service-Token"  # noqa: S105 - a header name


class Role(StrEnum):
    USER = "user"
    ORGANIZER = "organizer"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as proven by a verified access token."""

    user_id: int
    role: Role
    email: str | None
    jti: str
    #: when the token was issued, in milliseconds (``iat_ms`` claim, else ``iat``)
    issued_at_ms: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def issue_token(
    *,
    secret: str,
    user_id: int,
    role: str,
    token_type: str,
    ttl: timedelta,
    email: str | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Sign a token; returns it with its claims (auth_service stores the refresh jti)."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "user_id": user_id,
        "role": role,
        "type": token_type,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if email is not None:
        claims["email"] = email
    if extra:
        claims.update(extra)
    return jwt.encode(claims, secret, algorithm=ALGORITHM), claims


#: tokens this process verified lately. A buyer sends the same access token with every
#: request of a purchase, and checking its HMAC, base64 and JSON costs more than the rest
#: of the authentication; a hit still checks the expiry (the only claim that changes with
#: time) and revocation is checked on every request regardless.
_VERIFIED: LRUCache[tuple[str, str, str], dict[str, Any]] = LRUCache(maxsize=4096)


def decode_token(token: str, *, secret: str, expected_type: str) -> dict[str, Any]:
    """Verify signature, expiry and type; raise :class:`Unauthorized` otherwise.

    Access tokens' claims are shared by the requests that present the same token: read
    them, never change them.
    """
    if expected_type != "access":  # a refresh token is presented once
        return _verify(token, secret=secret, expected_type=expected_type)
    key = (token, secret, expected_type)
    known = _VERIFIED.get(key)
    if known is not None:
        if known["exp"] > time.time():
            return known
        _VERIFIED.pop(key, None)
    claims = _verify(token, secret=secret, expected_type=expected_type)
    _VERIFIED[key] = claims
    return claims


def _verify(token: str, *, secret: str, expected_type: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub", "type", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid token") from exc
    if claims.get("type") != expected_type:
        raise Unauthorized(f"invalid token: not an {expected_type} token")
    return claims


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    try:
        user_id = int(claims.get("user_id", claims["sub"]))
        role = Role(claims["role"])
        issued_at_ms = int(claims.get("iat_ms", int(claims["iat"]) * 1000))
    except (KeyError, TypeError, ValueError) as exc:
        raise Unauthorized("invalid token claims") from exc
    return Principal(
        user_id=user_id,
        role=role,
        email=claims.get("email"),
        jti=claims["jti"],
        issued_at_ms=issued_at_ms,
    )


class _BearerOrBareToken(HTTPBearer):
    """``Authorization: Bearer <token>``, or the bare token the original's clients send."""

    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
        authorization = request.headers.get("Authorization", "").strip()
        scheme, _, rest = authorization.partition(" ")
        token = rest.strip() if scheme.lower() == "bearer" else ""
        if not rest and authorization.count(".") == 2:  # a JWT on its own
            token = authorization
        if not token:
            return None
        return HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)


_bearer = _BearerOrBareToken(auto_error=False)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token")
    settings: ServiceSettings = request.app.state.settings
    claims = decode_token(
        credentials.credentials, secret=settings.jwt_secret, expected_type="access"
    )
    principal = principal_from_claims(claims)
    revocation = getattr(request.app.state, "access_revocation", None)
    if revocation is not None and await revocation(principal):
        raise Unauthorized("token revoked")
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Any:
    """Dependency that admits only callers with one of ``roles``."""

    allowed = frozenset(roles)

    async def guard(principal: CurrentUser) -> Principal:
        if principal.role not in allowed:
            names = " or ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"this action needs the {names} role")
        return principal

    return Depends(guard)


AdminUser = Annotated[Principal, require_roles(Role.ADMIN)]
OrganizerUser = Annotated[Principal, require_roles(Role.ORGANIZER)]
OrganizerOrAdmin = Annotated[Principal, require_roles(Role.ORGANIZER, Role.ADMIN)]


async def require_service_token(request: Request) -> None:
    """Guard for ``/internal/...`` routes: only callers holding the shared service token."""
    settings: ServiceSettings = request.app.state.settings
    presented = request.headers.get(SERVICE_TOKEN_HEADER, "")
    if not presented or not hmac.compare_digest(presented, settings.service_token):
        raise Unauthorized("service token required")


ServiceCaller = Depends(require_service_token)
