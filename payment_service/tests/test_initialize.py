"""POST /api/payments/initialize: the booking's owner opens one checkout per booking."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from payment_service.providers import CheckoutRequest, CheckoutSession, ProviderError
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
    assert payment.checkout_url == body["checkout_url"]
    assert payment.email == buyer.email


async def test_the_originals_body_pays_the_bookings_amount_for_the_tokens_user(
    payments: Payments,
) -> None:
    """``{booking_id, user_id, amount, email, first_name, last_name}``, as its front end."""
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer, prices=("99.99",))

    response = await payments.initialize(
        buyer,
        booking_id,
        user_id=buyer.user_id + 1,  # ignored: the payer is the token's user
        amount=99.99,
        currency="USD",  # ignored: the booking's currency
        email="abebe@example.com",
        first_name="Abebe",
        last_name="Bikila",
    )

    assert response.status_code == 200, response.text
    payment = await payments.payment(response.json()["tx_ref"])
    assert payment.amount == Decimal("99.99")
    assert payment.currency == "ETB"
    assert payment.user_id == buyer.user_id
    assert (payment.email, payment.first_name) == ("abebe@example.com", "Abebe")


async def test_an_amount_other_than_the_bookings_is_409_and_opens_nothing(
    payments: Payments,
) -> None:
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer, prices=("99.99",))

    response = await payments.initialize(buyer, booking_id, amount="0.01")

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "amount_mismatch"
    assert response.json()["details"] == {"amount": 0.01, "total_amount": 99.99}
    assert await payments.count("payments") == 0
    assert payments.fake_chapa is None or payments.fake_chapa.paths("POST") == []
    retry = await payments.initialize(buyer, booking_id, amount="99.990")
    assert retry.status_code == 200, retry.text


async def test_an_open_checkout_is_not_answered_for_another_amount(payments: Payments) -> None:
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer, prices=("99.99",))
    opened = await payments.initialize(buyer, booking_id)

    other = await payments.initialize(buyer, booking_id, amount=1)

    assert opened.status_code == 200
    assert other.status_code == 409, other.text
    assert "checkout_url" not in other.json()


async def test_initializing_again_returns_the_same_checkout(payments: Payments) -> None:
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer)

    first = await payments.initialize(buyer, booking_id)
    second = await payments.initialize(buyer, booking_id)

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert await payments.count("payments") == 1


async def _provider_checkouts(payments: Payments) -> int:
    """How many checkouts the provider itself opened."""
    if payments.fake_chapa is not None:
        return len(payments.fake_chapa.transactions)
    return await payments.count("simulated_provider_transactions")


@pytest.mark.parametrize("announced", [True, False], ids=["announced", "not-yet-announced"])
async def test_concurrent_initializes_open_one_payment(payments: Payments, announced: bool) -> None:
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer, announced=announced)

    responses = await asyncio.gather(*(payments.initialize(buyer, booking_id) for _ in range(5)))

    assert [r.status_code for r in responses] == [200] * 5, [r.text for r in responses]
    assert len({r.json()["tx_ref"] for r in responses}) == 1
    assert len({r.json()["checkout_url"] for r in responses}) == 1
    assert await payments.count("payments") == 1
    assert await _provider_checkouts(payments) == 1


async def test_a_concurrent_initialize_waits_for_the_checkout_in_flight(
    simulated: Payments, monkeypatch: pytest.MonkeyPatch
) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer)
    provider = simulated.app.state.payment_provider
    asked, answer = asyncio.Event(), asyncio.Event()
    calls: list[str] = []
    initialize = provider.initialize

    async def slow_provider(request: CheckoutRequest) -> CheckoutSession:
        calls.append(request.tx_ref)
        asked.set()
        await answer.wait()
        opened: CheckoutSession = await initialize(request)
        return opened

    monkeypatch.setattr(provider, "initialize", slow_provider)
    first = asyncio.create_task(simulated.initialize(buyer, booking_id))
    await asyncio.wait_for(asked.wait(), 10)
    second = asyncio.create_task(simulated.initialize(buyer, booking_id))
    await asyncio.sleep(0.3)

    assert not second.done()  # it waits for the checkout rather than opening another
    answer.set()
    responses = [await first, await second]
    assert [r.status_code for r in responses] == [200, 200]
    assert responses[0].json() == responses[1].json()
    assert len(calls) == 1


async def test_a_provider_that_fails_once_leaves_the_booking_payable(
    payments: Payments, monkeypatch: pytest.MonkeyPatch
) -> None:
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer)
    if payments.fake_chapa is not None:
        payments.fake_chapa.fail_next(1, status=503)
    else:
        provider = payments.app.state.payment_provider
        initialize = provider.initialize
        failures = [ProviderError("the provider is down")]

        async def down_once(request: CheckoutRequest) -> CheckoutSession:
            if failures:
                raise failures.pop()
            opened: CheckoutSession = await initialize(request)
            return opened

        monkeypatch.setattr(provider, "initialize", down_once)

    failed = await payments.initialize(buyer, booking_id)
    retried = await payments.initialize(buyer, booking_id)

    assert failed.status_code == 503
    assert retried.status_code == 200, retried.text
    tx_ref = retried.json()["tx_ref"]
    assert (await payments.payment(tx_ref)).checkout_url == retried.json()["checkout_url"]
    assert await payments.count("payments") == 1
    assert await _provider_checkouts(payments) == 1


async def test_a_checkout_whose_answer_was_lost_is_opened_on_retry(
    payments: Payments, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider opened the checkout but its answer never came back (a timeout)."""
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer)
    if payments.fake_chapa is not None:
        payments.fake_chapa.delay_next(3.0)  # past chapa_timeout_seconds: the answer is lost
    else:
        provider = payments.app.state.payment_provider
        initialize = provider.initialize
        lost = [True]

        async def answer_lost(request: CheckoutRequest) -> CheckoutSession:
            opened: CheckoutSession = await initialize(request)
            if lost:
                lost.pop()
                raise ProviderError("read timeout")
            return opened

        monkeypatch.setattr(provider, "initialize", answer_lost)

    failed = await payments.initialize(buyer, booking_id)
    if payments.fake_chapa is not None:
        async with asyncio.timeout(10):  # the slow request does land at Chapa
            while not payments.fake_chapa.transactions:
                await asyncio.sleep(0.05)
    retried = await payments.initialize(buyer, booking_id)

    assert failed.status_code == 503
    assert retried.status_code == 200, retried.text
    tx_ref = retried.json()["tx_ref"]
    assert await payments.count("payments") == 1
    assert (await payments.payment(tx_ref)).checkout_url == retried.json()["checkout_url"]
    if payments.fake_chapa is not None:
        # Chapa refuses a tx_ref it has seen: the retry asked under a new one.
        assert tx_ref in payments.fake_chapa.transactions
        assert len(payments.fake_chapa.transactions) == 2
    else:  # the simulated provider answers a known tx_ref with its checkout
        assert await _provider_checkouts(payments) == 1


