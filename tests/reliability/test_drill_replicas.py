"""Drill: the whole flash sale runs against two replicas of booking_service and event_service.

Both replicas sit behind the gateway for the whole sale, consume from the same queues and
run the same background loops (expiry, outbox relay); the gateway's access log proves that
each replica really served buyers.
"""

from __future__ import annotations

import pytest

from tests.reliability.drill_faults import GatewayLog, two_replicas_of
from tests.reliability.drill_plugin import DrillKit, drill_kit_fixture  # noqa: F401

pytestmark = [pytest.mark.stack, pytest.mark.drill, pytest.mark.timeout(600)]


async def test_flash_sale_on_two_replicas_sells_each_seat_once_and_loses_no_message(
    drill_kit: DrillKit,
) -> None:
    log = GatewayLog()
    async with two_replicas_of("booking_service", "event_service") as ports:
        await drill_kit.run("two replicas")
        served = await log.upstreams()

    for service, replica_ports in ports.items():
        for port in replica_ports:
            assert served[str(port)] > 0, f"{service} on :{port} served nothing: {served}"
