"""Access and refresh tokens, refresh-token families and revocation, all in Redis.

Every login starts a refresh-token *family*. Redis remembers the one refresh token of the
family that may be used next; using it rotates the family to a new token. Presenting any
other token of the family (a copy that was already used, say by a thief) revokes the whole
family, so both the thief and the victim must log in again. Logout deletes the family.
Because the state lives in Redis, every replica agrees on it at once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any

from auth_service.models import User
from auth_service.settings import AuthSettings
from ticketing_common import revocation
from ticketing_common.errors import Unauthorized
from ticketing_common.security import decode_token, issue_token

TOKEN_TYPE = "bearer"  # noqa: S105 - the OAuth token type

# KEYS[1] family key; ARGV: presented jti, next jti, ttl seconds.
# 1 = rotated, 0 = family unknown (logged out, revoked or expired), -1 = reuse: revoked now.
_ROTATE_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
  return 1
end
redis.call('DEL', KEYS[1])
return -1
"""


class Rotation(Enum):
    ROTATED = 1
    UNKNOWN = 0
    REUSED = -1


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = TOKEN_TYPE


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _family_key(family: str) -> str:
    return f"auth:refresh_family:{family}"


def _sessions_revoked_before_key(user_id: int) -> str:
    return f"auth:sessions_revoked_before:{user_id}"


class TokenStore:
    """Signs token pairs and keeps the refresh-family and revocation state in Redis."""

    def __init__(self, redis: Any, settings: AuthSettings) -> None:
        self.redis = redis
        self.settings = settings

    def _sign_pair(self, user: User, family: str) -> tuple[TokenPair, str]:
        issued_ms = _now_ms()
        access, _ = issue_token(
            secret=self.settings.jwt_secret,
            user_id=user.id,
            role=user.role,
            token_type="access",  # noqa: S106
            ttl=timedelta(seconds=self.settings.access_token_ttl_seconds),
            email=user.email,
            extra={"iat_ms": issued_ms},
        )
        refresh, refresh_claims = issue_token(
            secret=self.settings.jwt_refresh_secret,
            user_id=user.id,
            role=user.role,
            token_type="refresh",  # noqa: S106
            ttl=timedelta(seconds=self.settings.refresh_token_ttl_seconds),
            extra={"iat_ms": issued_ms, "fam": family},
        )
        pair = TokenPair(access, refresh, self.settings.access_token_ttl_seconds)
        return pair, str(refresh_claims["jti"])

    async def start_session(self, user: User) -> TokenPair:
        family = uuid.uuid4().hex
        pair, jti = self._sign_pair(user, family)
        await self.redis.set(_family_key(family), jti, ex=self.settings.refresh_token_ttl_seconds)
        return pair

    def decode_refresh(self, token: str) -> dict[str, Any]:
        claims = decode_token(
            token, secret=self.settings.jwt_refresh_secret, expected_type="refresh"
        )
        if not isinstance(claims.get("fam"), str):
            raise Unauthorized("invalid token: not a session refresh token")
        return claims

    async def rotate(self, claims: dict[str, Any], user: User) -> tuple[Rotation, TokenPair]:
        """Swap the family's current refresh token for a new pair (only once per token)."""
        pair, next_jti = self._sign_pair(user, claims["fam"])
        outcome = await self.redis.eval(
            _ROTATE_SCRIPT,
            1,
            _family_key(claims["fam"]),
            claims["jti"],
            next_jti,
            self.settings.refresh_token_ttl_seconds,
        )
        return Rotation(int(outcome)), pair

    async def end_session(self, claims: dict[str, Any]) -> None:
        await self.redis.delete(_family_key(claims["fam"]))

    async def revoke_access_token(self, jti: str) -> None:
        """Refuse one access token from now on (kept as long as such a token can live)."""
        ttl = self.settings.access_token_ttl_seconds + 60
        await revocation.revoke_access_token(self.redis, jti, ttl)

    async def revoke_user_tokens(self, user_id: int, *, sessions: bool) -> None:
        """Refuse the user's access tokens issued until now (and refresh tokens too)."""
        now_ms = _now_ms()
        if sessions:
            await self.redis.set(
                _sessions_revoked_before_key(user_id),
                str(now_ms),
                ex=self.settings.refresh_token_ttl_seconds + 60,
            )
        ttl = self.settings.access_token_ttl_seconds + 60
        await revocation.revoke_user_tokens(self.redis, user_id, now_ms, ttl)

    async def session_revoked(self, claims: dict[str, Any]) -> bool:
        """Was this refresh token issued before the user's sessions were all revoked?"""
        revoked_before = await self.redis.get(_sessions_revoked_before_key(int(claims["sub"])))
        issued_ms = int(claims.get("iat_ms", int(claims["iat"]) * 1000))
        return revoked_before is not None and issued_ms < int(revoked_before)
