"""Request and response bodies of ``/api/auth`` (the original's shapes, snake_case)."""

from __future__ import annotations

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
    email: LookupEmail
    code: Code


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
    password: GivenPassword


class ChangePasswordRequest(Body):
    old_password: GivenPassword
    new_password: NewPassword


class UserIdRequest(Body):
    user_id: UserId


class PromoteRequest(UserIdRequest):
    role: Literal["admin", "organizer"] = "admin"


class RejectRequest(UserIdRequest):
    reason: Note | None = None


class UserOut(BaseModel):
    """A user as the user and other services see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    role: str
    status: str
    is_verified: bool
    created_at: datetime


class AdminUserOut(UserOut):
    """A user as an admin sees it."""

    updated_at: datetime
    verified_at: datetime | None
    last_login_at: datetime | None
    has_document: bool
    rejection_reason: str | None


class MessageResponse(BaseModel):
    message: str


class UserResponse(BaseModel):
    user: UserOut


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


class UsersPage(BaseModel):
    users: list[AdminUserOut]


class PendingOrganizersPage(BaseModel):
    organizers: list[AdminUserOut]


class AuditLogOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    action: str
    service: str
    actor_user_id: int | None
    target_type: str | None
    target_id: str | None
    ip: str | None
    details: dict[str, Any]
    created_at: datetime


class AuditLogsPage(BaseModel):
    audit_logs: list[AuditLogOut]
