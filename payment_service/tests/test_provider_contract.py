"""The provider contract, held by both adapters: simulated, and Chapa against a local fake.

Each test runs once per provider through the same :class:`PaymentProvider` interface; the
harness plays the buyer on each provider's own checkout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest

from payment_service.providers import (
    ChapaProvider,
    CheckoutRequest,
    PaymentProvider,
    ProviderError,
    ProviderRejected,
    ProviderStatus,
    ProviderTransactionNotFound,
    SimulatedProvider,
)
from payment_service.settings import PaymentSettings
from payment_service.tests.fake_chapa import SECRET_KEY, FakeChapa
from payment_service.webhooks import SIGNATURE_HEADER, check_signature


@dataclass
class Harness:
    provider: PaymentProvider
    pay: Callable[[str], Awaitable[None]]
    decline: Callable[[str], Awaitable[None]]
    callbacks: list[httpx.Request] = field(default_factory=list)


def _checkout(amount: str = "300.25", **changes: Any) -> CheckoutRequest:
    request = CheckoutRequest(
        tx_ref=f"tkt-1-{uuid.uuid4().hex[:16]}",
        amount=Decimal(amount),
        currency="ETB",
        title="Concert",
        description="Booking #1: 1 ticket",
        return_url=None,
        callback_url="http://payment.test/api/payments/callback",
        email="buyer@example.com",
        first_name="Abebe",
        last_name="Bikila",
    )
    return dataclasses.replace(request, **changes)


def chapa_settings(base: PaymentSettings, fake: FakeChapa, **overrides: Any) -> PaymentSettings:
    fields: dict[str, Any] = {
        **base.model_dump(),
        "payment_provider": "chapa",
        "chapa_base_url": fake.base_url,
        "chapa_secret_key": SECRET_KEY,
        "chapa_retries": 2,
        "chapa_timeout_seconds": 2.0,
        **overrides,
    }
    return PaymentSettings(**fields)


@pytest.fixture
async def chapa(
    payment_settings: PaymentSettings, fake_chapa: FakeChapa
) -> AsyncIterator[ChapaProvider]:
    fake_chapa.reset()
    provider = ChapaProvider(chapa_settings(payment_settings, fake_chapa))
    yield provider
    await provider.aclose()


@pytest.fixture
async def simulated_provider(payment_settings: PaymentSettings) -> AsyncIterator[Harness]:
    callbacks: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        callbacks.append(request)
        return httpx.Response(200, json={"status": "ok"})

    provider = await SimulatedProvider.open(
        payment_settings, transport=httpx.MockTransport(receive)
    )

    async def pay(tx_ref: str) -> None:
        await provider.complete(tx_ref, "success")

    async def decline(tx_ref: str) -> None:
        await provider.complete(tx_ref, "failed")

    yield Harness(provider, pay, decline, callbacks)
    await provider.aclose()


@pytest.fixture(params=["simulated", "chapa"])
async def harness(
    request: pytest.FixtureRequest,
    simulated_provider: Harness,
    chapa: ChapaProvider,
    fake_chapa: FakeChapa,
) -> Harness:
    if request.param == "simulated":
        return simulated_provider

    async def pay(tx_ref: str) -> None:
        fake_chapa.pay(tx_ref)

    async def decline(tx_ref: str) -> None:
        fake_chapa.decline(tx_ref)

    return Harness(chapa, pay, decline)


async def test_initialize_opens_a_checkout_pending_for_the_exact_amount(harness: Harness) -> None:
    checkout = _checkout("0.30")

    session = await harness.provider.initialize(checkout)
    seen = await harness.provider.verify(checkout.tx_ref)

    assert session.checkout_url.startswith("http")
    assert seen.status is ProviderStatus.PENDING
    assert seen.amount == Decimal("0.30")
    assert isinstance(seen.amount, Decimal)
    assert seen.currency == "ETB"


async def test_a_paid_transaction_verifies_as_success(harness: Harness) -> None:
    checkout = _checkout("1250.50")
    await harness.provider.initialize(checkout)

    await harness.pay(checkout.tx_ref)
    seen = await harness.provider.verify(checkout.tx_ref)

    assert seen.status is ProviderStatus.SUCCESS
    assert seen.amount == Decimal("1250.50")
    assert seen.reference


async def test_a_declined_transaction_verifies_as_failed(harness: Harness) -> None:
    checkout = _checkout()
    await harness.provider.initialize(checkout)

    await harness.decline(checkout.tx_ref)

    assert (await harness.provider.verify(checkout.tx_ref)).status is ProviderStatus.FAILED


async def test_a_refund_of_a_paid_transaction_is_recorded_and_safe_to_repeat(
    harness: Harness,
) -> None:
    checkout = _checkout("99.99")
    await harness.provider.initialize(checkout)
    await harness.pay(checkout.tx_ref)

    first = await harness.provider.refund(checkout.tx_ref, Decimal("99.99"), "booking_not_pending")
    again = await harness.provider.refund(checkout.tx_ref, Decimal("99.99"), "booking_not_pending")

    assert first.reference == again.reference
    assert first.amount == Decimal("99.99")
    assert (await harness.provider.verify(checkout.tx_ref)).status is ProviderStatus.REFUNDED


async def test_a_refund_of_an_unpaid_transaction_is_rejected(harness: Harness) -> None:
    checkout = _checkout()
    await harness.provider.initialize(checkout)

    with pytest.raises(ProviderRejected):
        await harness.provider.refund(checkout.tx_ref, checkout.amount, "cancelled_by_user")


async def test_an_unknown_transaction_is_not_found(harness: Harness) -> None:
    with pytest.raises(ProviderTransactionNotFound):
        await harness.provider.verify("tkt-0-never-initialized")


# The simulated provider's callback


async def test_the_simulated_provider_posts_one_signed_callback_per_decision(
    simulated_provider: Harness, payment_settings: PaymentSettings
) -> None:
    checkout = _checkout()
    await simulated_provider.provider.initialize(checkout)

    await simulated_provider.pay(checkout.tx_ref)
    await simulated_provider.decline(checkout.tx_ref)  # too late: the first decision stands

    [callback] = simulated_provider.callbacks
    assert str(callback.url) == checkout.callback_url
    check_signature(
        payment_settings.payment_webhook_secret,
        callback.headers[SIGNATURE_HEADER],
        callback.content,
        now=time.time(),
        max_age_seconds=payment_settings.payment_callback_max_age_seconds,
    )
    assert json.loads(callback.content)["tx_ref"] == checkout.tx_ref
    assert json.loads(callback.content)["status"] == "success"


# The Chapa adapter's HTTP behaviour


async def test_chapa_receives_amounts_as_decimal_strings_and_the_bearer_key(
    chapa: ChapaProvider, fake_chapa: FakeChapa
) -> None:
    await chapa.initialize(_checkout("300.25", title="Rock & Roll: the <Night> of 2026!"))

    [(method, path, body)] = fake_chapa.requests
    assert (method, path) == ("POST", "/v1/transaction/initialize")
    assert body["amount"] == "300.25"
    assert body["currency"] == "ETB"
    assert len(body["customization"]["title"]) <= 16
    assert set(body["customization"]["title"]) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-"
    )


async def test_chapa_verify_retries_through_transient_errors(
    chapa: ChapaProvider, fake_chapa: FakeChapa
) -> None:
    checkout = _checkout()
    await chapa.initialize(checkout)
    fake_chapa.fail_next(2, status=503)

    seen = await chapa.verify(checkout.tx_ref)

    assert seen.status is ProviderStatus.PENDING
    assert len(fake_chapa.paths("GET")) == 3


async def test_chapa_verify_gives_up_after_bounded_retries(
    chapa: ChapaProvider, fake_chapa: FakeChapa
) -> None:
    checkout = _checkout()
    await chapa.initialize(checkout)
    fake_chapa.fail_next(10, status=502)

    with pytest.raises(ProviderError):
        await chapa.verify(checkout.tx_ref)

    assert len(fake_chapa.paths("GET")) == 3


async def test_chapa_initialize_is_not_repeated_once_it_reached_chapa(
    chapa: ChapaProvider, fake_chapa: FakeChapa
) -> None:
    fake_chapa.fail_next(1, status=500)

    with pytest.raises(ProviderError):
        await chapa.initialize(_checkout())

    assert len(fake_chapa.paths("POST")) == 1


async def test_a_slow_chapa_times_out_instead_of_hanging(
    payment_settings: PaymentSettings, fake_chapa: FakeChapa
) -> None:
    fake_chapa.reset()
    provider = ChapaProvider(
        chapa_settings(payment_settings, fake_chapa, chapa_timeout_seconds=0.3, chapa_retries=1)
    )
    fake_chapa.delay_next(2.0, count=2)
    started = time.monotonic()
    try:
        with pytest.raises(ProviderError):
            await provider.verify("tkt-1-slow")
    finally:
        await provider.aclose()

    assert time.monotonic() - started < 1.5


async def test_an_unreachable_chapa_is_a_provider_error(
    payment_settings: PaymentSettings, fake_chapa: FakeChapa
) -> None:
    settings = chapa_settings(payment_settings, fake_chapa, chapa_base_url="http://127.0.0.1:9")
    provider = ChapaProvider(settings)
    try:
        with pytest.raises(ProviderError):
            await provider.initialize(_checkout())
    finally:
        await provider.aclose()


async def test_a_wrong_chapa_key_is_rejected_not_retried(
    payment_settings: PaymentSettings, fake_chapa: FakeChapa
) -> None:
    fake_chapa.reset()
    provider = ChapaProvider(
        chapa_settings(payment_settings, fake_chapa, chapa_secret_key="CHASECK_TEST-wrong")
    )
    try:
        with pytest.raises(ProviderRejected):
            await provider.verify("tkt-1-any")
    finally:
        await provider.aclose()

    assert len(fake_chapa.requests) == 1


# The simulated provider's ledger under concurrent use


async def test_racing_decisions_record_one_and_post_one_callback(
    simulated_provider: Harness,
) -> None:
    checkout = _checkout()
    await simulated_provider.provider.initialize(checkout)
    provider = simulated_provider.provider
    assert isinstance(provider, SimulatedProvider)

    decided = await asyncio.gather(
        *(provider.complete(checkout.tx_ref, o) for o in ("success", "failed") * 3)
    )
    await provider.callbacks_delivered()

    assert len({entry.status for entry in decided}) == 1
    [callback] = simulated_provider.callbacks
    assert json.loads(callback.content)["status"] == decided[0].status
    assert (await provider.verify(checkout.tx_ref)).status == decided[0].status


async def test_racing_refunds_refund_once(simulated_provider: Harness) -> None:
    checkout = _checkout("99.99")
    await simulated_provider.provider.initialize(checkout)
    await simulated_provider.pay(checkout.tx_ref)

    refunds = await asyncio.gather(
        *(
            simulated_provider.provider.refund(checkout.tx_ref, Decimal("99.99"), "cancelled")
            for _ in range(4)
        )
    )

    assert len({(r.reference, r.refunded_at) for r in refunds}) == 1


async def test_a_refund_of_another_amount_is_rejected(simulated_provider: Harness) -> None:
    checkout = _checkout("99.99")
    await simulated_provider.provider.initialize(checkout)
    await simulated_provider.pay(checkout.tx_ref)

    with pytest.raises(ProviderRejected, match="does not match"):
        await simulated_provider.provider.refund(checkout.tx_ref, Decimal("9.99"), "cancelled")

    assert (await simulated_provider.provider.verify(checkout.tx_ref)).status is (
        ProviderStatus.SUCCESS
    )
