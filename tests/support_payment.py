"""Paying for bookings through the gateway, for journeys that need a paid (or failed) booking.

    payment = await pay_booking(client, booking_id)              # pays on the hosted checkout
    payment = await pay_booking(client, booking_id, outcome="failed")

``client`` is a gateway client whose headers carry the buyer's bearer token (or pass
``headers=``). The simulated provider's checkout is driven exactly as a browser would: the
Pay / Decline form posts, then the verify call a front end makes on the return page.
``signed_callback`` builds a provider webhook signed with the test stack's secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from ticketing_common.settings import DEV_WEBHOOK_SECRET

Outcome = Literal["success", "failed"]
SIGNATURE_HEADER = "X-Signature"

__all__ = [
    "complete_checkout",
    "initialize_payment",
    "pay_booking",
    "signed_callback",
    "verify_payment",
    "wait_for_payment_status",
]


async def initialize_payment(
    client: httpx.AsyncClient, booking_id: int, *, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """``{checkout_url, tx_ref}`` for the buyer's pending booking."""
    response = await client.post(
        "/api/payments/initialize", json={"booking_id": booking_id}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def complete_checkout(
    client: httpx.AsyncClient, checkout_url: str, outcome: Outcome = "success"
) -> httpx.Response:
    """Press Pay (or Decline) on the simulated provider's hosted page."""
    action = "pay" if outcome == "success" else "decline"
    response = await client.post(f"{urlsplit(checkout_url).path}/{action}")
    assert response.status_code == 303, response.text
    return response


async def verify_payment(
    client: httpx.AsyncClient, tx_ref: str, *, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await client.get(f"/api/payments/verify/{tx_ref}", headers=headers)
    assert response.status_code == 200, response.text
    payment: dict[str, Any] = response.json()["payment"]
    return payment


async def pay_booking(
    client: httpx.AsyncClient,
    booking_id: int,
    outcome: Outcome = "success",
    *,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Initialize, decide on the hosted checkout, verify; returns the settled payment."""
    checkout = await initialize_payment(client, booking_id, headers=headers)
    await complete_checkout(client, checkout["checkout_url"], outcome)
    payment = await verify_payment(client, checkout["tx_ref"], headers=headers)
    assert payment["status"] == outcome, payment
    return payment


async def wait_for_payment_status(
    client: httpx.AsyncClient,
    tx_ref: str,
    status: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """Poll verify until the payment reaches ``status`` (refunds arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        payment = await verify_payment(client, tx_ref, headers=headers)
        if payment["status"] == status:
            return payment
        assert time.monotonic() < deadline, f"payment still {payment['status']}, not {status}"
        await asyncio.sleep(0.3)


def signed_callback(
    tx_ref: str, *, secret: str = DEV_WEBHOOK_SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A provider callback body and headers, signed as the provider signs it."""
    body = json.dumps({"tx_ref": tx_ref, "status": "success"}).encode()
    at = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", SIGNATURE_HEADER: f"t={at},v1={mac}"}
