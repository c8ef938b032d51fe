"""The simulated provider's hosted checkout: a page a person can pay (or decline) on."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from payment_service.checkout_pages import checkout_page
from payment_service.providers import simulated as simulated_provider
from payment_service.providers.simulated import LedgerEntry
from payment_service.tests.conftest import Payments, PaymentsFactory


def _path(url: str) -> str:
    return urlsplit(url).path


async def _checkout(
    payments: Payments, prices: tuple[str, ...] = ("1250.00",), event_id: int = 7
) -> tuple[str, str]:
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer, prices=prices, event_id=event_id)
    response = await payments.initialize(buyer, booking_id)
    body = response.json()
    return body["tx_ref"], body["checkout_url"]


async def test_the_checkout_url_is_the_hosted_page_behind_the_gateway(simulated: Payments) -> None:
    tx_ref, checkout_url = await _checkout(simulated)

    assert checkout_url == f"http://gateway.test/api/payments/checkout/{tx_ref}"


async def test_the_checkout_page_shows_amount_booking_and_pay_and_decline(
    simulated: Payments,
) -> None:
    tx_ref, checkout_url = await _checkout(simulated, prices=("1000.00", "250.00"))

    page = await simulated.client.get(_path(checkout_url))

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    html = page.text
    assert "ETB 1,250.00" in html
    assert "Tizita Night" in html  # the event's title, as booking_created carried it
    assert "VIP row 1 seat 1, VIP row 1 seat 2" in html
    assert tx_ref in html
    assert f'action="/api/payments/checkout/{tx_ref}/pay"' in html
    assert f'action="/api/payments/checkout/{tx_ref}/decline"' in html


async def test_paying_on_the_page_settles_the_payment_through_the_signed_callback(
    simulated: Payments,
) -> None:
    tx_ref, checkout_url = await _checkout(simulated)

    response = await simulated.client.post(f"{_path(checkout_url)}/pay")

    assert response.status_code == 303
    await simulated.callbacks_delivered()
    assert (await simulated.payment(tx_ref)).status == "success"
    assert len(await simulated.outbox("payment_success")) == 1
    receipt = await simulated.client.get(f"{_path(checkout_url)}/receipt")
    assert "Payment successful" in receipt.text


async def test_declining_on_the_page_fails_the_payment(simulated: Payments) -> None:
    tx_ref, checkout_url = await _checkout(simulated)

    response = await simulated.client.post(f"{_path(checkout_url)}/decline")

    assert response.status_code == 303
    await simulated.callbacks_delivered()
    assert (await simulated.payment(tx_ref)).status == "failed"
    assert len(await simulated.outbox("payment_failed")) == 1
    receipt = await simulated.client.get(f"{_path(checkout_url)}/receipt")
    assert "Payment declined" in receipt.text


@pytest.mark.parametrize("outcome", ["pay", "decline"])
async def test_the_buyer_returns_to_the_front_ends_payment_page_by_default(
    simulated: Payments, outcome: str
) -> None:
    """As the original: ``FRONTEND_URL/payment/success?tx_ref=...``."""
    tx_ref, checkout_url = await _checkout(simulated)

    response = await simulated.client.post(f"{_path(checkout_url)}/{outcome}")
    await simulated.callbacks_delivered()  # settled before the app stops

    location = urlsplit(response.headers["location"])
    status = "success" if outcome == "pay" else "failed"
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        "http://localhost:3000/payment/success"
    )
    assert parse_qs(location.query) == {"tx_ref": [tx_ref], "status": [status]}


async def test_the_front_end_url_is_a_setting(payments_factory: PaymentsFactory) -> None:
    async with payments_factory(frontend_url="https://tickets.example/") as p:
        tx_ref, checkout_url = await _checkout(p)

        response = await p.client.post(f"{_path(checkout_url)}/pay")
        await p.callbacks_delivered()  # settled before the app stops

    assert response.headers["location"] == (
        f"https://tickets.example/payment/success?tx_ref={tx_ref}&status=success"
    )


async def test_a_second_click_does_not_change_the_first_decision(simulated: Payments) -> None:
    tx_ref, checkout_url = await _checkout(simulated)
    await simulated.client.post(f"{_path(checkout_url)}/decline")

    await simulated.client.post(f"{_path(checkout_url)}/pay")
    await simulated.callbacks_delivered()

    assert (await simulated.payment(tx_ref)).status == "failed"
    assert await simulated.outbox("payment_success") == []
    page = await simulated.client.get(_path(checkout_url))
    assert "already failed" in page.text
    assert "/pay" not in page.text


async def test_the_buyer_returns_to_the_configured_return_url(
    payments_factory: PaymentsFactory,
) -> None:
    async with payments_factory(payment_return_url="https://shop.example/paid?from=sim") as p:
        tx_ref, checkout_url = await _checkout(p)

        response = await p.client.post(f"{_path(checkout_url)}/pay")
        await p.callbacks_delivered()  # settled before the app stops

    location = urlsplit(response.headers["location"])
    assert response.status_code == 303
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://shop.example/paid"
    assert parse_qs(location.query) == {"from": ["sim"], "tx_ref": [tx_ref], "status": ["success"]}


async def test_a_forced_outcome_overrides_the_button(payments_factory: PaymentsFactory) -> None:
    async with payments_factory(simulated_force_outcome="failed") as p:
        tx_ref, checkout_url = await _checkout(p)

        await p.client.post(f"{_path(checkout_url)}/pay")
        await p.callbacks_delivered()

        assert (await p.payment(tx_ref)).status == "failed"


async def test_an_unknown_checkout_is_an_html_404(simulated: Payments) -> None:
    page = await simulated.client.get("/api/payments/checkout/tkt-0-unknown")
    paid = await simulated.client.post("/api/payments/checkout/tkt-0-unknown/pay")

    assert page.status_code == paid.status_code == 404
    assert "Checkout not found" in page.text


async def test_the_hosted_pages_do_not_exist_with_the_chapa_provider(
    payments_factory: PaymentsFactory,
) -> None:
    async with payments_factory("chapa") as p:
        response = await p.client.get("/api/payments/checkout/anything")

    assert response.status_code == 404


def test_the_page_escapes_what_it_shows() -> None:
    txn = LedgerEntry(
        tx_ref="tkt-1-abc",
        reference="SIM-1",
        amount=Decimal("10.00"),
        currency="ETB",
        title="<script>alert(1)</script>",
        description='Seats & "friends"',
        customer_name=None,
        customer_email=None,
        return_url=None,
        callback_url="http://x",
        status="pending",
    )

    html = checkout_page(txn)

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    assert "Seats &amp; &quot;friends&quot;" in html


async def test_the_buyer_is_redirected_before_the_callback_is_delivered(
    payments_factory: PaymentsFactory,
) -> None:
    held = asyncio.Event()
    async with payments_factory(callbacks_held=held) as p:
        tx_ref, checkout_url = await _checkout(p)

        response = await p.client.post(f"{_path(checkout_url)}/pay")

        assert response.status_code == 303
        assert (await p.payment(tx_ref)).status == "pending"  # the callback is in flight
        held.set()
        await p.callbacks_delivered()
        assert (await p.payment(tx_ref)).status == "success"


async def test_shutdown_does_not_wait_forever_for_a_callback_in_flight(
    payments_factory: PaymentsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simulated_provider, "CALLBACK_DRAIN_SECONDS", 0.2)
    async with asyncio.timeout(15):  # stopping the app does not hang on the held callback
        async with payments_factory(callbacks_held=asyncio.Event()) as p:
            tx_ref, checkout_url = await _checkout(p)
            await p.client.post(f"{_path(checkout_url)}/pay")

    assert (await p.payment(tx_ref)).status == "pending"  # the reconciler's to settle


async def test_callbacks_are_posted_a_few_at_a_time(payments_factory: PaymentsFactory) -> None:
    held = asyncio.Event()
    async with payments_factory(callbacks_held=held) as p:
        events = range(100, 100 + simulated_provider.CALLBACKS_AT_ONCE + 3)
        checkouts = [await _checkout(p, event_id=event_id) for event_id in events]
        for _, checkout_url in checkouts:
            assert (await p.client.post(f"{_path(checkout_url)}/pay")).status_code == 303
        await asyncio.sleep(0.2)

        assert p.app.state.provider_transport.held_now == simulated_provider.CALLBACKS_AT_ONCE
        held.set()
        await p.callbacks_delivered()
        assert {(await p.payment(tx_ref)).status for tx_ref, _ in checkouts} == {"success"}
