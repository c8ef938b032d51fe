"""Sessions: login, refresh-token rotation and logout."""

from __future__ import annotations

import contextlib

from auth_service.audit import (
    audit_entry,
    record_refusal,
)
from auth_service.context import AuthContext, _counted
from auth_service.errors import RefreshTokenReused
from auth_service.metrics import LOGINS, TOKEN_REFRESHES
from auth_service.models import User, UserStatus
from auth_service.passwords import PasswordHashingBusy
from auth_service.schemas import LoginRequest
from auth_service.tokens import Rotation, TokenPair
from ticketing_common.db import utcnow
from ticketing_common.errors import Forbidden, Unauthorized
from ticketing_common.security import Principal


class Sessions(AuthContext):
    # --- login and sessions -------------------------------------------------------------

    async def login(self, body: LoginRequest) -> TokenPair:
        async with _counted(LOGINS):
            return await self._login(body)

    async def _login(self, body: LoginRequest) -> TokenPair:
        user = await self._authenticate(body.email, body.password, "login_failed")
        self._ensure_may_log_in(user)
        if self.passwords.needs_rehash(user.password_hash):
            with contextlib.suppress(PasswordHashingBusy):  # upgraded at a quieter login
                user.password_hash = await self.passwords.hash(body.password)
        user.last_login_at = utcnow()
        return await self.tokens.start_session(user)

    async def refresh(self, refresh_token: str) -> TokenPair:
        async with _counted(TOKEN_REFRESHES):
            return await self._refresh(refresh_token)

    async def _refresh(self, refresh_token: str) -> TokenPair:
        tokens = self.tokens
        claims = tokens.decode_refresh(refresh_token)
        user = await self.session.get(User, int(claims["sub"]))
        if (
            user is None
            or user.status == UserStatus.DELETED
            or await tokens.session_revoked(claims)
        ):
            await tokens.end_session(claims)
            raise Unauthorized("session revoked: log in again")
        self._ensure_may_log_in(user)
        outcome, pair = await tokens.rotate(claims, user)
        if outcome is Rotation.REUSED:
            await record_refusal(
                self.sessionmaker,
                audit_entry(
                    "refresh_token_reused",
                    target_user_id=user.id,
                    ip=self.ip,
                    details={"family": claims["fam"]},
                ),
            )
            raise RefreshTokenReused(
                "refresh token was already used: the session is revoked, log in again"
            )
        if outcome is Rotation.UNKNOWN:
            raise Unauthorized("refresh token revoked or expired: log in again")
        return pair

    async def logout(self, principal: Principal, refresh_token: str) -> None:
        claims = self.tokens.decode_refresh(refresh_token)
        if int(claims["sub"]) != principal.user_id:
            raise Forbidden("this refresh token belongs to another account")
        await self.tokens.end_session(claims)
        await self.tokens.revoke_access_token(principal.jti)
