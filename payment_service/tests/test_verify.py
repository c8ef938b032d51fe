"""GET /api/payments/verify/{tx_ref}: asks the provider and records the outcome once."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import text

from payment_service.providers import ProviderTransaction
from payment_service.tests.conftest import Payments, PaymentsFactory, verify_together


async def test_verify_of_an_unpaid_checkout_stays_pending_and_publishes_nothing(
    payments: Payments,
) -> None:
    buyer = payments.buyer()
    tx_ref = await payments.open_checkout(buyer, await payments.booking(buyer))

    response = await payments.verify(buyer, tx_ref)

    assert response.status_code == 200
    assert response.json()["message"] == "payment pending"
    assert response.json()["payment"]["status"] == "pending"
    assert await payments.outbox("payment_success") == []
    assert await payments.outbox("payment_failed") == []


async def test_verify_after_paying_records_success_and_publishes_payment_success(
    payments: Payments,
) -> None:
    buyer = payments.buyer()
    booking_id = await payments.booking(buyer, prices=("150.00", "250.50"))
    tx_ref = await payments.open_checkout(buyer, booking_id)
    await payments.buyer_pays_at_provider(tx_ref)

    response = await payments.verify(buyer, tx_ref)

    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "payment successful"
    assert body["payment"]["status"] == "success"
    assert body["payment"]["amount"] == 400.5
    assert body["payment"]["paid_at"] is not None
    assert body["payment"]["ID"] == body["payment"]["id"]
    assert body["payment"]["CreatedAt"] == body["payment"]["created_at"]
    assert body["payment"]["UpdatedAt"] == body["payment"]["updated_at"]
    assert body["payment"]["DeletedAt"] is None
    [event] = await payments.outbox("payment_success")
    assert event["type"] == "payment_success"
    assert event["payload"]["booking_id"] == booking_id
    assert event["payload"]["user_id"] == buyer.user_id
    assert event["payload"]["tx_ref"] == tx_ref
    assert event["payload"]["amount"] == "400.50"
    assert event["payload"]["provider"] == payments.provider_name


async def test_verify_after_declining_records_failure_and_publishes_payment_failed(
    payments: Payments,
) -> None:
    buyer = payments.buyer()
    tx_ref = await payments.open_checkout(buyer, await payments.booking(buyer))
    await payments.buyer_pays_at_provider(tx_ref, outcome="failed")

    response = await payments.verify(buyer, tx_ref)

    assert response.json()["payment"]["status"] == "failed"
    assert response.json()["message"] == "payment failed"
    [event] = await payments.outbox("payment_failed")
    assert event["payload"]["tx_ref"] == tx_ref
    assert await payments.outbox("payment_success") == []


async def test_five_concurrent_verifies_and_the_webhook_publish_one_payment_success(
    payments: Payments,
) -> None:
    buyer = payments.buyer()
    tx_ref = await payments.open_checkout(buyer, await payments.booking(buyer))
    await payments.buyer_pays_at_provider(tx_ref)

    responses = await asyncio.gather(
        *(payments.verify(buyer, tx_ref) for _ in range(5)), payments.callback(tx_ref)
    )

    assert [r.status_code for r in responses] == [200] * 6
    assert {r.json()["payment"]["status"] for r in responses[:5]} == {"success"}
    assert responses[5].json()["status"] == "success"
    assert len(await payments.outbox("payment_success")) == 1
    assert await payments.outbox("payment_failed") == []


async def test_verifying_a_settled_payment_again_changes_nothing(payments: Payments) -> None:
    buyer = payments.buyer()
    tx_ref = await payments.open_checkout(buyer, await payments.booking(buyer))
    await payments.buyer_pays_at_provider(tx_ref)
    first = (await payments.verify(buyer, tx_ref)).json()["payment"]

    again = (await payments.verify(buyer, tx_ref)).json()["payment"]

    assert again == first
    assert len(await payments.outbox("payment_success")) == 1


async def test_a_user_cannot_verify_another_users_payment(payments: Payments) -> None:
    owner, stranger = payments.buyer(), payments.buyer()
    tx_ref = await payments.open_checkout(owner, await payments.booking(owner))
    await payments.buyer_pays_at_provider(tx_ref)

    response = await payments.verify(stranger, tx_ref)

    assert response.status_code == 403
    assert (await payments.payment(tx_ref)).status == "pending"
    assert await payments.outbox("payment_success") == []


async def test_an_admin_may_verify_any_payment(simulated: Payments) -> None:
    owner = simulated.buyer()
    tx_ref = await simulated.open_checkout(owner, await simulated.booking(owner))

    response = await simulated.verify(simulated.buyer(role="admin"), tx_ref)

    assert response.status_code == 200


async def test_verify_of_an_unknown_tx_ref_is_404(simulated: Payments) -> None:
    response = await simulated.verify(simulated.buyer(), "tkt-1-doesnotexist")

    assert response.status_code == 404


async def test_verify_needs_a_token(simulated: Payments) -> None:
    response = await simulated.client.get("/api/payments/verify/tkt-1-x")

    assert response.status_code == 401


def _metric(text: str, outcome: str) -> float:
    prefix = f'payments_total{{outcome="{outcome}"}} '
    values = [float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)]
    return values[0] if values else 0.0


async def test_a_settled_payment_is_counted_by_outcome(simulated: Payments) -> None:
    buyer = simulated.buyer()
    tx_ref = await simulated.open_checkout(buyer, await simulated.booking(buyer))
    await simulated.buyer_pays_at_provider(tx_ref)
    before = _metric((await simulated.client.get("/metrics")).text, "success")

    await simulated.verify(buyer, tx_ref)
    await simulated.verify(buyer, tx_ref)

    after = _metric((await simulated.client.get("/metrics")).text, "success")
    assert after - before == 1


async def test_no_pooled_connection_waits_while_the_provider_answers(
    payments_factory: PaymentsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with payments_factory(db_pool_size=1, db_max_overflow=0) as p:
        buyer = p.buyer()
        first = await p.booking(buyer)
        settled = await p.open_checkout(buyer, first)
        await p.buyer_pays_at_provider(settled)
        assert (await p.verify(buyer, settled)).status_code == 200
        await p.set_booking_status(first, "cancelled")  # frees its seats
        slow = await p.open_checkout(buyer, await p.booking(buyer))
        provider = p.app.state.payment_provider
        asked, answer = asyncio.Event(), asyncio.Event()
        verify = provider.verify

        async def slow_provider(tx_ref: str) -> ProviderTransaction:
            asked.set()
            await answer.wait()
            observed: ProviderTransaction = await verify(tx_ref)
            return observed

        monkeypatch.setattr(provider, "verify", slow_provider)
        waiting = asyncio.create_task(p.verify(buyer, slow))
        await asyncio.wait_for(asked.wait(), 10)

        # The only connection is free while the provider thinks: other requests go on.
        async with asyncio.timeout(10):
            other = await p.verify(buyer, settled)
        answer.set()
        assert other.json()["payment"]["status"] == "success"
        assert (await waiting).json()["payment"]["status"] == "pending"


async def test_verifies_and_the_callback_that_all_saw_it_pending_settle_it_once(
    payments: Payments, monkeypatch: pytest.MonkeyPatch
) -> None:
    buyer = payments.buyer()
    tx_ref = await payments.open_checkout(buyer, await payments.booking(buyer))
    await payments.buyer_pays_at_provider(tx_ref)
    before = _metric((await payments.client.get("/metrics")).text, "success")
    verify_together(monkeypatch, payments, parties=4)

    responses = await asyncio.gather(
        *(payments.verify(buyer, tx_ref) for _ in range(3)), payments.callback(tx_ref)
    )

    assert [r.status_code for r in responses] == [200] * 4
    assert {r.json()["payment"]["status"] for r in responses[:3]} == {"success"}
    assert len({r.json()["payment"]["paid_at"] for r in responses[:3]}) == 1
    assert responses[3].json()["status"] == "success"
    [message] = await payments.outbox("payment_success")
    assert message["payload"]["tx_ref"] == tx_ref
    assert await payments.outbox("payment_failed") == []
    assert _metric((await payments.client.get("/metrics")).text, "success") - before == 1


async def test_verifying_a_settled_payment_asks_the_provider_nothing(
    payments: Payments, monkeypatch: pytest.MonkeyPatch
) -> None:
    buyer = payments.buyer()
    tx_ref = await payments.open_checkout(buyer, await payments.booking(buyer))
    await payments.buyer_pays_at_provider(tx_ref)
    settled = (await payments.verify(buyer, tx_ref)).json()
    asked: list[str] = []

    async def provider_verify(tx_ref: str) -> ProviderTransaction:
        asked.append(tx_ref)
        raise AssertionError("a settled payment needs no provider")

    monkeypatch.setattr(payments.app.state.payment_provider, "verify", provider_verify)

    again = await payments.verify(buyer, tx_ref)

    assert again.status_code == 200
    assert again.json() == settled
    assert asked == []


@pytest.mark.parametrize(("column", "value"), [("amount", Decimal("0.01")), ("currency", "USD")])
async def test_a_provider_reporting_another_amount_fails_the_payment(
    simulated: Payments, column: str, value: object
) -> None:
    buyer = simulated.buyer()
    tx_ref = await simulated.open_checkout(buyer, await simulated.booking(buyer))
    async with simulated.payment_engine.begin() as conn:  # the provider took something else
        await conn.execute(
            text(
                f"UPDATE simulated_provider_transactions SET {column} = :v, "  # noqa: S608
                "status = 'success' WHERE tx_ref = :t"
            ),
            {"v": value, "t": tx_ref},
        )

    response = await simulated.verify(buyer, tx_ref)

    payment = response.json()["payment"]
    assert payment["status"] == "failed"
    assert payment["failure_reason"].startswith("provider reports")
    assert "expected 400.50 ETB" in payment["failure_reason"]
    assert await simulated.outbox("payment_success") == []
    [message] = await simulated.outbox("payment_failed")
    assert message["payload"]["reason"] == payment["failure_reason"]
