"""What every part of auth_service's rules shares: the request's session and the app's
pieces, codes, and checking a password (:class:`AuthContext`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Self

from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.audit import (
    audit_entry,
    record_refusal,
)
from auth_service.codes import code_matches, hash_code, new_code
from auth_service.errors import (
    CodeAttemptsExhausted,
    EmailNotVerified,
    InvalidCode,
    InvalidCredentials,
    OrganizerPending,
    OrganizerRejected,
)
from auth_service.models import CodePurpose, User, UserStatus, VerificationCode
from auth_service.passwords import PasswordHasher
from auth_service.settings import AuthSettings
from auth_service.throttle import (
    LoginThrottle,
    count_code_attempt,
    forget_code_attempts,
)
from auth_service.tokens import TokenPair, TokenStore
from ticketing_common.db import utcnow
from ticketing_common.errors import DomainError, Unauthorized
from ticketing_common.security import Principal

logger = logging.getLogger("auth_service.context")


@contextlib.asynccontextmanager
async def _counted(counter: Counter) -> AsyncIterator[None]:
    """Count one attempt under ``success`` or the refusal's error code."""
    outcome = "error"
    try:
        yield
        outcome = "success"
    except DomainError as exc:
        outcome = exc.code
        raise
    finally:
        counter.labels(outcome).inc()


@dataclass(frozen=True, slots=True)
class VerifyOutcome:
    message: str
    tokens: TokenPair | None


@dataclass(frozen=True, slots=True)
class AdminOutcome:
    message: str
    user: User


