"""The drills' checks are not vacuous: tampered with behind the services' backs, a finished
sale shows each kind of broken promise the drills look for, and shows none once restored."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from tests.conftest import TEST_STACK
from tests.reliability.drill_plugin import DrillKit, drill_kit_fixture  # noqa: F401
from tests.reliability.drills import (
    SaleConfig,
    consumers_by_key,
    databases,
    observe,
    prepare_drill,
    run_sale,
    settle_and_check,
)

pytestmark = [pytest.mark.stack, pytest.mark.drill, pytest.mark.timeout(300)]

EVERYONE_PAYS = SaleConfig(
    bookings_per_buyer=1,
    p_abandon=0,
    p_late_pay=0,
    p_decline=0,
    p_general=0,
    p_look_at_map=0,
    think_seconds=(0.0, 0.1),
    seed=11,
)
BOGUS_TOKEN = "drill-self-test"


async def test_checks_catch_a_double_sale_a_lost_message_a_stale_hold_and_an_unsettled_payment(
    drill_kit: DrillKit,
) -> None:
    drill = await prepare_drill("self-test", drill_kit.buyers[:8], drill_kit.mailbox, EVERYONE_PAYS)
    await run_sale(drill)
    clean = await settle_and_check(drill, timeout=60)
    assert clean.passed, clean.problems
    assert clean.confirmed >= 3, clean

    event_id = int(drill.event["id"])
    async with databases() as db:
        first, second, third = await db["booking_service"].fetch(
            "SELECT b.id, b.payment_tx_ref, min(s.seat_id) AS seat_id, "
            "(SELECT message_id FROM outbox_messages o WHERE o.routing_key = 'booking_confirmed' "
            " AND (o.envelope->'payload'->>'booking_id')::bigint = b.id) AS message_id "
            "FROM bookings b JOIN booking_seats s ON s.booking_id = b.id "
            "WHERE b.event_id = $1 AND b.status = 'confirmed' GROUP BY b.id ORDER BY b.id LIMIT 3",
            event_id,
        )
        sold = {
            r["seat_id"]
            for r in await db["event_service"].fetch(
                "SELECT seat_id FROM event_seats_sold WHERE event_id = $1", event_id
            )
        }
    free_seat = next(f"normal-15-{n}" for n in range(10, 0, -1) if f"normal-15-{n}" not in sold)
    inbox_key = "notification_service.booking_confirmed"
    redis = aioredis.Redis(port=6379, db=TEST_STACK.redis_db, decode_responses=True)
    holds = f"event:{{{event_id}}}:holds"

    async with databases() as db:
        # the seat of the first booking, sold in event_db to the second one as well
        await db["event_service"].execute(
            "UPDATE event_seats_sold SET booking_id = $3 WHERE event_id = $1 AND seat_id = $2",
            event_id,
            first["seat_id"],
            second["id"],
        )
        # the first booking's confirmation never reached notification_service
        lost = await db["notification_service"].fetchrow(
            "DELETE FROM inbox_messages WHERE message_id = $1 AND consumer = $2 RETURNING *",
            first["message_id"],
            inbox_key,
        )
        assert lost is not None
        # the third booking paid, yet expired, and no refund asked for
        for table, key in (("bookings", "id"), ("booking_seats", "booking_id")):
            await db["booking_service"].execute(
                f"UPDATE {table} SET status = 'expired' WHERE {key} = $1",  # noqa: S608
                third["id"],
            )
        # a seat held in Redis by nobody, for ever
        await redis.hset(holds, free_seat, BOGUS_TOKEN)
        try:
            seen = await observe(drill, consumers_by_key())
        finally:
            await redis.hdel(holds, free_seat)
            for table, key in (("bookings", "id"), ("booking_seats", "booking_id")):
                await db["booking_service"].execute(
                    f"UPDATE {table} SET status = 'confirmed' WHERE {key} = $1",  # noqa: S608
                    third["id"],
                )
            await db["notification_service"].execute(
                "INSERT INTO inbox_messages (message_id, consumer, routing_key, processed_at) "
                "VALUES ($1, $2, $3, $4)",
                lost["message_id"],
                lost["consumer"],
                lost["routing_key"],
                lost["processed_at"],
            )
            await db["event_service"].execute(
                "UPDATE event_seats_sold SET booking_id = $3 WHERE event_id = $1 AND seat_id = $2",
                event_id,
                first["seat_id"],
                first["id"],
            )
            await redis.aclose()

    broken, in_flight = "\n".join(seen.broken), "\n".join(seen.in_flight)
    assert seen.counts["double_sold"] == 1, broken
    assert f"seat {first['seat_id']} sold twice" in broken
    assert f"notification_service has not consumed booking_confirmed {first['message_id']}" in (
        in_flight
    )
    assert f"Redis still holds ['{free_seat}']" in in_flight
    assert (
        f"payment {third['payment_tx_ref']} succeeded; booking {third['id']} is expired "
        f"and the payment not refunded" in in_flight
    )
    assert f"booking {third['id']} (expired) announced confirmed 1 times" in broken
    assert f"booking {third['id']} is not confirmed but got a ticket" in broken

    restored = await observe(drill, consumers_by_key())
    assert not restored.broken, restored.broken
    assert not restored.in_flight, restored.in_flight
