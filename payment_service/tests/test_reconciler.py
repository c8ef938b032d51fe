"""The reconcile loop settles payments whose callback never arrived."""

from __future__ import annotations

import asyncio

import pytest

from payment_service.providers import ProviderError, ProviderTransaction
from payment_service.reconciler import reconcile_once
from payment_service.tests.conftest import Payments, PaymentsFactory, verify_together


async def test_a_paid_payment_whose_callback_was_lost_is_settled_by_the_reconciler(
    payments_factory: PaymentsFactory,
) -> None:
    async with payments_factory(payment_reconcile_after_seconds=0) as p:
        buyer = p.buyer()
        tx_ref = await p.open_checkout(buyer, await p.booking(buyer))
        await p.buyer_pays_at_provider(tx_ref)

        settled = await reconcile_once(p.app)

        assert settled == 1
        assert (await p.payment(tx_ref)).status == "success"
        assert len(await p.outbox("payment_success")) == 1


async def test_the_reconciler_leaves_young_and_undecided_payments_alone(
    payments_factory: PaymentsFactory,
) -> None:
    async with payments_factory(payment_reconcile_after_seconds=0) as p:
        buyer = p.buyer()
        undecided = await p.open_checkout(buyer, await p.booking(buyer))

        assert await reconcile_once(p.app) == 0
        assert (await p.payment(undecided)).status == "pending"
        assert (await p.payment(undecided)).last_checked_at is not None


async def test_a_fresh_payment_is_not_asked_about_before_its_time(simulated: Payments) -> None:
    buyer = simulated.buyer()
    tx_ref = await simulated.open_checkout(buyer, await simulated.booking(buyer))
    await simulated.buyer_pays_at_provider(tx_ref)

    assert await reconcile_once(simulated.app) == 0
    assert (await simulated.payment(tx_ref)).status == "pending"


async def test_the_reconciler_racing_a_verify_and_the_callback_settles_once(
    payments_factory: PaymentsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with payments_factory(payment_reconcile_after_seconds=0) as p:
        buyer = p.buyer()
        tx_ref = await p.open_checkout(buyer, await p.booking(buyer))
        await p.buyer_pays_at_provider(tx_ref)
        verify_together(monkeypatch, p, parties=3)

        verified, called, settled = await asyncio.gather(
            p.verify(buyer, tx_ref), p.callback(tx_ref), reconcile_once(p.app)
        )

        assert verified.json()["payment"]["status"] == "success"
        assert called.json()["status"] == "success"
        assert settled == 1
        assert len(await p.outbox("payment_success")) == 1


async def test_a_provider_that_is_down_leaves_the_payment_for_the_next_pass(
    payments_factory: PaymentsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with payments_factory(payment_reconcile_after_seconds=0) as p:
        buyer = p.buyer()
        tx_ref = await p.open_checkout(buyer, await p.booking(buyer))
        await p.buyer_pays_at_provider(tx_ref)

        async def provider_down(tx_ref: str) -> ProviderTransaction:
            raise ProviderError("provider unreachable")

        monkeypatch.setattr(p.app.state.payment_provider, "verify", provider_down)

        assert await reconcile_once(p.app) == 0
        assert (await p.payment(tx_ref)).status == "pending"
        assert await p.outbox("payment_success") == []
