"""``refund_requested``: the money goes back through the provider, once, visibly."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from payment_service.consumers import on_refund_requested
from payment_service.models import Refund
from payment_service.tests.conftest import Buyer, Payments
from ticketing_common.db import utcnow
from ticketing_common.messaging import Envelope, MessageContext, PermanentFailure
from ticketing_common.messaging.contracts import RefundRequested


async def _paid(payments: Payments, buyer: Buyer, prices: tuple[str, ...] = ("300.25",)) -> str:
    tx_ref = await payments.open_checkout(buyer, await payments.booking(buyer, prices=prices))
    await payments.buyer_pays_at_provider(tx_ref)
    assert (await payments.verify(buyer, tx_ref)).json()["payment"]["status"] == "success"
    return tx_ref


def _request(
    booking_id: int, user_id: int, amount: str = "300.25", **extra: object
) -> RefundRequested:
    return RefundRequested.model_validate(
        {
            "booking_id": booking_id,
            "user_id": user_id,
            "amount": amount,
            "currency": "ETB",
            "reason": "booking_not_pending",
            **extra,
        }
    )


async def _refunds(payments: Payments) -> list[Refund]:
    async with payments.app.state.sessionmaker() as session:
        return list((await session.scalars(select(Refund).order_by(Refund.id))).all())


async def test_a_refund_request_refunds_the_paid_booking_through_the_provider(
    payments: Payments,
) -> None:
    buyer = payments.buyer()
    tx_ref = await _paid(payments, buyer)
    payment = await payments.payment(tx_ref)

    await payments.send("refund_requested", _request(payment.booking_id, buyer.user_id))

    refunded = await payments.payment(tx_ref)
    assert refunded.status == "refunded"
    assert refunded.refunded_at is not None
    assert refunded.refund_reference
    [record] = await _refunds(payments)
    assert record.outcome == "refunded"
    assert record.amount == Decimal("300.25")
    assert record.provider_reference == refunded.refund_reference
    [event] = await payments.outbox("payment_refunded")
    assert event["payload"]["tx_ref"] == tx_ref
    assert event["payload"]["amount"] == "300.25"
    view = (await payments.verify(buyer, tx_ref)).json()
    assert view["message"] == "payment refunded"
    assert view["payment"]["status"] == "refunded"
    assert view["payment"]["refund_reference"] == refunded.refund_reference


async def test_the_provider_itself_records_the_refund(payments: Payments) -> None:
    buyer = payments.buyer()
    tx_ref = await _paid(payments, buyer)
    payment = await payments.payment(tx_ref)

    await payments.send(
        "refund_requested", _request(payment.booking_id, buyer.user_id, tx_ref=tx_ref)
    )

    if payments.fake_chapa is not None:
        assert payments.fake_chapa.transactions[tx_ref].status == "refunded"
    else:
        async with payments.payment_engine.connect() as conn:
            status = await conn.scalar(
                text("SELECT status FROM simulated_provider_transactions WHERE tx_ref = :t"),
                {"t": tx_ref},
            )
        assert status == "refunded"


async def test_two_refund_requests_for_one_booking_refund_once(payments: Payments) -> None:
    buyer = payments.buyer()
    tx_ref = await _paid(payments, buyer)
    booking_id = (await payments.payment(tx_ref)).booking_id

    await asyncio.gather(
        payments.send("refund_requested", _request(booking_id, buyer.user_id)),
        payments.send(
            "refund_requested", _request(booking_id, buyer.user_id, reason="cancelled_by_user")
        ),
    )

    assert [r.outcome for r in await _refunds(payments)] == ["refunded"]
    assert len(await payments.outbox("payment_refunded")) == 1


async def test_a_refund_request_with_nothing_paid_is_recorded_and_acknowledged(
    simulated: Payments,
) -> None:
    buyer = simulated.buyer()
    tx_ref = await simulated.open_checkout(buyer, await simulated.booking(buyer))
    booking_id = (await simulated.payment(tx_ref)).booking_id

    await simulated.send("refund_requested", _request(booking_id, buyer.user_id))
    await simulated.send("refund_requested", _request(424242, buyer.user_id))

    records = await _refunds(simulated)
    assert [(r.booking_id, r.outcome) for r in records] == [
        (booking_id, "nothing_to_refund"),
        (424242, "nothing_to_refund"),
    ]
    assert (await simulated.payment(tx_ref)).status == "pending"
    assert await simulated.outbox("payment_refunded") == []


async def test_a_refund_the_provider_refuses_goes_to_the_dead_letter_queue(
    simulated: Payments,
) -> None:
    buyer = simulated.buyer()
    tx_ref = await _paid(simulated, buyer)
    booking_id = (await simulated.payment(tx_ref)).booking_id
    async with simulated.payment_engine.begin() as conn:  # the provider lost track of it
        await conn.execute(text("UPDATE simulated_provider_transactions SET status = 'failed'"))
    request = _request(booking_id, buyer.user_id)
    envelope = Envelope(
        message_id=uuid.uuid4(),
        type="refund_requested",
        occurred_at=utcnow(),
        producer="booking_service",
        payload=request.model_dump(mode="json"),
    )

    async with simulated.app.state.sessionmaker() as session:
        ctx = MessageContext(
            session=session,
            envelope=envelope,
            app=simulated.app,
            queue="payment_service.refund_requested",
            attempt=1,
        )
        with pytest.raises(PermanentFailure):
            await on_refund_requested(ctx, request)

    assert (await simulated.payment(tx_ref)).status == "success"
