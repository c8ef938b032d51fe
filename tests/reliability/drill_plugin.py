"""Pytest plumbing of the drills: the buyer pool, the tally and its summary, the full-set switch.

Each drill module imports ``drill_kit_fixture`` (the ``drill_kit`` fixture). The buyer pool
behind it is signed up once per run and shared by every drill, and the first drill
registers a small plugin that prints the summary table at the end of the run (before
pytest's closing line), so nothing needs a conftest.

The default run (``scripts/test``, CI) runs the drills that restart only the stack's own
processes; those that restart the machine's shared PostgreSQL, Redis and RabbitMQ run with
``DRILLS=full``, which ``scripts/drills`` sets.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.conftest import Mailbox
from tests.reliability.drills import (
    DrillBuyer,
    DrillResult,
    Fault,
    SaleConfig,
    run_drill,
    sign_up_buyers,
    summary_lines,
)

BUYERS = 40
FULL_SET = os.environ.get("DRILLS", "").lower() == "full"

full_set_only = pytest.mark.skipif(
    not FULL_SET,
    reason="restarts shared infrastructure: in the full drill set only (scripts/drills)",
)

_PLUGIN_NAME = "ticketing-drill-summary"


class DrillSummary:
    """A pytest plugin holding every drill's result; prints them as the run ends."""

    def __init__(self) -> None:
        self.results: list[DrillResult] = []
        self.buyers: list[DrillBuyer] | None = None
        self._signing_up = asyncio.Lock()

    async def buyer_pool(self, mailbox: Mailbox) -> list[DrillBuyer]:
        async with self._signing_up:
            if self.buyers is None:
                self.buyers = await sign_up_buyers(mailbox, BUYERS)
        return self.buyers

    def pytest_terminal_summary(
        self, terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
    ) -> None:
        if not self.results:
            return
        terminalreporter.section("failure drills")
        for line in summary_lines(self.results):
            terminalreporter.write_line(line)


def drill_summary(config: pytest.Config) -> DrillSummary:
    plugin = config.pluginmanager.get_plugin(_PLUGIN_NAME)
    if plugin is None:
        plugin = DrillSummary()
        config.pluginmanager.register(plugin, _PLUGIN_NAME)
    assert isinstance(plugin, DrillSummary)
    return plugin


@dataclass
class DrillKit:
    """What a drill needs: the shared buyers, the captured mail, the tally."""

    buyers: list[DrillBuyer]
    mailbox: Mailbox
    summary: DrillSummary
    results: list[DrillResult] = field(default_factory=list)

    async def run(
        self,
        name: str,
        *,
        fault: Fault | None = None,
        config: SaleConfig | None = None,
        allow_resent_ticket_copies: bool = False,
        settle_timeout: float = 120.0,
    ) -> DrillResult:
        """``drills.run_drill`` with this run's buyers, mailbox and summary."""
        return await run_drill(
            name,
            self.buyers,
            self.mailbox,
            self.summary.results.append,
            fault=fault,
            config=config,
            allow_resent_ticket_copies=allow_resent_ticket_copies,
            settle_timeout=settle_timeout,
        )


@pytest.fixture(scope="session", name="drill_kit")
async def drill_kit_fixture(
    mailbox: Mailbox, pytestconfig: pytest.Config
) -> AsyncIterator[DrillKit]:
    """The buyer pool (forty buyers, signed up once per run) and the summary's tally."""
    summary = drill_summary(pytestconfig)
    buyers = await summary.buyer_pool(mailbox)
    yield DrillKit(buyers, mailbox, summary)
    if summary.buyers is not None:
        summary.buyers = None
        await asyncio.gather(*(buyer.client.aclose() for buyer in buyers))
