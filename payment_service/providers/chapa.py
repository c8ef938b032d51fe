"""Chapa (https://developer.chapa.co): transaction initialize, verify and refund over HTTP.

Amounts go out as decimal strings and come back parsed as ``Decimal``, never floats.
Reads are retried on timeouts, connection faults, 429 and 5xx; writes (initialize,
refund) are retried only when the request never reached Chapa (connect errors), because a
lost answer to a write that did arrive would be answered "tx_ref already used".
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from payment_service.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    ProviderError,
    ProviderRefund,
    ProviderRejected,
    ProviderStatus,
    ProviderTransaction,
    ProviderTransactionNotFound,
)
from payment_service.settings import PaymentSettings
from ticketing_common.db import utcnow

logger = logging.getLogger("payment.chapa")

_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_STATUS_MAP = {
    "success": ProviderStatus.SUCCESS,
    "successful": ProviderStatus.SUCCESS,
    "failed": ProviderStatus.FAILED,
    "cancelled": ProviderStatus.FAILED,
    "refunded": ProviderStatus.REFUNDED,
    "reversed": ProviderStatus.REFUNDED,
}
# Chapa accepts only letters, digits, hyphens, underscores, spaces and dots in its
# checkout customization, and at most 16 characters of title.
_CUSTOMIZATION_UNSAFE = re.compile(r"[^A-Za-z0-9 ._-]+")
TITLE_MAX = 16
DESCRIPTION_MAX = 100


def _customization(text: str, limit: int) -> str:
    return _CUSTOMIZATION_UNSAFE.sub(" ", text).strip()[:limit].strip() or "Tickets"


class ChapaProvider:
    name = "chapa"
    #: Chapa refuses a ``tx_ref`` it has seen ("Transaction reference has been used before")
    idempotent_initialize = False

    def __init__(
        self, settings: PaymentSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._retries = settings.chapa_retries
        self._client = httpx.AsyncClient(
            base_url=settings.chapa_base_url.rstrip("/"),
            timeout=httpx.Timeout(settings.chapa_timeout_seconds, connect=3.0),
            headers={"Authorization": f"Bearer {settings.chapa_secret_key}"},
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def initialize(self, request: CheckoutRequest) -> CheckoutSession:
        body: dict[str, Any] = {
            "amount": str(request.amount),
            "currency": request.currency,
            "tx_ref": request.tx_ref,
            "customization": {
                "title": _customization(request.title, TITLE_MAX),
                "description": _customization(request.description, DESCRIPTION_MAX),
            },
        }
        optional = {
            "email": request.email,
            "first_name": request.first_name,
            "last_name": request.last_name,
            "return_url": request.return_url,
        }
        body.update({key: value for key, value in optional.items() if value})
        data = await self._call("POST", "/v1/transaction/initialize", json=body, read=False)
        checkout_url = data.get("checkout_url") if isinstance(data, dict) else None
        if not isinstance(checkout_url, str) or not checkout_url:
            raise ProviderError("Chapa initialize answered without a checkout_url")
        return CheckoutSession(checkout_url=checkout_url)

    async def verify(self, tx_ref: str) -> ProviderTransaction:
        data = await self._call("GET", f"/v1/transaction/verify/{tx_ref}", read=True)
        if not isinstance(data, dict):
            raise ProviderError("Chapa verify answered without transaction data")
        try:
            amount = Decimal(str(data["amount"]))
            currency = str(data["currency"])
        except (KeyError, InvalidOperation) as exc:
            raise ProviderError(f"Chapa verify answered an unreadable amount: {exc}") from exc
        status = _STATUS_MAP.get(str(data.get("status", "")).lower(), ProviderStatus.PENDING)
        reference = data.get("reference")
        return ProviderTransaction(
            tx_ref=tx_ref,
            status=status,
            amount=amount,
            currency=currency,
            reference=str(reference) if reference else None,
        )

    async def refund(self, tx_ref: str, amount: Decimal, reason: str) -> ProviderRefund:
        reference = f"refund-{tx_ref}"
        body = {"reason": reason, "amount": str(amount), "reference": reference}
        data = await self._call("POST", f"/v1/refund/{tx_ref}", json=body, read=False)
        answered = data if isinstance(data, dict) else {}
        refunded_at = utcnow()
        if isinstance(answered.get("created_at"), str):
            try:
                refunded_at = datetime.fromisoformat(answered["created_at"])
            except ValueError:
                logger.warning("unreadable refund time from Chapa", extra={"tx_ref": tx_ref})
        return ProviderRefund(
            tx_ref=tx_ref,
            reference=str(answered.get("reference") or reference),
            amount=amount,
            refunded_at=refunded_at,
        )

    async def _call(self, method: str, path: str, *, read: bool, json: Any = None) -> Any:
        """Send with bounded retries; return the ``data`` member of a successful answer."""
        attempts = 1 + self._retries
        last_error = ""
        for attempt in range(attempts):
            try:
                response = await self._client.request(method, path, json=json)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                if not read:
                    break
            else:
                if response.status_code not in _RETRYABLE_STATUS:
                    return self._data(response, path)
                last_error = f"status {response.status_code}"
                if not read:
                    break
            if attempt + 1 < attempts:
                await asyncio.sleep(0.1 * 2**attempt)
        logger.warning("Chapa call failed", extra={"path": path, "error": last_error})
        raise ProviderError(f"Chapa unavailable: {last_error}")

    @staticmethod
    def _data(response: httpx.Response, path: str) -> Any:
        try:
            body = json.loads(response.content, parse_float=Decimal)
        except ValueError as exc:
            raise ProviderError(f"Chapa answered non-JSON with {response.status_code}") from exc
        message = body.get("message") if isinstance(body, dict) else None
        if response.status_code == 404:
            raise ProviderTransactionNotFound(str(message or f"not found: {path}"))
        if response.status_code >= 400 or not isinstance(body, dict):
            raise ProviderRejected(f"Chapa refused ({response.status_code}): {message}")
        if str(body.get("status", "")).lower() != "success":
            raise ProviderRejected(f"Chapa refused: {message}")
        return body.get("data")
