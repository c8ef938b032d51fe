"""Whether every ticket of the flash sale went out, and how long after its payment.

After the sale the harness reads the bench stack's own databases: the sale's confirmed
bookings (booking_db), when each was paid (payment_db, ``payments.paid_at``) and when its
ticket email was sent (notification_db, ``notifications`` of type ``booking_confirmed``
with status ``sent``). A booking's lag is its ticket email's ``sent_at`` minus its
``paid_at``. Tickets trail the sale (notification_service renders and sends them in the
background), so the harness polls, bounded, until none is missing, and says how long
after the sale's load ended the last one went out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from bench.baselines import percentile
from devstack import infra
from devstack.config import Stack

POLL_SECONDS = 2.0

CONFIRMED_BOOKINGS = "SELECT id FROM bookings WHERE event_id = $1 AND status = 'confirmed'"
PAID_AT = """SELECT booking_id, min(paid_at) FROM payments
WHERE booking_id = any($1::bigint[]) AND paid_at IS NOT NULL GROUP BY booking_id"""
SENT_TICKETS = """SELECT booking_id, count(*), min(sent_at) FROM notifications
WHERE type = 'booking_confirmed' AND status = 'sent' AND booking_id = any($1::bigint[])
GROUP BY booking_id"""


@dataclass(frozen=True)
class SaleRecords:
    """What the three databases hold about the sale's confirmed bookings."""

    confirmed: Sequence[int]
    #: booking id → when its payment succeeded
    paid_at: Mapping[int, datetime]
    #: booking id → (ticket emails sent for it, when the first one was sent)
    sent: Mapping[int, tuple[int, datetime]]


@dataclass(frozen=True)
class TicketEmails:
    """The ticket emails of the sale's confirmed bookings, as read after the sale."""

    confirmed: int
    #: confirmed bookings with at least one sent ticket email
    sent: int
    #: confirmed bookings with more than one sent ticket email
    duplicated: int
    #: confirmed bookings with no paid payment on record (no lag can be computed)
    unpaid: int
    lag_p50_s: float | None
    lag_p99_s: float | None
    lag_max_s: float | None
    #: the last ticket email's sent_at minus the moment the sale's load ended (negative:
    #: every email went out while the load still ran); None when none was sent
    last_sent_after_load_s: float | None
    #: how long the harness waited after the load for the backlog, and its bound
    waited_s: float
    timeout_s: float

    @property
    def missing(self) -> int:
        return self.confirmed - self.sent

    @property
    def met(self) -> bool:
        return self.missing == 0


def ticket_emails(
    records: SaleRecords, *, load_ended_at: datetime, waited_s: float, timeout_s: float
) -> TicketEmails:
    """The figures of :class:`TicketEmails` from what the databases returned."""
    lags = []
    sent = duplicated = unpaid = 0
    last_sent: datetime | None = None
    for booking_id in records.confirmed:
        paid = records.paid_at.get(booking_id)
        unpaid += paid is None
        found = records.sent.get(booking_id)
        if found is None:
            continue
        count, sent_at = found
        sent += 1
        duplicated += count > 1
        last_sent = sent_at if last_sent is None else max(last_sent, sent_at)
        if paid is not None:
            lags.append((sent_at - paid).total_seconds())
    return TicketEmails(
        confirmed=len(records.confirmed),
        sent=sent,
        duplicated=duplicated,
        unpaid=unpaid,
        lag_p50_s=percentile(lags, 0.5) if lags else None,
        lag_p99_s=percentile(lags, 0.99) if lags else None,
        lag_max_s=max(lags) if lags else None,
        last_sent_after_load_s=(
            (last_sent - load_ended_at).total_seconds() if last_sent is not None else None
        ),
        waited_s=waited_s,
        timeout_s=timeout_s,
    )


async def _connect(database: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        host="127.0.0.1",
        port=5432,
        user=infra.DB_ROLE,
        password=infra.DB_ROLE_PASSWORD,
        database=database,
    )


async def _read(
    bookings: asyncpg.Connection,
    payments: asyncpg.Connection,
    notifications: asyncpg.Connection,
    event_id: int,
) -> SaleRecords:
    confirmed = [int(row[0]) for row in await bookings.fetch(CONFIRMED_BOOKINGS, event_id)]
    paid = await payments.fetch(PAID_AT, confirmed)
    sent = await notifications.fetch(SENT_TICKETS, confirmed)
    return SaleRecords(
        confirmed=confirmed,
        paid_at={int(row[0]): row[1] for row in paid},
        sent={int(row[0]): (int(row[1]), row[2]) for row in sent},
    )


async def _wait(
    stack: Stack, event_id: int, load_ended_at: datetime, timeout_s: float
) -> TicketEmails:
    async with contextlib.AsyncExitStack() as opened:
        connections = []
        for service in ("booking_service", "payment_service", "notification_service"):
            connection = await _connect(stack.database(service))
            opened.push_async_callback(connection.close)
            connections.append(connection)
        bookings, payments, notifications = connections
        started = time.monotonic()
        while True:
            records = await _read(bookings, payments, notifications, event_id)
            waited = time.monotonic() - started
            figures = ticket_emails(
                records, load_ended_at=load_ended_at, waited_s=waited, timeout_s=timeout_s
            )
            if figures.met or waited >= timeout_s:
                return figures
            await asyncio.sleep(POLL_SECONDS)


def wait_for_ticket_emails(
    stack: Stack, event_id: int, *, load_ended_at: datetime, timeout_s: float
) -> TicketEmails:
    """Poll until every confirmed booking of ``event_id`` has its ticket email, bounded."""
    return asyncio.run(_wait(stack, event_id, load_ended_at, timeout_s))
