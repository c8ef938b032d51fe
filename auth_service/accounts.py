"""Accounts: registration and email verification, passwords, organizers' reapplying,
and reading users."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from sqlalchemy.exc import IntegrityError

from auth_service.audit import (
    REAPPLY_ORGANIZER,
    audit_entry,
)
from auth_service.codes import verification_link
from auth_service.context import AuthContext, VerifyOutcome
from auth_service.documents import Document, discard_document, remove_document, store_document
from auth_service.errors import (
    EmailTaken,
    InvalidDocument,
    NotAnOrganizer,
    WeakPassword,
    WrongPassword,
)
from auth_service.models import CodePurpose, User, UserStatus
from auth_service.schemas import (
    ChangePasswordRequest,
    ReapplyRequest,
    RegisterRequest,
    ResetPasswordRequest,
    VerifyEmailRequest,
)
from auth_service.throttle import allow_code_email
from auth_service.tokens import TokenPair
from ticketing_common.db import on_commit, utcnow
from ticketing_common.errors import Conflict, Forbidden, NotFound
from ticketing_common.internal.errors import UserNotFound
from ticketing_common.messaging import publish
from ticketing_common.messaging.contracts import EmailVerification, PasswordReset
from ticketing_common.security import Principal, Role

logger = logging.getLogger("auth_service.accounts")


class Accounts(AuthContext):
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
