"""The reconcile loop settles payments whose callback never arrived."""

from __future__ import annotations

from payment_service.reconciler import reconcile_once
from payment_service.tests.conftest import Payments, PaymentsFactory


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