@dataclass
class AuthContext:
    """The request's session and the app's pieces; the rules are its subclasses'
    (:mod:`.accounts`, :mod:`.sessions`, :mod:`.administration`), joined in
    :class:`auth_service.service.AuthService`."""

    session: AsyncSession
    settings: AuthSettings
    redis: Any
    passwords: PasswordHasher
    sessionmaker: async_sessionmaker[AsyncSession]
    ip: str | None = None

    @property
    def tokens(self) -> TokenStore:
        return TokenStore(self.redis, self.settings)

    @property
    def throttle(self) -> LoginThrottle:
        return LoginThrottle(self.redis, self.settings)

    async def after_the_answer(self, work: Callable[[Self], Awaitable[None]]) -> None:
        """Run ``work`` in a transaction of its own, once the answer has left.

        For requests that answer the same whether or not an account exists (forgot-password,
        resend-verification): what only an account costs (a code, an outbox message, an
        audit line, a commit) is then never part of the answer's time, so timing tells
        nothing either. A crash in between loses one email, which the user asks for again.
        """
        try:
            async with self.sessionmaker() as session, session.begin():
                await work(replace(self, session=session))
        except Exception:
            logger.exception("deferred auth work failed")

    # --- codes --------------------------------------------------------------------------

    async def _issue_code(
        self, user: User, purpose: CodePurpose, ttl: timedelta
    ) -> tuple[str, Any]:
        """A fresh code for ``purpose``; any earlier one stops working."""
        now = utcnow()
        await self.session.execute(
            update(VerificationCode)
            .where(
                VerificationCode.user_id == user.id,
                VerificationCode.purpose == purpose,
                VerificationCode.consumed_at.is_(None),
            )
            .values(consumed_at=now)
        )
        code = new_code()
        expires_at = now + ttl
        self.session.add(
            VerificationCode(
                user_id=user.id,
                purpose=purpose,
                code_hash=hash_code(self.settings, user.id, purpose, code),
                expires_at=expires_at,
            )
        )
        return code, expires_at

    async def _consume_code(
        self, email: str, user: User | None, purpose: CodePurpose, code: str
    ) -> User:
        """Use up the user's live code if ``code`` matches; returns the user.

        Every guess counts, per address, with or without an account behind it: a missing
        account answers exactly as a wrong code does, and runs out of guesses at the same
        moment.
        """
        what = "verification" if purpose == CodePurpose.EMAIL_VERIFICATION else "reset"
        ttl = (
            self.settings.verification_code_ttl_seconds
            if purpose == CodePurpose.EMAIL_VERIFICATION
            else self.settings.reset_code_ttl_seconds
        )
        attempts = await count_code_attempt(self.redis, purpose, email, ttl)
        if attempts > self.settings.code_max_attempts:
            raise CodeAttemptsExhausted(f"too many wrong {what} codes: request a new one")
        now = utcnow()
        stored = None
        if user is not None:
            stored = await self.session.scalar(
                select(VerificationCode)
                .where(
                    VerificationCode.user_id == user.id,
                    VerificationCode.purpose == purpose,
                    VerificationCode.consumed_at.is_(None),
                    VerificationCode.expires_at > now,
                )
                .order_by(VerificationCode.id.desc())
                .limit(1)
                .with_for_update()
            )
        if (
            user is None
            or stored is None
            or not code_matches(self.settings, user.id, purpose, code, stored.code_hash)
        ):
            if purpose == CodePurpose.PASSWORD_RESET:
                await record_refusal(
                    self.sessionmaker,
                    audit_entry(
                        "password_reset_failed",
                        target_user_id=user.id if user else None,
                        ip=self.ip,
                        details={"email": email, "attempt": attempts},
                    ),
                )
            raise InvalidCode(f"invalid or expired {what} code")
        stored.consumed_at = now
        await forget_code_attempts(self.redis, purpose, email)  # as fresh as a stranger's
        return user

    async def _last_code_matches(self, user: User, purpose: CodePurpose, code: str) -> bool:
        """Whether ``code`` is the last one issued for ``purpose`` (used up or not)."""
        last = await self.session.scalar(
            select(VerificationCode.code_hash)
            .where(VerificationCode.user_id == user.id, VerificationCode.purpose == purpose)
            .order_by(VerificationCode.id.desc())
            .limit(1)
        )
        return last is not None and code_matches(self.settings, user.id, purpose, code, last)

    # --- checking a password (login, reapply, change-password) -----------------------

    async def _authenticate(self, email: str, password: str, failure_action: str) -> User:
        """The live account behind ``email`` if ``password`` is its password.

        Throttled by account and address before any hashing; a missing account costs a
        hash too and gets the same 401 as a wrong password.
        """
        await self.throttle.ensure_may_try(email, self.ip)
        user = await self._live_user_by_email(email)
        if user is None:
            await self.passwords.verify_nobody(password)
        if user is None or not await self.passwords.verify(user.password_hash, password):
            await self._refuse_password(email, user, failure_action)
            raise InvalidCredentials("invalid credentials")
        await self.throttle.record_success(email, self.ip)
        return user

    async def _refuse_password(self, email: str, user: User | None, action: str) -> None:
        failure = await self.throttle.record_failure(email, self.ip)
        details: dict[str, Any] = {
            "email": email,
            "failures": failure.from_address,
            "account_failures": failure.for_account,
        }
        if failure.wait_seconds:
            action = "login_throttled"
            details["wait_seconds"] = failure.wait_seconds
        await record_refusal(
            self.sessionmaker,
            audit_entry(
                action, target_user_id=user.id if user else None, ip=self.ip, details=details
            ),
        )

    @staticmethod
    def _ensure_may_log_in(user: User) -> None:
        """The original's texts, exactly: its front end compares them."""
        if user.status == UserStatus.REJECTED:
            raise OrganizerRejected("account rejected")
        if user.status == UserStatus.PENDING:
            raise OrganizerPending("account pending approval")
        if not user.is_verified:
            raise EmailNotVerified("email not verified")

    # --- finding users ------------------------------------------------------------------

    async def _current_user(self, principal: Principal) -> User:
        user = await self.session.get(User, principal.user_id)
        if user is None or user.status == UserStatus.DELETED:
            raise Unauthorized("this account no longer exists")
        return user

    async def _live_user_by_email(self, email: str) -> User | None:
        result: User | None = await self.session.scalar(
            select(User).where(User.email == email, User.deleted_at.is_(None))
        )
        return result
