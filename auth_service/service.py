"""Accounts, sessions and administration: the rules of auth_service.

Routes build an :class:`AuthService` per request and call one method. The request's
session commits after the route returns; events (verification and reset emails) go
through the outbox in that same transaction. Redis holds what every replica must see at
once: refresh-token families, revocations and throttling counters.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import Any

from prometheus_client import Counter
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Select

from auth_service.audit import (
    APPROVE_ORGANIZER,
    DELETE_USER,
    REAPPLY_ORGANIZER,
    REJECT_ORGANIZER,
    action_name,
    audit_entry,
    record_refusal,
)
from auth_service.codes import code_matches, hash_code, new_code, verification_link
from auth_service.documents import Document, discard_document, remove_document, store_document
from auth_service.errors import (
    CodeAttemptsExhausted,
    EmailNotVerified,
    EmailTaken,
    InvalidCode,
    InvalidCredentials,
    InvalidDocument,
    NotAnOrganizer,
    OrganizerPending,
    OrganizerRejected,
    RefreshTokenReused,
    WeakPassword,
    WrongPassword,
)
from auth_service.metrics import LOGINS, TOKEN_REFRESHES
from auth_service.models import AuditLog, CodePurpose, User, UserStatus, VerificationCode
from auth_service.passwords import PasswordHasher, PasswordHashingBusy
from auth_service.schemas import (
    ChangePasswordRequest,
    LoginRequest,
    PromoteRequest,
    ReapplyRequest,
    RegisterRequest,
    RejectRequest,
    ResetPasswordRequest,
    VerifyEmailRequest,
)
from auth_service.settings import AuthSettings
from auth_service.throttle import (
    LoginThrottle,
    allow_code_email,
    count_code_attempt,
    forget_code_attempts,
)
from auth_service.tokens import Rotation, TokenPair, TokenStore
from ticketing_common.db import on_commit, utcnow
from ticketing_common.errors import Conflict, DomainError, Forbidden, NotFound, Unauthorized
from ticketing_common.internal.errors import UserNotFound
from ticketing_common.messaging import publish
from ticketing_common.messaging.contracts import EmailVerification, PasswordReset
from ticketing_common.pagination import Page
from ticketing_common.security import Principal, Role

logger = logging.getLogger(__name__)


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
class AuthService:
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

    async def after_the_answer(self, work: Callable[[AuthService], Awaitable[None]]) -> None:
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

    # --- registration and email verification -----------------------------------------

    async def register(self, body: RegisterRequest, document: Document | None) -> User:
        if await self._live_user_by_email(body.email) is not None:
            raise EmailTaken("an account with this email already exists")
        organizer = Role(body.role) is Role.ORGANIZER
        if organizer and document is None:
            raise InvalidDocument("organizer registration needs a document (multipart field)")
        user = User(
            email=body.email,
            password_hash=await self.passwords.hash(body.password),
            role=body.role,
            status=UserStatus.PENDING if organizer else UserStatus.ACTIVE,
            is_verified=False,
        )
        if organizer and document is not None:
            user.document_name = await store_document(document, self.settings)
            user.document_content_type = document.content_type
        try:
            self.session.add(user)
            await self.session.flush()
        except IntegrityError as exc:  # a concurrent registration won the race
            if user.document_name:
                await discard_document(user.document_name, self.settings)
            raise EmailTaken("an account with this email already exists") from exc
        await self._send_verification_code(user)
        self.session.add(
            audit_entry(
                "user_registered",
                actor_user_id=user.id,
                target_user_id=user.id,
                ip=self.ip,
                details={"role": user.role},
            )
        )
        return user

    async def verify_email(self, body: VerifyEmailRequest) -> VerifyOutcome:
        """A wrong code, a missing account and a verified one (unless the code is the one
        that verified it) all get the same 400, so the answer enumerates nothing."""
        purpose = CodePurpose.EMAIL_VERIFICATION
        user = await self._live_user_by_email(body.email)
        if user is not None and user.is_verified:
            if await self._last_code_matches(user, purpose, body.given_code):
                return VerifyOutcome("email already verified; log in to continue", None)
            user = None  # nothing left to verify: answered like any wrong code
        user = await self._consume_code(body.email, user, purpose, body.given_code)
        user.is_verified = True
        user.verified_at = utcnow()
        self.session.add(audit_entry("email_verified", target_user_id=user.id, ip=self.ip))
        if user.status == UserStatus.PENDING:
            return VerifyOutcome(
                "email verified; your organizer account is awaiting admin approval", None
            )
        if user.status != UserStatus.ACTIVE:
            return VerifyOutcome("email verified", None)
        user.last_login_at = utcnow()
        return VerifyOutcome("email verified", await self.tokens.start_session(user))

    async def resend_verification(self, email: str) -> None:
        """Best run :meth:`after_the_answer`: the caller answers the same either way."""
        purpose = CodePurpose.EMAIL_VERIFICATION
        if not await allow_code_email(self.redis, self.settings, purpose, email):
            logger.info("verification email withheld: too many for this address")
            return
        user = await self._live_user_by_email(email)
        if user is not None and not user.is_verified:
            await self._issue_verification_code(user)

    async def _send_verification_code(self, user: User) -> None:
        purpose = CodePurpose.EMAIL_VERIFICATION
        if not await allow_code_email(self.redis, self.settings, purpose, user.email):
            logger.info("verification email withheld: too many for this address")
            return
        await self._issue_verification_code(user)

    async def _issue_verification_code(self, user: User) -> None:
        purpose = CodePurpose.EMAIL_VERIFICATION
        ttl = timedelta(seconds=self.settings.verification_code_ttl_seconds)
        code, expires_at = await self._issue_code(user, purpose, ttl)
        payload = EmailVerification(
            user_id=user.id,
            email=user.email,
            code=code,
            expires_at=expires_at,
            verify_url=verification_link(self.settings, user.id, user.email, code),
        )
        await publish(self.session, "email_verification", payload)

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

    # --- passwords ----------------------------------------------------------------------

    async def forgot_password(self, email: str) -> None:
        """Email a reset code if the account exists. Best run :meth:`after_the_answer`:
        the caller answers the same either way."""
        purpose = CodePurpose.PASSWORD_RESET
        if not await allow_code_email(self.redis, self.settings, purpose, email):
            return
        user = await self._live_user_by_email(email)
        if user is None:
            return
        ttl = timedelta(seconds=self.settings.reset_code_ttl_seconds)
        code, expires_at = await self._issue_code(user, purpose, ttl)
        payload = PasswordReset(user_id=user.id, email=user.email, code=code, expires_at=expires_at)
        await publish(self.session, "password_reset", payload)
        self.session.add(
            audit_entry("password_reset_requested", target_user_id=user.id, ip=self.ip)
        )

    async def reset_password(self, body: ResetPasswordRequest) -> None:
        user = await self._consume_code(
            body.email,
            await self._live_user_by_email(body.email),
            CodePurpose.PASSWORD_RESET,
            body.code,
        )
        user.password_hash = await self.passwords.hash(body.new_password)
        if not user.is_verified:  # the code reached this address: it is the user's
            user.is_verified = True
            user.verified_at = utcnow()
        await self.tokens.revoke_user_tokens(user.id, sessions=True)
        await self.throttle.clear(user.email)
        self.session.add(
            audit_entry("password_reset", actor_user_id=user.id, target_user_id=user.id, ip=self.ip)
        )

    async def change_password(self, principal: Principal, body: ChangePasswordRequest) -> TokenPair:
        """Set a new password, sign every other session out, and keep this one going."""
        user = await self._current_user(principal)
        await self.throttle.ensure_may_try(user.email, self.ip)
        if not await self.passwords.verify(user.password_hash, body.old_password):
            await self._refuse_password(user.email, user, "password_change_failed")
            raise WrongPassword("current password is incorrect")
        if body.new_password == body.old_password:
            raise WeakPassword("new password must differ from the current one")
        user.password_hash = await self.passwords.hash(body.new_password)
        await self.tokens.revoke_user_tokens(user.id, sessions=True)
        self.session.add(
            audit_entry(
                "password_changed", actor_user_id=user.id, target_user_id=user.id, ip=self.ip
            )
        )
        return await self.tokens.start_session(user)

    # --- organizers -------------------------------------------------------------------

    async def reapply(self, body: ReapplyRequest, document: Document | None) -> str:
        """A rejected organizer asks again, proving it is them with the password first:
        nothing changes, and nothing is told about the account, for anyone else."""
        user = await self._authenticate(body.email, body.password, "reapply_failed")
        if user.role != Role.ORGANIZER:
            raise NotAnOrganizer("only an organizer account can reapply")
        if user.status == UserStatus.PENDING:
            return "your organizer application is already awaiting review"
        if user.status != UserStatus.REJECTED:
            raise Conflict("this organizer account is already approved")
        user.status = UserStatus.PENDING
        user.rejection_reason = None
        if document is not None:
            replaced = user.document_name
            user.document_name = await store_document(document, self.settings)
            user.document_content_type = document.content_type
            if replaced:
                on_commit(self.session, partial(remove_document, replaced, self.settings))
        self.session.add(
            audit_entry(
                REAPPLY_ORGANIZER, actor_user_id=user.id, target_user_id=user.id, ip=self.ip
            )
        )
        return "your organizer application is pending review again"

    # --- reading users ----------------------------------------------------------------

    async def current_user(self, principal: Principal) -> User:
        return await self._current_user(principal)

    async def user_for(self, principal: Principal, user_id: int) -> User:
        if principal.user_id != user_id and not principal.is_admin:
            raise Forbidden("you may only view your own account")
        user = await self.session.get(User, user_id)
        if user is None or user.status == UserStatus.DELETED:
            raise NotFound("user not found")
        return user

    async def user_for_service(self, user_id: int) -> User:
        """Other services' lookup: deleted accounts too (status ``deleted``)."""
        user = await self.session.get(User, user_id)
        if user is None:
            raise UserNotFound()
        return user

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

    # --- administration -----------------------------------------------------------------

    async def promote(self, admin: Principal, body: PromoteRequest) -> AdminOutcome:
        """Make the user an approved organizer (the original's promote), or an admin when
        ``role`` says so. The original's message either way, also when nothing changes."""
        message = f"User promoted to {body.role.capitalize()}"
        user = await self._target(body.user_id)
        if user.role == body.role and user.status == UserStatus.ACTIVE:
            return AdminOutcome(message, user)
        if user.role == Role.ADMIN:
            raise Conflict("an admin cannot be demoted")
        previous = {"from": user.role, "status": user.status}
        user.role = body.role
        user.status = UserStatus.ACTIVE
        user.rejection_reason = None
        await self.tokens.revoke_user_tokens(user.id, sessions=False)
        self._audit_admin(admin, "user_promoted", user, {**previous, "to": body.role})
        return AdminOutcome(message, user)

    async def approve(self, admin: Principal, user_id: int) -> AdminOutcome:
        user = await self._target_organizer(user_id)
        if user.status == UserStatus.ACTIVE:
            return AdminOutcome("organizer is already approved", user)
        user.status = UserStatus.ACTIVE
        user.rejection_reason = None
        self._audit_admin(admin, APPROVE_ORGANIZER, user)
        return AdminOutcome("organizer approved", user)

    async def reject(self, admin: Principal, body: RejectRequest) -> AdminOutcome:
        user = await self._target_organizer(body.user_id)
        if user.status == UserStatus.REJECTED:
            return AdminOutcome("organizer is already rejected", user)
        if user.status == UserStatus.ACTIVE:
            raise Conflict("organizer is already approved")
        user.status = UserStatus.REJECTED
        user.rejection_reason = body.reason
        self._audit_admin(admin, REJECT_ORGANIZER, user, {"reason": body.reason})
        return AdminOutcome("organizer rejected", user)

    async def delete_user(self, admin: Principal, user_id: int) -> None:
        """Soft delete: the row stays for history, the address becomes free, tokens die."""
        if user_id == admin.user_id:
            raise Conflict("you cannot delete your own account")
        user = await self._target(user_id)
        user.status = UserStatus.DELETED
        user.deleted_at = utcnow()
        await self.tokens.revoke_user_tokens(user.id, sessions=True)
        self._audit_admin(admin, DELETE_USER, user, {"email": user.email, "role": user.role})

    async def pending_organizers(self, page: Page) -> tuple[list[User], int]:
        query = select(User).where(
            User.role == Role.ORGANIZER,
            User.status == UserStatus.PENDING,
            User.deleted_at.is_(None),
        )
        return await self._page(query.order_by(User.id), page)

    async def users(
        self, page: Page, role: Role | None = None, status: UserStatus | None = None
    ) -> tuple[list[User], int]:
        query = select(User)
        if status is None:
            query = query.where(User.deleted_at.is_(None))
        else:
            query = query.where(User.status == status)
        if role is not None:
            query = query.where(User.role == role)
        return await self._page(query.order_by(User.id), page)

    async def audit_logs(
        self,
        page: Page,
        action: str | None = None,
        user_id: int | None = None,
        service: str | None = None,
    ) -> tuple[list[AuditLog], int]:
        query = select(AuditLog)
        if action is not None:
            query = query.where(AuditLog.action == action_name(action))
        if service is not None:
            query = query.where(AuditLog.service == service)
        if user_id is not None:
            query = query.where(
                or_(
                    AuditLog.actor_user_id == user_id,
                    and_(AuditLog.target_type == "user", AuditLog.target_id == str(user_id)),
                )
            )
        return await self._page(query.order_by(AuditLog.id.desc()), page)

    async def organizer_document(self, user_id: int) -> User:
        user = await self._target_organizer(user_id)
        if user.document_name is None:
            raise NotFound("this organizer has no document")
        return user

    async def _page(self, query: Select[Any], page: Page) -> tuple[list[Any], int]:
        total = await self.session.scalar(select(func.count()).select_from(query.subquery()))
        rows = await self.session.scalars(query.limit(page.limit).offset(page.offset))
        return list(rows), int(total or 0)

    async def _target(self, user_id: int) -> User:
        user = await self.session.get(User, user_id, with_for_update=True)
        if user is None or user.status == UserStatus.DELETED:
            raise NotFound("user not found")
        return user

    async def _target_organizer(self, user_id: int) -> User:
        user = await self._target(user_id)
        if user.role != Role.ORGANIZER:
            raise Conflict("user is not an organizer")
        return user

    def _audit_admin(
        self, admin: Principal, action: str, user: User, details: dict[str, Any] | None = None
    ) -> None:
        self.session.add(
            audit_entry(
                action,
                actor_user_id=admin.user_id,
                target_user_id=user.id,
                ip=self.ip,
                details=details,
            )
        )


async def ensure_admin(
    session: AsyncSession, settings: AuthSettings, passwords: PasswordHasher
) -> None:
    """Create the admin from ``ADMIN_EMAIL``/``ADMIN_PASSWORD`` unless it exists already.

    Safe to run on every start and from several replicas at once (``ON CONFLICT``). An
    existing admin keeps its password (it may have been changed); an existing non-admin
    account with that address is left alone and reported, never silently promoted.
    """
    email = settings.admin_email.strip().lower()
    existing = await session.scalar(
        select(User).where(User.email == email, User.deleted_at.is_(None))
    )
    if existing is not None:
        if existing.role != Role.ADMIN:
            logger.warning("ADMIN_EMAIL belongs to a %s account; no admin seeded", existing.role)
        return
    inserted = await session.scalar(
        pg_insert(User)
        .values(
            email=email,
            password_hash=await passwords.hash(settings.admin_password),
            role=Role.ADMIN,
            status=UserStatus.ACTIVE,
            is_verified=True,
            verified_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[User.email], index_where=User.deleted_at.is_(None))
        .returning(User.id)
    )
    if inserted is not None:
        session.add(audit_entry("admin_seeded", target_user_id=inserted))
        logger.info("admin account seeded", extra={"user_id": inserted})