async def test_a_checkout_request_that_died_with_its_process_is_taken_over(
    payments: Payments,
) -> None:
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer)
    first = (await payments.initialize(buyer, booking_id)).json()
    async with payments.payment_engine.begin() as conn:  # as if it died before saving
        await conn.execute(
            text(
                "UPDATE payments SET checkout_url = NULL, provider_reference = NULL, "
                "checkout_requested_at = now() - interval '1 minute'"
            )
        )

    response = await payments.initialize(buyer, booking_id)

    assert response.status_code == 200, response.text
    assert await payments.count("payments") == 1
    tx_ref = response.json()["tx_ref"]
    assert (await payments.payment(tx_ref)).checkout_url == response.json()["checkout_url"]
    if payments.fake_chapa is None:
        assert response.json() == first
    else:
        assert tx_ref != first["tx_ref"]


async def test_a_provider_refusal_is_502_and_the_booking_stays_payable(
    payments_factory: PaymentsFactory,
) -> None:
    async with payments_factory("chapa") as chapa:
        assert chapa.fake_chapa is not None
        buyer = chapa.buyer()
        booking_id = await chapa.booking(buyer)
        chapa.fake_chapa.fail_next(1, status=400)

        refused = await chapa.initialize(buyer, booking_id)
        retried = await chapa.initialize(buyer, booking_id)

    assert refused.status_code == 502
    assert retried.status_code == 200, retried.text


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


async def test_a_booking_past_its_hold_is_refused_with_409(simulated: Payments) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer, expires_in=timedelta(seconds=-1))

    response = await simulated.initialize(buyer, booking_id)

    assert response.status_code == 409
    assert response.json()["code"] == "booking_not_payable"
    assert await simulated.count("payments") == 0


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


async def test_a_booking_id_beyond_any_booking_is_404_not_500(simulated: Payments) -> None:
    response = await simulated.initialize(simulated.buyer(), 2**63 - 1)

    assert response.status_code == 404


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


@pytest.mark.parametrize(
    "name", [r"Abebe\u0000", r"Abebe \ud800"], ids=["nul-byte", "lone-surrogate"]
)
async def test_a_name_postgresql_cannot_store_is_400(simulated: Payments, name: str) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer)
    body = f'{{"booking_id": {booking_id}, "first_name": "{name}"}}'

    response = await simulated.client.post(
        "/api/payments/initialize",
        content=body.encode(),
        headers={**buyer.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert (await simulated.initialize(buyer, booking_id)).status_code == 200


async def test_booking_service_down_is_503_not_500(payments_factory: PaymentsFactory) -> None:
    async with payments_factory(booking_service_url="http://nowhere.test") as p:
        response = await p.initialize(p.buyer(), 1)

    assert response.status_code == 503


async def test_the_checkout_shows_the_event_and_the_seats(simulated: Payments) -> None:
    buyer = simulated.buyer()
    booking_id = await simulated.booking(buyer, prices=("150.00", "250.50"))

    tx_ref = await simulated.open_checkout(buyer, booking_id)

    page = (await simulated.client.get(f"/api/payments/checkout/{tx_ref}")).text
    assert "Tizita Night" in page
    assert f"Booking #{booking_id}: 2 tickets (VIP row 1 seat 1, VIP row 1 seat 2)" in page


async def test_chapa_is_told_to_return_the_buyer_to_the_front_ends_payment_page(
    payments_factory: PaymentsFactory,
) -> None:
    """Chapa adds nothing to a return URL: the tx_ref is in it already, as the original."""
    async with payments_factory("chapa", frontend_url="https://tickets.example") as chapa:
        buyer = chapa.buyer()
        response = await chapa.initialize(buyer, await chapa.booking(buyer))
        assert chapa.fake_chapa is not None
        [(_, _, body)] = [r for r in chapa.fake_chapa.requests if r[0] == "POST"]

    tx_ref = response.json()["tx_ref"]
    assert body["return_url"] == f"https://tickets.example/payment/success?tx_ref={tx_ref}"
