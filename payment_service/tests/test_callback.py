"""POST /api/payments/callback: signed, fresh, idempotent, and trusting only the provider."""

from __future__ import annotations

import json
import time

import pytest

from payment_service.providers import ProviderTransaction
from payment_service.tests.conftest import Payments
from payment_service.webhooks import SIGNATURE_HEADER


async def _paid_checkout(payments: Payments) -> str:
    buyer = payments.buyer()
    tx_ref = await payments.open_checkout(buyer, await payments.booking(buyer))
    await payments.buyer_pays_at_provider(tx_ref)
    return tx_ref


async def test_a_signed_callback_settles_the_payment(payments: Payments) -> None:
    tx_ref = await _paid_checkout(payments)

    response = await payments.callback(tx_ref)

    assert response.status_code == 200, response.text
    assert response.json() == {"message": "payment successful", "status": "success"}
    assert (await payments.payment(tx_ref)).status == "success"
    assert len(await payments.outbox("payment_success")) == 1


async def test_a_repeated_callback_changes_nothing(payments: Payments) -> None:
    tx_ref = await _paid_checkout(payments)

    first = await payments.callback(tx_ref)
    second = await payments.callback(tx_ref)

    assert first.status_code == second.status_code == 200
    assert len(await payments.outbox("payment_success")) == 1


async def test_a_callback_with_a_bad_signature_is_401_and_changes_nothing(
    payments: Payments,
) -> None:
    tx_ref = await _paid_checkout(payments)

    response = await payments.callback(tx_ref, secret="not-the-shared-secret")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert (await payments.payment(tx_ref)).status == "pending"
    assert await payments.outbox("payment_success") == []


async def test_a_callback_with_an_old_timestamp_is_401_and_changes_nothing(
    payments: Payments,
) -> None:
    tx_ref = await _paid_checkout(payments)
    too_old = int(time.time()) - payments.settings.payment_callback_max_age_seconds - 5

    response = await payments.callback(tx_ref, timestamp=too_old)

    assert response.status_code == 401
    assert response.json()["code"] == "stale_signature"
    assert (await payments.payment(tx_ref)).status == "pending"
    assert await payments.outbox("payment_success") == []


async def test_a_callback_from_the_far_future_is_refused(simulated: Payments) -> None:
    tx_ref = await _paid_checkout(simulated)

    response = await simulated.callback(tx_ref, timestamp=int(time.time()) + 3600)

    assert response.status_code == 401
    assert (await simulated.payment(tx_ref)).status == "pending"


async def test_a_callback_without_a_signature_is_401(simulated: Payments) -> None:
    tx_ref = await _paid_checkout(simulated)

    response = await simulated.client.post("/api/payments/callback", json={"tx_ref": tx_ref})

    assert response.status_code == 401
    assert (await simulated.payment(tx_ref)).status == "pending"


async def test_a_replayed_signature_on_a_different_body_is_refused(simulated: Payments) -> None:
    tx_ref = await _paid_checkout(simulated)
    genuine = await simulated.callback("tkt-0-other")  # a real, signed callback, seen on the wire
    assert genuine.status_code == 404
    header = genuine.request.headers[SIGNATURE_HEADER]

    response = await simulated.client.post(
        "/api/payments/callback",
        content=json.dumps({"tx_ref": tx_ref}).encode(),
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: header},
    )

    assert response.status_code == 401
    assert (await simulated.payment(tx_ref)).status == "pending"


async def test_the_callback_body_cannot_claim_success_the_provider_does_not_confirm(
    payments: Payments,
) -> None:
    buyer = payments.buyer()
    tx_ref = await payments.open_checkout(buyer, await payments.booking(buyer))
    claim = json.dumps({"tx_ref": tx_ref, "status": "success", "amount": "0.01"}).encode()

    response = await payments.callback(tx_ref, body=claim)

    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert await payments.outbox("payment_success") == []


async def test_a_signed_callback_for_an_unknown_payment_is_404(simulated: Payments) -> None:
    response = await simulated.callback("tkt-0-unknown")

    assert response.status_code == 404


async def test_a_signed_callback_that_is_not_json_is_400(simulated: Payments) -> None:
    response = await simulated.callback("x", body=b"not json")

    assert response.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 30_000 + b"]" * 30_000,
        b'{"tx_ref": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001,
    ],
    ids=["nested arrays", "nested objects"],
)
async def test_a_signed_callback_nested_deep_is_a_400_not_a_500(
    simulated: Payments, body: bytes
) -> None:
    response = await simulated.callback("tx-deep", body=body)

    assert response.status_code == 400, response.text
    assert "tx_ref" in response.json()["error"]


async def test_a_callback_for_a_settled_payment_asks_the_provider_nothing(
    payments: Payments, monkeypatch: pytest.MonkeyPatch
) -> None:
    tx_ref = await _paid_checkout(payments)
    assert (await payments.callback(tx_ref)).json()["status"] == "success"
    asked: list[str] = []

    async def provider_verify(tx_ref: str) -> ProviderTransaction:
        asked.append(tx_ref)
        raise AssertionError("a settled payment needs no provider")

    monkeypatch.setattr(payments.app.state.payment_provider, "verify", provider_verify)

    again = await payments.callback(tx_ref)

    assert again.status_code == 200
    assert again.json() == {"message": "payment successful", "status": "success"}
    assert asked == []
