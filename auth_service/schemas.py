"""Request and response bodies of ``/api/auth`` (the original's shapes, snake_case)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from auth_service.models import AuditLog

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
PASSWORD_POLICY = (
    f"password must be {PASSWORD_MIN_LENGTH}-{PASSWORD_MAX_LENGTH} characters long "
    "and contain at least one letter and one digit"
)


def normalise_email(value: str) -> str:
    return value.strip().lower()


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database."""
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "must not contain NUL characters")
    return value


def _password_policy(value: str) -> str:
    if (
        not PASSWORD_MIN_LENGTH <= len(value) <= PASSWORD_MAX_LENGTH
        or not re.search(r"[^\W\d_]", value)
        or not re.search(r"\d", value)
    ):
        raise PydanticCustomError("password_policy", PASSWORD_POLICY)
    return value


#: an address as typed at registration: validated, then lower-cased
NewEmail = Annotated[EmailStr, AfterValidator(normalise_email)]
#: an address used to look an account up: any string, compared lower-cased
LookupEmail = Annotated[
    str,
    StringConstraints(min_length=3, max_length=320),
    AfterValidator(_no_nul),
    AfterValidator(normalise_email),
]
NewPassword = Annotated[str, AfterValidator(_password_policy)]
#: a password presented for checking; capped so nobody makes us hash megabytes
GivenPassword = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Code = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
    AfterValidator(_no_nul),
]
#: free text stored as given (a rejection reason)
Note = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=500), AfterValidator(_no_nul)
]
UserId = Annotated[int, Field(gt=0, lt=2**63)]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RegisterRequest(Body):
    email: NewEmail
    password: NewPassword
    role: Literal["user", "organizer"] = "user"

    @model_validator(mode="after")
    def _password_is_not_the_email(self) -> RegisterRequest:
        if self.password.lower() == self.email:
            raise PydanticCustomError("password_policy", "password must not be the email address")
        return self


class VerifyEmailRequest(Body):
    """The emailed 6-digit ``code``, or the 64-hex token of the emailed link (which the
    original's front end sends as ``code`` too, or here as ``token``)."""

    email: LookupEmail
    code: Code | None = None
    token: Code | None = None

    @model_validator(mode="after")
    def _code_or_token(self) -> VerifyEmailRequest:
        if self.code is None and self.token is None:
            raise PydanticCustomError(
                "code_required", "send the emailed code as code (or the link's token as token)"
            )
        return self

    @property
    def given_code(self) -> str:
        given = self.code if self.code is not None else self.token
        assert given is not None
        return given


class ResendVerificationRequest(Body):
    email: LookupEmail


class LoginRequest(Body):
    email: LookupEmail
    password: GivenPassword


class RefreshRequest(Body):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class ForgotPasswordRequest(Body):
    email: LookupEmail


class ResetPasswordRequest(Body):
    email: LookupEmail
    code: Code
    new_password: NewPassword


class ReapplyRequest(Body):
    email: LookupEmail
    #: the account's password: nobody else may reopen an application or replace its document
    #: (the original asked for the email alone)
    password: GivenPassword

    @model_validator(mode="before")
    @classmethod
    def _password_is_required(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("password"):
            raise PydanticCustomError(
                "password_required",
                "reapplying needs the account's password: send email and password "
                "(and a new document if you like)",
            )
        return data


class ChangePasswordRequest(Body):
    old_password: GivenPassword
    new_password: NewPassword


class UserIdRequest(Body):
    user_id: UserId


class PromoteRequest(UserIdRequest):
    """``{user_id}`` makes an approved organizer, as the original; an admin only when
    asked for by name (``role: "admin"``)."""

    role: Literal["organizer", "admin"] = "organizer"


class RejectRequest(UserIdRequest):
    reason: Note | None = None


class UserOut(BaseModel):
    """A user as the user and other services see it: the original's fields (``id`` to
    ``document_path``) and the port's ``status``."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    updated_at: datetime
    email: str
    role: str
    is_verified: bool
    #: ``approved``, ``pending`` or ``rejected`` (the original's name for ``status``)
    approval_status: str
    #: where an admin reads the organizer's document; ``""`` when there is none
    document_path: str
    status: str


class AdminUserOut(UserOut):
    """A user as an admin sees it."""

    verified_at: datetime | None
    last_login_at: datetime | None
    has_document: bool
    rejection_reason: str | None


class MessageResponse(BaseModel):
    message: str


class RegisterResponse(BaseModel):
    message: str
    user: UserOut


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type
    expires_in: int


class VerifyEmailResponse(BaseModel):
    """Tokens only when the account may log in (not for an organizer still pending)."""

    message: str
    access_token: str | None = None
    refresh_token: str | None = None
    token_type: str | None = None
    expires_in: int | None = None


class ChangePasswordResponse(TokenResponse):
    """Every other session is signed out; these tokens keep this one going."""

    message: str


class AdminActionResponse(BaseModel):
    message: str
    user: AdminUserOut


class AuditLogOut(BaseModel):
    """An audit entry: the original's fields (``id`` to ``ip_address``, ``details`` as
    text) and the port's, with the structured details as ``data``."""

    id: int
    created_at: datetime
    #: who acted, else whom the entry is about; 0 for neither (a failed login for an
    #: unknown address), as the original's unset id
    user_id: int
    action: str
    #: ``data`` (and the entry's target) as compact JSON text
    details: str
    ip_address: str
    service: str
    actor_user_id: int | None
    target_type: str | None
    target_id: str | None
    ip: str | None
    data: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditLog) -> AuditLogOut:
        about_user = entry.target_type == "user" and (entry.target_id or "").isdigit()
        subject = int(entry.target_id) if about_user and entry.target_id else None
        target = (
            {"target_type": entry.target_type, "target_id": entry.target_id}
            if entry.target_type is not None
            else {}
        )
        return cls(
            id=entry.id,
            created_at=entry.created_at,
            user_id=entry.actor_user_id or subject or 0,
            action=entry.action,
            details=json.dumps(
                {**target, **entry.details},
                separators=(",", ":"),
                sort_keys=True,
                ensure_ascii=False,
                default=str,
            ),
            ip_address=entry.ip or "",
            service=entry.service,
            actor_user_id=entry.actor_user_id,
            target_type=entry.target_type,
            target_id=entry.target_id,
            ip=entry.ip,
            data=entry.details,
        )
