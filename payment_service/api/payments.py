"""``/api/payments``: initialize, verify, and the provider's callback."""

from __future__ import annotations

from fastapi import APIRouter, Request

from payment_service import initialize, service, settle
from payment_service.api.deps import ResourcesDep
from payment_service.schemas import (
    CallbackAck,
    CheckoutResponse,
    InitializePaymentRequest,
    PaymentOut,
    PaymentResponse,
)
from payment_service.webhooks import SIGNATURE_HEADER
from ticketing_common.security import CurrentUser

router = APIRouter(prefix="/api/payments", tags=["payments"])


@router.post(
    "/initialize",
    response_model=CheckoutResponse,
    responses={
        403: {"description": "not the booking's owner"},
        404: {"description": "no such booking"},
        409: {
            "description": "not payable (no longer pending, hold expired, already paid), or "
            "the amount is not the booking's total (`amount_mismatch`)"
        },
        502: {"description": "the payment provider refused the checkout"},
    },
)
async def initialize_payment(
    body: InitializePaymentRequest,
    principal: CurrentUser,
    resources: ResourcesDep,
) -> CheckoutResponse:
    """Open the provider's checkout for the caller's pending booking (or return the open one)."""
    return await initialize.initialize_payment(
        resources.pg,
        http=resources.http,
        provider=resources.provider,
        settings=resources.settings,
        principal=principal,
        request=body,
    )


@router.get(
    "/verify/{tx_ref}",
    response_model=PaymentResponse,
    responses={403: {"description": "not the payer or an admin"}},
)
async def verify_payment(
    tx_ref: str, principal: CurrentUser, resources: ResourcesDep
) -> PaymentResponse:
    """Ask the provider about the caller's payment and record the outcome."""
    payment = await settle.verify_payment(
        resources.pg, provider=resources.provider, principal=principal, tx_ref=tx_ref
    )
    return PaymentResponse(
        message=service.status_message(payment["status"]),
        payment=PaymentOut.model_validate(dict(payment)),
    )


@router.post(
    "/callback",
    response_model=CallbackAck,
    responses={
        401: {"description": "missing, wrong or stale signature"},
        404: {"description": "no such payment"},
    },
)
async def provider_callback(request: Request, resources: ResourcesDep) -> CallbackAck:
    """The provider's webhook, signed with ``PAYMENT_WEBHOOK_SECRET``; safe to repeat."""
    payment = await settle.handle_callback(
        resources.pg,
        provider=resources.provider,
        settings=resources.settings,
        body=await request.body(),
        signature=request.headers.get(SIGNATURE_HEADER),
    )
    status: str = payment["status"]
    return CallbackAck(message=service.status_message(status), status=status)
