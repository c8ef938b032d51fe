"""Drills: a service of the stack is SIGKILLed mid-sale and started again.

No graceful shutdown: requests in flight are cut, unacknowledged messages go back to their
queues, a half-done booking or email is left as it was. The buyers retry (bookings with
their Idempotency-Key) and every promise must still hold once the service is back.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import Mailbox
from tests.reliability.drill_faults import kill_and_restart
from tests.reliability.drill_plugin import DrillKit, drill_kit_fixture  # noqa: F401
from tests.reliability.drills import Sale

pytestmark = [pytest.mark.stack, pytest.mark.drill, pytest.mark.timeout(900)]


async def test_booking_service_sigkilled_twice_mid_sale_loses_no_paid_booking(
    drill_kit: DrillKit,
) -> None:
    async def kill_booking_service(sale: Sale) -> None:
        for point in (0.3, 0.65):
            await sale.reached(point)
            await kill_and_restart("booking_service", down_for=2.0)

    result = await drill_kit.run("SIGKILL booking_service", fault=kill_booking_service)

    assert result.retried["502"] > 0, f"no buyer met the dead booking_service: {result.retried}"


def _tickets_received(mailbox: Mailbox) -> int:
    with mailbox.lock:
        return sum(1 for m in mailbox.messages if str(m["Subject"]).startswith("Your ticket"))


async def test_notification_service_sigkilled_while_sending_tickets_still_sends_each_one(
    drill_kit: DrillKit,
) -> None:
    async def kill_while_sending(sale: Sale) -> None:
        await sale.reached(0.3)
        before = _tickets_received(drill_kit.mailbox)
        deadline = time.monotonic() + 60
        while _tickets_received(drill_kit.mailbox) < before + 3:  # tickets are going out now
            assert time.monotonic() < deadline, "no ticket email went out during the sale"
            await asyncio.sleep(0.05)
        await kill_and_restart("notification_service", down_for=2.0)

    await drill_kit.run(
        "SIGKILL notification_service",
        fault=kill_while_sending,
        # killed between the SMTP server's 250 and recording the send, a ticket goes out
        # again with the same Message-ID (notification_service.service documents it)
        allow_resent_ticket_copies=True,
        # a send cut by the kill stays leased (handler timeout + 15 s) before its retry
        settle_timeout=240.0,
    )
