"""Drill: the SMTP server refuses everything (421, try later) for a while mid-sale."""

from __future__ import annotations

import asyncio

import pytest

from tests.reliability.drill_faults import smtp_down
from tests.reliability.drill_plugin import DrillKit, drill_kit_fixture  # noqa: F401
from tests.reliability.drills import Sale

pytestmark = [pytest.mark.stack, pytest.mark.drill, pytest.mark.timeout(600)]

SMTP_DOWN_SECONDS = 15.0


async def test_smtp_server_down_mid_sale_delays_tickets_but_sends_each_exactly_once(
    drill_kit: DrillKit,
) -> None:
    async def mail_server_outage(sale: Sale) -> None:
        await sale.reached(0.25)
        with smtp_down(drill_kit.mailbox):
            await asyncio.sleep(SMTP_DOWN_SECONDS)

    result = await drill_kit.run("SMTP server down", fault=mail_server_outage)

    assert result.ticket_retries > 0, "the outage refused no ticket email: it tested nothing"
