"""PDF tickets, rendered once and kept.

Rendering is CPU work an on-sale's busiest minutes cannot spare twice, so a booking's PDF
is rendered when its confirmation email is first composed, stored in ``tickets``, and
re-served by that email's retries and by every download. A booking confirmed before
tickets were kept has none until its first download renders and stores it.

Two first renders of one booking at once (the email and a download, two downloads) both
succeed: the first insert wins (``ON CONFLICT DO NOTHING`` on the booking id) and both
serve the stored bytes, so every copy of a ticket is the same file.

Every access is one statement, committed on its own, on the notifier's raw pool: no
connection is held while a PDF waits for its turn to render or while a download asks
booking_service.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import asyncpg

from notification_service import metrics
from notification_service.settings import NotificationSettings
from notification_service.tickets import TicketDetails, render_ticket_pdf

#: PDFs rendered at once per process. Rendering is pure-Python CPU work that holds the
#: GIL, so more threads add no speed, only memory (each render holds its document and
#: font subsets): under an on-sale the consumers' prefetch would otherwise start a render
#: per delivered message. Renders beyond these wait in the pool's queue.
RENDERS_AT_ONCE = 2
_RENDER_POOL = ThreadPoolExecutor(max_workers=RENDERS_AT_ONCE, thread_name_prefix="ticket-pdf")


async def render_ticket(details: TicketDetails, settings: NotificationSettings) -> bytes:
    """The PDF for a booking, a signed QR code per seat (off the event loop: rendering is
    CPU work)."""
    render = partial(
        render_ticket_pdf, details, settings.ticket_signing_secret, settings.ticket_font_dirs
    )
    context = contextvars.copy_context()  # log lines keep the message's ids
    return await asyncio.get_running_loop().run_in_executor(_RENDER_POOL, context.run, render)


_STORED = "SELECT pdf FROM tickets WHERE booking_id = $1"
_KEEP = """
INSERT INTO tickets (booking_id, pdf) VALUES ($1, $2)
ON CONFLICT (booking_id) DO NOTHING
RETURNING booking_id
"""


@dataclass(frozen=True, slots=True)
class TicketStore:
    pg: asyncpg.Pool
    settings: NotificationSettings

    async def stored(self, booking_id: int) -> bytes | None:
        pdf: bytes | None = await self.pg.fetchval(_STORED, booking_id)
        if pdf is not None:
            metrics.TICKETS.labels("stored").inc()
        return pdf

    async def keep(self, booking_id: int, pdf: bytes) -> bytes:
        """Store ``pdf`` unless the booking has a ticket already; return the stored one.

        A conflicting insert waits for the other's commit, so the stored ticket is there
        for the second statement to read."""
        if await self.pg.fetchval(_KEEP, booking_id, pdf) is not None:
            return pdf
        kept: bytes = await self.pg.fetchval(_STORED, booking_id)
        return kept

    async def issue(self, details: TicketDetails) -> bytes:
        """The booking's ticket: the stored one, or rendered from ``details`` and stored."""
        pdf = await self.stored(details.booking_id)
        if pdf is None:
            pdf = await self.keep(details.booking_id, await render_ticket(details, self.settings))
            metrics.TICKETS.labels("rendered").inc()
        return pdf
