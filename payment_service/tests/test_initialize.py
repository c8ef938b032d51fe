"""POST /api/payments/initialize: the booking's owner opens one checkout per booking."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from payment_service import service
from payment_service.tests.conftest import Payments, PaymentsFactory


async def test_owner_gets_a_checkout_url_and_tx_ref_for_a_pending_booking(
    payments: Payments,
) -> None:
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer, prices=("150.00", "250.50"))

    response = await payments.initialize(buyer, booking_id)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"checkout_url", "tx_ref"}
    assert body["checkout_url"].startswith("http")
    payment = await payments.payment(body["tx_ref"])
    assert payment.status == "pending"
    assert payment.amount == Decimal("400.50")
    assert payment.currency == "ETB"
    assert payment.provider == payments.provider_name
    assert payment.user_id == buyer.user_id


async def test_an_amount_in_the_request_body_has_no_effect(payments: Payments) -> None:
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer, prices=("99.99",))

    response = await payments.initialize(buyer, booking_id, amount="0.01", currency="USD")

    assert response.status_code == 200, response.text
    payment = await payments.payment(response.json()["tx_ref"])
    assert payment.amount == Decimal("99.99")
    assert payment.currency == "ETB"


async def test_initializing_again_returns_the_same_checkout(payments: Payments) -> None:
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer)

    first = await payments.initialize(buyer, booking_id)
    second = await payments.initialize(buyer, booking_id)

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert await payments.count("payments") == 1


async def test_concurrent_initializes_open_one_payment(simulated: Payments) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer)

    responses = await asyncio.gather(*(simulated.initialize(buyer, booking_id) for _ in range(5)))

    assert [r.status_code for r in responses] == [200] * 5
    assert len({r.json()["tx_ref"] for r in responses}) == 1
    assert await simulated.count("payments") == 1
    assert await simulated.count("simulated_provider_transactions") == 1


async def test_another_users_booking_is_refused_with_403(payments: Payments) -> None:
    owner, stranger = payments.buyer(), payments.buyer()
    booking_id = await payments.booking(owner)

    response = await payments.initialize(stranger, booking_id)

    assert response.status_code == 403
    assert "error" in response.json()
    assert await payments.count("payments") == 0


async def test_a_booking_that_is_not_pending_is_refused_with_409(simulated: Payments) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer, status="expired")

    response = await simulated.initialize(buyer, booking_id)

    assert response.status_code == 409
    assert response.json()["code"] == "booking_not_payable"


async def test_a_paid_booking_cannot_be_paid_again(simulated: Payments) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer)
    tx_ref = await simulated.open_checkout(buyer, booking_id)
    await simulated.buyer_pays_at_provider(tx_ref)
    assert (await simulated.verify(buyer, tx_ref)).json()["payment"]["status"] == "success"

    response = await simulated.initialize(buyer, booking_id)

    assert response.status_code == 409
    assert response.json()["code"] == "payment_already_made"


async def test_an_unknown_booking_is_404(simulated: Payments) -> None:
    response = await simulated.initialize(simulated.buyer(), 987654)

    assert response.status_code == 404
    assert response.json()["error"] == "booking not found"


async def test_initialize_needs_a_token(simulated: Payments) -> None:
    response = await simulated.client.post("/api/payments/initialize", json={"booking_id": 1})

    assert response.status_code == 401


async def test_a_malformed_body_is_400(simulated: Payments) -> None:
    buyer = simulated.buyer()

    response = await simulated.client.post(
        "/api/payments/initialize", json={"booking_id": "abc"}, headers=buyer.headers
    )

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


async def test_booking_service_down_is_503_not_500(payments_factory: PaymentsFactory) -> None:
    async with payments_factory(booking_service_url="http://nowhere.test") as p:
        response = await p.initialize(p.buyer(), 1)

    assert response.status_code == 503


async def test_the_checkout_title_is_asked_of_event_service_once_a_minute(
    simulated: Payments, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    async def event_service(url: str, *, what: str = "resource") -> dict[str, Any]:
        asked.append(url)
        return {"id": 424242, "title": "የሙዚቃ ኮንሰርት"}

    monkeypatch.setattr(simulated.app.state.http, "get_json", event_service)
    titles = [
        await service.fetch_event_title(simulated.app.state.http, simulated.settings, 424242)
        for _ in range(3)
    ]

    assert titles == ["የሙዚቃ ኮንሰርት"] * 3
    assert len(asked) == 1
