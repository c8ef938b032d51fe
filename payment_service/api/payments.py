"""``/api/payments``: initialize, verify, and the provider's callback."""

from __future__ import annotations

from fastapi import APIRouter, Request

from payment_service import initialize, service
from payment_service.api.deps import HttpDep, PgDep, ProviderDep, SettingsDep
from payment_service.schemas import (
    CallbackAck,
    CheckoutResponse,
    InitializePaymentRequest,
    PaymentOut,
    PaymentResponse,
)
from payment_service.webhooks import SIGNATURE_HEADER
from ticketing_common.db import SessionDep
from ticketing_common.security import CurrentUser

router = APIRouter(prefix="/api/payments", tags=["payments"])


@router.post("/initialize", response_model=CheckoutResponse)
async def initialize_payment(
    body: InitializePaymentRequest,
    principal: CurrentUser,
    pg: PgDep,
    session: SessionDep,
    http: HttpDep,
    provider: ProviderDep,
    settings: SettingsDep,
) -> CheckoutResponse:
    """Open the provider's checkout for the caller's pending booking (or return the open one)."""
    return await initialize.initialize_payment(
        pg,
        session,
        http=http,
        provider=provider,
        settings=settings,
        principal=principal,
        request=body,
    )


@router.get("/verify/{tx_ref}", response_model=PaymentResponse)
async def verify_payment(
    tx_ref: str, principal: CurrentUser, session: SessionDep, provider: ProviderDep
) -> PaymentResponse:
    """Ask the provider about the caller's payment and record the outcome."""
    payment = await service.verify_payment(
        session, provider=provider, principal=principal, tx_ref=tx_ref
    )
    return PaymentResponse(
        message=service.status_message(payment), payment=PaymentOut.model_validate(payment)
    )


@router.post("/callback", response_model=CallbackAck)
async def provider_callback(
    request: Request, session: SessionDep, provider: ProviderDep, settings: SettingsDep
) -> CallbackAck:
    """The provider's webhook, signed with ``PAYMENT_WEBHOOK_SECRET``; safe to repeat."""
    payment = await service.handle_callback(
        session,
        provider=provider,
        settings=settings,
        body=await request.body(),
        signature=request.headers.get(SIGNATURE_HEADER),
    )
    return CallbackAck(message=service.status_message(payment), status=payment.status)
