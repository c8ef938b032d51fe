"""Drills on the shared infrastructure: RabbitMQ stopped, Redis wiped, PostgreSQL restarted.

These restart the machine's own servers, which every other user of the machine shares, so
they run only in the full drill set (``scripts/drills`` sets ``DRILLS=full``). Each fault
is undone in ``finally`` and the drill waits for every service to be ready again.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.reliability.drill_faults import (
    rabbitmq_stopped,
    restart_postgres,
    restart_redis_wiped,
    wait_stack_ready,
)
from tests.reliability.drill_plugin import DrillKit, drill_kit_fixture, full_set_only  # noqa: F401
from tests.reliability.drills import Sale

pytestmark = [pytest.mark.stack, pytest.mark.drill, pytest.mark.timeout(900), full_set_only]


async def test_rabbitmq_stopped_for_ten_seconds_mid_sale_loses_no_message(
    drill_kit: DrillKit,
) -> None:
    async def broker_outage(sale: Sale) -> None:
        await sale.reached(0.3)
        async with rabbitmq_stopped():
            await asyncio.sleep(10)
        await wait_stack_ready()

    result = await drill_kit.run("RabbitMQ stopped 10 s", fault=broker_outage)

    assert result.messages_held_back > 0, "no message waited for the broker: it tested nothing"


async def test_redis_restarted_with_its_data_wiped_mid_sale_sells_no_seat_twice(
    drill_kit: DrillKit,
) -> None:
    async def redis_wipe(sale: Sale) -> None:
        await sale.reached(0.4)
        await restart_redis_wiped()
        await wait_stack_ready()

    await drill_kit.run("Redis wiped", fault=redis_wipe)


async def test_postgresql_restarted_mid_sale_loses_no_paid_booking(drill_kit: DrillKit) -> None:
    async def database_restart(sale: Sale) -> None:
        await sale.reached(0.3)
        await restart_postgres(down_for=3.0)
        await wait_stack_ready()

    await drill_kit.run("PostgreSQL restarted", fault=database_restart)
