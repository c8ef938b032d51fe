"""``/api/auth``: registration, verification, login, sessions and passwords."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Request

from auth_service.api.deps import AuthServiceDep, body_openapi, read_body_with_document
from auth_service.models import UserStatus
from auth_service.schemas import (
    ChangePasswordRequest,
    ChangePasswordResponse,
    ForgotPasswordRequest,
    LoginRequest,
    MessageResponse,
    ReapplyRequest,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    ResendVerificationRequest,
    ResetPasswordRequest,
    TokenResponse,
    UserOut,
    VerifyEmailRequest,
    VerifyEmailResponse,
)
from auth_service.service import AuthService
from auth_service.tokens import TokenPair
from ticketing_common.app import error_responses
from ticketing_common.security import CurrentUser

router = APIRouter(prefix="/api/auth", tags=["auth"])

UserIdPath = Annotated[int, Path(gt=0, lt=2**63)]


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
    )


@router.post(
    "/register",
    status_code=201,
    response_model=RegisterResponse,
    openapi_extra=body_openapi(RegisterRequest, document_required=True),
    responses=error_responses(409),
)
async def register(request: Request, auth: AuthServiceDep) -> RegisterResponse:
    """JSON ``{email, password, role}``, the same as form fields (urlencoded), or multipart
    with a ``document`` file (needed for organizers)."""
    body = await read_body_with_document(request, RegisterRequest)
    user = await auth.register(body.fields, body.document)
    message = "registered; we emailed you a verification code"
    if user.status == UserStatus.PENDING:
        message += "; your organizer account awaits admin approval"
    return RegisterResponse(message=message, user=UserOut.model_validate(user))


@router.post(
    "/verify-email",
    response_model=VerifyEmailResponse,
    response_model_exclude_none=True,
    responses=error_responses(409, 429),
)
async def verify_email(body: VerifyEmailRequest, auth: AuthServiceDep) -> VerifyEmailResponse:
    """``{email, code}`` with the emailed 6-digit code or the emailed link's 64-hex token
    (``{email, token}`` too); signs in unless the account still awaits approval."""
    outcome = await auth.verify_email(body)
    if outcome.tokens is None:
        return VerifyEmailResponse(message=outcome.message)
    return VerifyEmailResponse(message=outcome.message, **_tokens(outcome.tokens).model_dump())


@router.post("/resend-verification", response_model=MessageResponse, responses=error_responses(429))
async def resend_verification(
    body: ResendVerificationRequest, auth: AuthServiceDep, after: BackgroundTasks
) -> MessageResponse:
    """Answered before the account is even looked up: the time says nothing about it."""

    async def resend(service: AuthService) -> None:
        await service.resend_verification(body.email)

    after.add_task(auth.after_the_answer, resend)
    return MessageResponse(
        message="if the account exists and is not verified yet, a new code has been sent"
    )


@router.post("/login", response_model=TokenResponse, responses=error_responses(401, 403, 429))
async def login(body: LoginRequest, auth: AuthServiceDep) -> TokenResponse:
    return _tokens(await auth.login(body))


@router.post("/refresh-token", response_model=TokenResponse, responses=error_responses(401))
async def refresh_token(body: RefreshRequest, auth: AuthServiceDep) -> TokenResponse:
    return _tokens(await auth.refresh(body.refresh_token))


@router.post("/logout", status_code=204)
async def logout(body: RefreshRequest, principal: CurrentUser, auth: AuthServiceDep) -> None:
    await auth.logout(principal, body.refresh_token)


@router.post("/forgot-password", response_model=MessageResponse, responses=error_responses(429))
async def forgot_password(
    body: ForgotPasswordRequest, auth: AuthServiceDep, after: BackgroundTasks
) -> MessageResponse:
    """Answered before the account is even looked up: the time says nothing about it."""

    async def send_code(service: AuthService) -> None:
        await service.forgot_password(body.email)

    after.add_task(auth.after_the_answer, send_code)
    return MessageResponse(
        message="if an account exists for this address, we emailed it a password reset code"
    )


@router.post("/reset-password", response_model=MessageResponse, responses=error_responses(429))
async def reset_password(body: ResetPasswordRequest, auth: AuthServiceDep) -> MessageResponse:
    await auth.reset_password(body)
    return MessageResponse(message="password reset; log in with the new password")


@router.post(
    "/reapply",
    response_model=MessageResponse,
    openapi_extra=body_openapi(ReapplyRequest),
    responses=error_responses(401, 409, 429),
)
async def reapply(request: Request, auth: AuthServiceDep) -> MessageResponse:
    """``{email, password}`` as JSON or form fields, or multipart with a new ``document``
    as well. A wrong password and an unknown email get the login's 401."""
    body = await read_body_with_document(request, ReapplyRequest)
    return MessageResponse(message=await auth.reapply(body.fields, body.document))


@router.get("/me", response_model=UserOut)
async def me(principal: CurrentUser, auth: AuthServiceDep) -> UserOut:
    """The bare user object, as the original."""
    return UserOut.model_validate(await auth.current_user(principal))


@router.post(
    "/change-password", response_model=ChangePasswordResponse, responses=error_responses(429)
)
async def change_password(
    body: ChangePasswordRequest, principal: CurrentUser, auth: AuthServiceDep
) -> ChangePasswordResponse:
    pair = await auth.change_password(principal, body)
    return ChangePasswordResponse(
        message="password changed; other sessions are signed out",
        **_tokens(pair).model_dump(),
    )


@router.get("/users/{user_id}", response_model=UserOut, responses=error_responses(403))
async def get_user(user_id: UserIdPath, principal: CurrentUser, auth: AuthServiceDep) -> UserOut:
    """Your own account, or any account for an admin (the bare user object)."""
    return UserOut.model_validate(await auth.user_for(principal, user_id))
