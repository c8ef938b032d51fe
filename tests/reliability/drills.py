"""Flash-sale drills: the sale driver and the invariants every drill must keep (issue 11).

A drill is one event put on sale to the session's pool of buyers through the gateway while
something fails (see ``drill_faults``). Each buyer books seats (named or general), pays on
the simulated provider's checkout, declines, walks away, or pays only after the hold ran
out; every call that meets an outage (5xx, 429, a dropped connection) is retried as a real
client would, a booking with the same ``Idempotency-Key``.

When the sale is over, ``settle_and_check`` waits past the hold TTL and then reads what the
system really did (every service's database, Redis, the captured mail) until everything
in flight has landed or the deadline passes, and fails the drill on any broken promise:

- no seat in two active bookings, no seat sold twice (booking_db, event_db and Redis agree);
- every successful payment is either a booking confirmed exactly once (one
  ``booking_confirmed`` message) or, for a booking that had expired, refunded;
- every confirmed booking has exactly one ticket email (mailbox) and one sent notification;
- after the TTL no seat is held and no booking is pending; Redis availability equals
  PostgreSQL's, through the public API as well;
- every outbox row of the drill was published and reached the inbox of every service
  that subscribes to its routing key (a message missing there is counted as lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from importlib import import_module
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from devstack.config import SERVICES
from tests.conftest import TEST_STACK, Mailbox, gateway_client
from tests.support_auth import bearer, register_user
from tests.support_events import create_event, signed_headers

TICKET_CLASSES = ("normal", "vip", "vvip")
#: statuses a client meets during an outage, and retries
RETRYABLE = frozenset({429, 500, 502, 503, 504})
#: how long one step of a buyer (one call) keeps retrying before the drill counts it lost
STEP_DEADLINE_SECONDS = 75.0
#: the fewest seconds between two calls of one buyer (gateway: 10 r/s per address)
BUYER_PACE_SECONDS = 0.15
#: refreshed before a sale when older than this (access tokens live 15 minutes)
TOKEN_REFRESH_AFTER_SECONDS = 8 * 60
#: a late payer presses Pay this long after the booking's expires_at
LATE_PAY_MARGIN_SECONDS = 3.0
#: past the last expires_at, this long before the checks may expect no hold and no pending
SETTLE_MARGIN_SECONDS = 4.0

_TICKET_FILENAME = re.compile(r"^ticket-(\d+)\.pdf$")


# -- buyers -------------------------------------------------------------------------------


@dataclass
class DrillBuyer:
    """A verified ``user`` with a gateway client of its own loopback address."""

    email: str
    user_id: int
    client: httpx.AsyncClient
    access_token: str
    refresh_token: str
    signed_in_at: float = field(default_factory=time.monotonic)
    _last_call: float = 0.0

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)

    async def pace(self) -> None:
        """Keep this address well under the gateway's per-IP rate."""
        wait = self._last_call + BUYER_PACE_SECONDS - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_call = time.monotonic()

    async def refresh_if_stale(self) -> None:
        if time.monotonic() - self.signed_in_at < TOKEN_REFRESH_AFTER_SECONDS:
            return
        response = await self.client.post(
            "/api/auth/refresh-token", json={"refresh_token": self.refresh_token}
        )
        assert response.status_code == 200, f"refresh {self.email}: {response.text}"
        body = response.json()
        self.access_token = body["access_token"]
        self.refresh_token = body["refresh_token"]
        self.signed_in_at = time.monotonic()


async def sign_up_buyers(mailbox: Mailbox, count: int, at_once: int = 8) -> list[DrillBuyer]:
    """``count`` registered, email-verified, signed-in buyers (argon2: done once a session)."""
    gate = asyncio.Semaphore(at_once)

    async def sign_up() -> DrillBuyer:
        client = gateway_client(timeout=20.0)
        async with gate:
            email, _, tokens = await register_user(client, mailbox)
        return DrillBuyer(
            email=email,
            user_id=int(tokens["user_id"]),
            client=client,
            access_token=str(tokens["access_token"]),
            refresh_token=str(tokens["refresh_token"]),
        )

    return list(await asyncio.gather(*(sign_up() for _ in range(count))))


# -- the sale -----------------------------------------------------------------------------


class Plan(StrEnum):
    """What a buyer does with a booking once it has it."""

    PAY = "pay"
    DECLINE = "decline"
    ABANDON = "abandon"  # never pays: the booking expires, its seats come back
    LATE_PAY = "late_pay"  # pays after the hold ran out: the payment must be refunded


class GaveUp(Exception):
    """A call kept failing for longer than ``STEP_DEADLINE_SECONDS``."""


@dataclass
class Attempt:
    """One booking a buyer tried to make, as the buyer saw it."""

    buyer: str
    plan: Plan
    key: str
    outcome: str = "unknown"  # created | refused | gave_up | rejected:<status>
    booking_id: int | None = None
    expires_at: datetime | None = None
    tx_ref: str | None = None
    payment_status: str | None = None  # what verify said last


@dataclass(frozen=True)
class SaleConfig:
    bookings_per_buyer: int = 6
    #: a buyer's pause between two bookings (seconds, uniform)
    think_seconds: tuple[float, float] = (0.3, 2.0)
    #: abandoned and late-paid bookings only among each buyer's first ones, so that the
    #: last hold runs out early and the drill need not wait a TTL after the sale
    early_bookings: int = 2
    p_abandon: float = 0.15
    p_late_pay: float = 0.12
    p_decline: float = 0.1
    #: share of bookings that ask for general seats (a count of a class)
    p_general: float = 0.2
    #: share of bookings whose buyer looks at the public seat map first
    p_look_at_map: float = 0.5
    seed: int | None = None


@dataclass
class SaleStats:
    """What the buyers met on the way: retried statuses and transport errors."""

    retried: Counter[str] = field(default_factory=Counter)
    server_errors: Counter[str] = field(default_factory=Counter)

    def met(self, what: str) -> None:
        self.retried[what] += 1


class Sale:
    """A flash sale of one event to the pool of buyers, all at once, each at its own pace."""

    def __init__(self, event: dict[str, Any], buyers: list[DrillBuyer], config: SaleConfig) -> None:
        self.event = event
        self.buyers = buyers
        self.config = config
        self.rng = random.Random(config.seed)
        self.attempts: list[Attempt] = []
        self.stats = SaleStats()
        self.total = len(buyers) * config.bookings_per_buyer
        self._known_taken: set[str] = set()
        self._late_payments: list[asyncio.Task[None]] = []
        self._all_seats = [
            f"{ticket_class}-{index // event['seats_per_row'] + 1}-"
            f"{index % event['seats_per_row'] + 1}"
            for ticket_class in TICKET_CLASSES
            for index in range(int(event[f"seats_{ticket_class}"]))
        ]

    @property
    def progress(self) -> float:
        return len(self.attempts) / self.total

    async def reached(self, fraction: float, timeout: float = 120.0) -> None:
        """Wait until ``fraction`` of the planned bookings have been attempted."""
        deadline = time.monotonic() + timeout
        while self.progress < fraction:
            assert time.monotonic() < deadline, f"the sale never reached {fraction:.0%}"
            await asyncio.sleep(0.05)

    async def run(self) -> None:
        for buyer in self.buyers:
            await buyer.refresh_if_stale()
        await asyncio.gather(*(self._shop(buyer) for buyer in self.buyers))
        await asyncio.gather(*self._late_payments)

    # -- one buyer ------------------------------------------------------------------------

    async def _shop(self, buyer: DrillBuyer) -> None:
        await asyncio.sleep(self.rng.uniform(0, 0.5))  # everyone arrives in the same second
        for number in range(self.config.bookings_per_buyer):
            attempt = Attempt(buyer.email, self._plan(number), key=f"drill-{uuid.uuid4()}")
            self.attempts.append(attempt)
            try:
                await self._book_and_settle(buyer, attempt)
            except GaveUp:
                attempt.outcome = "gave_up" if attempt.booking_id is None else attempt.outcome
                self.stats.met("gave_up")
            await asyncio.sleep(self.rng.uniform(*self.config.think_seconds))

    def _plan(self, number: int) -> Plan:
        roll = self.rng.random()
        if number < self.config.early_bookings:
            if roll < self.config.p_abandon:
                return Plan.ABANDON
            roll -= self.config.p_abandon
            if roll < self.config.p_late_pay:
                return Plan.LATE_PAY
            roll -= self.config.p_late_pay
        return Plan.DECLINE if roll < self.config.p_decline else Plan.PAY

    async def _book_and_settle(self, buyer: DrillBuyer, attempt: Attempt) -> None:
        if self.rng.random() < self.config.p_look_at_map:
            await self._look_at_seat_map(buyer)
        response = await self.call(
            buyer,
            "POST",
            "/api/bookings",
            json=self._booking_body(),
            headers={"Idempotency-Key": attempt.key},
        )
        if response.status_code == 409:
            attempt.outcome = "refused"
            details = response.json().get("details") or {}
            self._known_taken.update(details.get("seat_ids") or [])
            return
        if response.status_code not in (200, 201):
            attempt.outcome = f"rejected:{response.status_code}"
            return
        booking = response.json()["booking"]
        attempt.outcome = "created"
        attempt.booking_id = int(booking["id"])
        attempt.expires_at = datetime.fromisoformat(booking["expires_at"])
        self._known_taken.update(seat["seat_id"] for seat in booking["seat_list"])
        if attempt.plan is Plan.ABANDON:
            return
        attempt.tx_ref = await self._initialize_payment(buyer, attempt)
        if attempt.tx_ref is None:
            return
        if attempt.plan is Plan.LATE_PAY:
            self._late_payments.append(asyncio.create_task(self._pay_late(buyer, attempt)))
            return
        await self._checkout(buyer, attempt, "decline" if attempt.plan is Plan.DECLINE else "pay")

    def _booking_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"event_id": self.event["id"]}
        free = [seat for seat in self._all_seats if seat not in self._known_taken]
        if self.rng.random() < self.config.p_general or not free:
            classes = [c for c in TICKET_CLASSES if int(self.event[f"seats_{c}"]) > 0]
            body |= {"ticket_class": self.rng.choice(classes), "seat_count": self.rng.randint(1, 2)}
        else:
            picked = self.rng.sample(free, k=min(len(free), self.rng.choice((1, 1, 2, 2, 3))))
            body["seats"] = [{"id": seat} for seat in picked]
        return body

    async def _look_at_seat_map(self, buyer: DrillBuyer) -> None:
        response = await self.call(buyer, "GET", f"/api/events/{self.event['id']}/seats")
        if response.status_code == 200:
            seats = response.json()["seats"]
            self._known_taken = {s["seat_id"] for s in seats if s["status"] != "available"}

    async def _initialize_payment(self, buyer: DrillBuyer, attempt: Attempt) -> str | None:
        response = await self.call(
            buyer, "POST", "/api/payments/initialize", json={"booking_id": attempt.booking_id}
        )
        if response.status_code != 200:
            # e.g. 409: the booking expired while an outage kept the buyer from paying
            attempt.payment_status = f"not_initialized:{response.status_code}"
            return None
        return str(response.json()["tx_ref"])

    async def _pay_late(self, buyer: DrillBuyer, attempt: Attempt) -> None:
        assert attempt.expires_at is not None
        delay = attempt.expires_at.timestamp() - time.time() + LATE_PAY_MARGIN_SECONDS
        await asyncio.sleep(max(0.0, delay))
        try:
            await self._checkout(buyer, attempt, "pay")
        except GaveUp:
            self.stats.met("gave_up")

    async def _checkout(self, buyer: DrillBuyer, attempt: Attempt, action: str) -> None:
        """Press Pay or Decline on the hosted page, then verify as the return page does."""
        pressed = await self.call(
            buyer, "POST", f"/api/payments/checkout/{attempt.tx_ref}/{action}"
        )
        if pressed.status_code != 303:
            attempt.payment_status = f"unexpected:{action} answered {pressed.status_code}"
            return
        deadline = time.monotonic() + STEP_DEADLINE_SECONDS
        while True:
            verified = await self.call(buyer, "GET", f"/api/payments/verify/{attempt.tx_ref}")
            if verified.status_code != 200:
                attempt.payment_status = f"unexpected:verify answered {verified.status_code}"
                return
            attempt.payment_status = str(verified.json()["payment"]["status"])
            if attempt.payment_status != "pending":
                return
            if time.monotonic() > deadline:
                raise GaveUp(f"payment {attempt.tx_ref} still pending")
            await asyncio.sleep(0.5)

    # -- calls through the gateway --------------------------------------------------------

    async def call(
        self,
        buyer: DrillBuyer,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call, retried through outages (5xx, 429, connection errors) with back-off."""
        deadline = time.monotonic() + STEP_DEADLINE_SECONDS
        backoff = 0.25
        while True:
            await buyer.pace()
            try:
                response = await buyer.client.request(
                    method, path, headers={**buyer.headers, **(headers or {})}, **kwargs
                )
            except httpx.TransportError as exc:
                self.stats.met(type(exc).__name__)
            else:
                if response.status_code not in RETRYABLE:
                    return response
                self.stats.met(str(response.status_code))
                if response.status_code == 500:
                    self.stats.server_errors[f"{method} {_route(path)}"] += 1
            if time.monotonic() > deadline:
                raise GaveUp(f"{method} {path}")
            await asyncio.sleep(backoff * self.rng.uniform(0.5, 1.5))
            backoff = min(backoff * 2, 3.0)


def _route(path: str) -> str:
    """``/api/payments/verify/tkt-12-ab`` -> ``/api/payments/verify/{id}``: one line per route."""
    return re.sub(r"/[^/]*\d[^/]*", "/{id}", path)


# -- what the system did ------------------------------------------------------------------


def consumers_by_key() -> dict[str, set[str]]:
    """routing key -> the services consuming it (their ``consumers.SUBSCRIPTIONS``)."""
    consumers: dict[str, set[str]] = defaultdict(set)
    for service in SERVICES:
        for subscription in import_module(f"{service}.consumers").SUBSCRIPTIONS:
            consumers[subscription.routing_key].add(service)
    return consumers


@contextlib.asynccontextmanager
async def databases() -> AsyncIterator[dict[str, asyncpg.Connection]]:
    """A connection to each service's database of the test stack (the test's privilege)."""
    connections: dict[str, asyncpg.Connection] = {}
    try:
        for service in SERVICES:
            connections[service] = await asyncpg.connect(
                host="127.0.0.1",
                port=5432,
                user="ticketing",
                password="ticketing",
                database=TEST_STACK.database(service),
                timeout=10,
            )
        yield connections
    finally:
        await asyncio.gather(*(c.close() for c in connections.values()), return_exceptions=True)


async def database_now() -> datetime:
    async with databases() as db:
        now: datetime = await db["booking_service"].fetchval("SELECT now()")
    return now


@dataclass
class TicketMail:
    """Ticket emails captured since the drill began: booking id -> Message-IDs received."""

    mailbox: Mailbox
    start: int
    by_booking: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    _seen: int = 0

    def scan(self) -> dict[int, list[str]]:
        with self.mailbox.lock:
            new = self.mailbox.messages[max(self.start, self._seen) :]
            self._seen = len(self.mailbox.messages)
        for message in new:
            for attachment in message.iter_attachments():
                match = _TICKET_FILENAME.match(str(attachment.get_filename() or ""))
                if match:
                    self.by_booking[int(match.group(1))].append(str(message["Message-ID"]))
        return self.by_booking


@dataclass
class Observation:
    """One look at the system: promises already broken, and work still in flight."""

    broken: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


@dataclass
class Drill:
    """What the checks need to know about the drill that ran."""

    name: str
    event: dict[str, Any]
    sale: Sale
    started_at: datetime  # PostgreSQL's clock: scopes the drill's outbox messages
    mail: TicketMail
    #: a notification_service killed after the SMTP server's 250 but before it recorded
    #: the send sends the same email (same Message-ID) again: DESIGN accepts that window
    allow_resent_ticket_copies: bool = False


async def observe(drill: Drill, subscribers: dict[str, set[str]]) -> Observation:
    seen = Observation()
    event_id = int(drill.event["id"])
    async with databases() as db:
        await _check_bookings_and_sales(db, drill, seen)
        await _check_payments(db, drill, seen)
        await _check_tickets(db, drill, seen)
        await _check_messages(db, drill, subscribers, seen)
        sold = {
            r["seat_id"]
            for r in await db["event_service"].fetch(
                "SELECT seat_id FROM event_seats_sold WHERE event_id = $1", event_id
            )
        }
    await _check_gate(drill, sold, seen)
    return seen


async def _check_bookings_and_sales(
    db: dict[str, asyncpg.Connection], drill: Drill, seen: Observation
) -> None:
    event_id = int(drill.event["id"])
    bookings = {
        r["id"]: r
        for r in await db["booking_service"].fetch(
            "SELECT id, status, expires_at, payment_tx_ref FROM bookings WHERE event_id = $1",
            event_id,
        )
    }
    seats = await db["booking_service"].fetch(
        "SELECT booking_id, seat_id, status FROM booking_seats WHERE event_id = $1", event_id
    )
    now = await db["booking_service"].fetchval("SELECT now()")
    seen.counts["bookings"] = len(bookings)
    for status in ("pending", "confirmed", "expired", "failed", "cancelled"):
        seen.counts[status] = sum(1 for b in bookings.values() if b["status"] == status)

    active: dict[str, list[int]] = defaultdict(list)
    confirmed_owners: dict[str, set[int]] = defaultdict(set)
    for seat in seats:
        booking = bookings[seat["booking_id"]]
        if seat["status"] != booking["status"]:
            seen.broken.append(
                f"booking {booking['id']} is {booking['status']} but its seat "
                f"{seat['seat_id']} is {seat['status']}"
            )
        if booking["status"] in ("pending", "confirmed"):
            active[seat["seat_id"]].append(booking["id"])
        if booking["status"] == "confirmed":
            confirmed_owners[seat["seat_id"]].add(booking["id"])
    for seat_id, holders in active.items():
        if len(holders) > 1:
            seen.broken.append(f"seat {seat_id} is in active bookings {sorted(holders)}")
    for booking in bookings.values():
        if (
            booking["status"] == "pending"
            and booking["expires_at"] + timedelta(seconds=SETTLE_MARGIN_SECONDS) < now
        ):
            seen.in_flight.append(f"booking {booking['id']} still pending past its expiry")

    sold = await db["event_service"].fetch(
        "SELECT seat_id, ticket_class, booking_id FROM event_seats_sold WHERE event_id = $1",
        event_id,
    )
    owners: dict[str, set[int]] = defaultdict(set)
    for seat_id, booking_ids in confirmed_owners.items():
        owners[seat_id] |= booking_ids
    for row in sold:
        owners[row["seat_id"]].add(row["booking_id"])
        if row["seat_id"] not in confirmed_owners:
            seen.in_flight.append(
                f"seat {row['seat_id']} sold to booking {row['booking_id']}, "
                f"which booking_service has not confirmed"
            )
    for seat_id in confirmed_owners.keys() - {row["seat_id"] for row in sold}:
        seen.in_flight.append(f"seat {seat_id} of a confirmed booking is not sold in event_db")
    double = sorted(seat_id for seat_id, ids in owners.items() if len(ids) > 1)
    seen.counts["double_sold"] = len(double)
    for seat_id in double:
        seen.broken.append(f"seat {seat_id} sold twice: bookings {sorted(owners[seat_id])}")

    counters = await db["event_service"].fetchrow(
        "SELECT seats_normal, seats_vip, seats_vvip, sold_normal, sold_vip, sold_vvip "
        "FROM events WHERE id = $1",
        event_id,
    )
    by_class = Counter(row["ticket_class"] for row in sold)
    for ticket_class in TICKET_CLASSES:
        if counters[f"sold_{ticket_class}"] != by_class[ticket_class]:
            seen.in_flight.append(
                f"event_db counts {counters[f'sold_{ticket_class}']} {ticket_class} sold, "
                f"its sold seats are {by_class[ticket_class]}"
            )

    messages = await db["booking_service"].fetch(
        "SELECT (envelope->'payload'->>'booking_id')::bigint AS booking_id, count(*) AS n "
        "FROM outbox_messages WHERE routing_key = 'booking_confirmed' "
        "AND (envelope->'payload'->>'event_id')::bigint = $1 GROUP BY 1",
        event_id,
    )
    announced = {r["booking_id"]: r["n"] for r in messages}
    for booking in bookings.values():
        times = announced.get(booking["id"], 0)
        expected = 1 if booking["status"] == "confirmed" else 0
        if times != expected:
            seen.broken.append(
                f"booking {booking['id']} ({booking['status']}) announced confirmed {times} times"
            )


async def _event_bookings(db: dict[str, asyncpg.Connection], event_id: int) -> dict[int, Any]:
    rows = await db["booking_service"].fetch(
        "SELECT id, status, total_amount, payment_tx_ref FROM bookings WHERE event_id = $1",
        event_id,
    )
    return {r["id"]: r for r in rows}


async def _check_payments(
    db: dict[str, asyncpg.Connection], drill: Drill, seen: Observation
) -> None:
    bookings = await _event_bookings(db, int(drill.event["id"]))
    payments = await db["payment_service"].fetch(
        "SELECT booking_id, tx_ref, status, amount FROM payments WHERE booking_id = ANY($1)",
        list(bookings),
    )
    ledger = {
        r["tx_ref"]: r["status"]
        for r in await db["payment_service"].fetch(
            "SELECT tx_ref, status FROM simulated_provider_transactions WHERE tx_ref = ANY($1)",
            [p["tx_ref"] for p in payments],
        )
    }
    refunds = {
        r["tx_ref"]
        for r in await db["booking_service"].fetch(
            "SELECT tx_ref FROM booking_refunds WHERE booking_id = ANY($1)", list(bookings)
        )
    }
    paid = [p for p in payments if p["status"] in ("success", "refunded")]
    seen.counts["paid"] = len(paid)
    seen.counts["refunded"] = sum(1 for p in paid if p["status"] == "refunded")
    seen.counts["payments_failed"] = sum(1 for p in payments if p["status"] == "failed")
    by_tx = {p["tx_ref"]: p for p in payments}

    for payment in payments:
        booking = bookings[payment["booking_id"]]
        if payment["amount"] != booking["total_amount"]:
            seen.broken.append(
                f"payment {payment['tx_ref']} charged {payment['amount']}, "
                f"booking {booking['id']} costs {booking['total_amount']}"
            )
        provider = ledger.get(payment["tx_ref"])
        if provider in ("success", "refunded") and payment["status"] not in ("success", "refunded"):
            seen.in_flight.append(
                f"the provider took payment {payment['tx_ref']}, payment_service has it "
                f"{payment['status']}"
            )
    for payment in paid:
        booking = bookings[payment["booking_id"]]
        confirmed_by_it = (
            booking["status"] == "confirmed" and booking["payment_tx_ref"] == payment["tx_ref"]
        )
        if confirmed_by_it and payment["status"] == "refunded":
            seen.broken.append(
                f"booking {booking['id']} is confirmed but its payment {payment['tx_ref']} "
                f"was refunded"
            )
        elif confirmed_by_it:
            continue
        elif payment["status"] == "refunded":
            if booking["status"] != "expired":
                seen.broken.append(
                    f"payment {payment['tx_ref']} refunded for a booking that is "
                    f"{booking['status']}, not expired"
                )
            if payment["tx_ref"] not in refunds:
                seen.broken.append(f"payment {payment['tx_ref']} refunded, never requested")
        elif booking["status"] == "confirmed":
            seen.broken.append(
                f"booking {booking['id']} confirmed by {booking['payment_tx_ref']}, while "
                f"payment {payment['tx_ref']} also succeeded"
            )
        else:
            seen.in_flight.append(
                f"payment {payment['tx_ref']} succeeded; booking {booking['id']} is "
                f"{booking['status']} and the payment not refunded"
            )
    for booking in bookings.values():
        if booking["status"] != "confirmed":
            continue
        payment = by_tx.get(booking["payment_tx_ref"])
        if payment is None or payment["status"] != "success":
            seen.broken.append(
                f"booking {booking['id']} confirmed without a successful payment "
                f"({booking['payment_tx_ref']})"
            )
    for attempt in drill.sale.attempts:
        if attempt.payment_status == "success" and attempt.tx_ref is not None:
            payment = by_tx.get(attempt.tx_ref)
            if payment is None or payment["status"] not in ("success", "refunded"):
                seen.broken.append(
                    f"the buyer was told payment {attempt.tx_ref} succeeded; payment_service "
                    f"has it {payment['status'] if payment else 'nowhere'}"
                )


async def _check_tickets(
    db: dict[str, asyncpg.Connection], drill: Drill, seen: Observation
) -> None:
    bookings = await _event_bookings(db, int(drill.event["id"]))
    confirmed = {b for b, row in bookings.items() if row["status"] == "confirmed"}
    notifications = await db["notification_service"].fetch(
        "SELECT booking_id, status, attempts FROM notifications "
        "WHERE type = 'booking_confirmed' AND booking_id = ANY($1)",
        list(bookings),
    )
    seen.counts["ticket_retries"] = sum(1 for row in notifications if row["attempts"] > 1)
    logged: dict[int, list[str]] = defaultdict(list)
    for row in notifications:
        logged[row["booking_id"]].append(row["status"])
    mail = drill.mail.scan()
    copies = 0
    for booking_id in bookings:
        statuses = logged.get(booking_id, [])
        received = mail.get(booking_id, [])
        distinct = set(received)
        copies += len(received) - len(distinct)
        if booking_id not in confirmed:
            if received or statuses:
                seen.broken.append(f"booking {booking_id} is not confirmed but got a ticket")
            continue
        if len(statuses) > 1:
            seen.broken.append(f"booking {booking_id} has {len(statuses)} ticket notifications")
        elif statuses == ["failed"]:
            seen.broken.append(f"the ticket email of booking {booking_id} failed for good")
        elif statuses != ["sent"]:
            seen.in_flight.append(f"ticket of booking {booking_id} is {statuses or 'not queued'}")
        if len(distinct) > 1:
            seen.broken.append(f"booking {booking_id} got {len(distinct)} different ticket emails")
        elif not distinct:
            seen.in_flight.append(f"no ticket email for booking {booking_id} yet")
        elif len(received) > 1 and not drill.allow_resent_ticket_copies:
            seen.broken.append(f"booking {booking_id}'s ticket email arrived {len(received)} times")
    seen.counts["tickets_emailed"] = sum(1 for b in confirmed if mail.get(b))
    seen.counts["ticket_copies_resent"] = copies


async def _check_messages(
    db: dict[str, asyncpg.Connection],
    drill: Drill,
    subscribers: dict[str, set[str]],
    seen: Observation,
) -> None:
    """Every outbox row of the drill published, and in each subscriber's inbox once.

    Messages about other events' bookings (earlier tests' pending bookings expiring while
    the drill runs) are not the drill's: a message naming an event or a booking counts only
    when it is this drill's event or one of its bookings.
    """
    event_id = int(drill.event["id"])
    booking_ids = [
        r["id"]
        for r in await db["booking_service"].fetch(
            "SELECT id FROM bookings WHERE event_id = $1", event_id
        )
    ]
    published: list[tuple[uuid.UUID, str]] = []
    for service, connection in db.items():
        rows = await connection.fetch(
            "SELECT message_id, routing_key, published_at IS NOT NULL AS published, "
            "published_at - created_at > interval '5 seconds' AS delayed "
            "FROM outbox_messages WHERE created_at >= $1 "
            "AND (envelope->'payload'->>'event_id' IS NULL "
            "     OR (envelope->'payload'->>'event_id')::bigint = $2) "
            "AND (envelope->'payload'->>'booking_id' IS NULL "
            "     OR (envelope->'payload'->>'booking_id')::bigint = ANY($3::bigint[]))",
            drill.started_at,
            event_id,
            booking_ids,
        )
        for row in rows:
            if row["published"]:
                published.append((row["message_id"], row["routing_key"]))
                seen.counts["messages_held_back"] += int(row["delayed"])
            else:
                seen.in_flight.append(f"{service} has not published {row['routing_key']} yet")
                seen.counts["messages_missing"] += 1
    seen.counts["messages"] = len(published)
    ids = [message_id for message_id, _ in published]
    received: set[tuple[uuid.UUID, str]] = set()
    for connection in db.values():
        for row in await connection.fetch(
            "SELECT message_id, consumer FROM inbox_messages WHERE message_id = ANY($1::uuid[])",
            ids,
        ):
            received.add((row["message_id"], row["consumer"]))
    for message_id, routing_key in published:
        for service in sorted(subscribers.get(routing_key, ())):
            if (message_id, f"{service}.{routing_key}") not in received:
                seen.counts["messages_missing"] += 1
                seen.in_flight.append(f"{service} has not consumed {routing_key} {message_id}")


async def _check_gate(drill: Drill, sold_in_postgres: set[str], seen: Observation) -> None:
    """Redis (directly and through the public API) agrees with PostgreSQL; nothing held."""
    event_id = int(drill.event["id"])
    async with gateway_client() as client:
        seat_map = await client.get(f"/api/events/{event_id}/seats")  # purges expired holds
        public = await client.get(f"/api/events/{event_id}")
    if seat_map.status_code != 200 or public.status_code != 200:
        seen.in_flight.append(f"event_service answers {seat_map.status_code}/{public.status_code}")
        return
    statuses = {s["seat_id"]: s["status"] for s in seat_map.json()["seats"]}
    held = sorted(s for s, status in statuses.items() if status == "held")
    if held:
        seen.in_flight.append(f"seat map shows seats held after the TTL: {held[:10]}")
    if {s for s, status in statuses.items() if status == "sold"} != sold_in_postgres:
        seen.in_flight.append("the public seat map's sold seats differ from event_db")

    prefix = f"event:{{{event_id}}}:"
    redis = aioredis.Redis(port=6379, db=TEST_STACK.redis_db, decode_responses=True)
    try:
        loaded = await redis.exists(prefix + "loaded")
        holds = await redis.hgetall(prefix + "holds")
        sold = await redis.hgetall(prefix + "sold")
        available = {c: await redis.zcard(f"{prefix}available:{c}") for c in TICKET_CLASSES}
    finally:
        await redis.aclose()
    if not loaded:
        seen.in_flight.append("Redis has no seat gate for the event (not rebuilt)")
        return
    if holds:
        seen.in_flight.append(f"Redis still holds {sorted(holds)[:10]} after the TTL")
    if set(sold) != sold_in_postgres:
        seen.in_flight.append(
            f"Redis sold seats differ from event_db: only in Redis "
            f"{sorted(set(sold) - sold_in_postgres)[:10]}, only in PostgreSQL "
            f"{sorted(sold_in_postgres - set(sold))[:10]}"
        )
    body = public.json()
    for ticket_class in TICKET_CLASSES:
        capacity = int(drill.event[f"seats_{ticket_class}"])
        truth = capacity - sum(1 for s in sold_in_postgres if s.startswith(f"{ticket_class}-"))
        if available[ticket_class] != truth or body[f"available_{ticket_class}"] != truth:
            seen.in_flight.append(
                f"{ticket_class} available: PostgreSQL {truth}, Redis {available[ticket_class]}, "
                f"public API {body[f'available_{ticket_class}']}"
            )


# -- running a drill ----------------------------------------------------------------------


@dataclass
class DrillResult:
    """One drill's line in the suite's summary."""

    name: str
    seconds: float = 0.0
    attempted: int = 0
    created: int = 0
    refused: int = 0
    gave_up: int = 0
    paid: int = 0
    confirmed: int = 0
    refunded: int = 0
    payments_failed: int = 0
    expired: int = 0
    double_sold: int = 0
    messages: int = 0
    messages_lost: int = 0
    tickets_emailed: int = 0
    ticket_copies_resent: int = 0
    #: outbox messages published more than 5 s after they were written
    messages_held_back: int = 0
    #: ticket emails that took more than one try to send
    ticket_retries: int = 0
    #: bookings that were no longer payable when the buyer got to pay (an outage in between)
    not_payable: int = 0
    retried: Counter[str] = field(default_factory=Counter)
    server_errors: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


Fault = Callable[[Sale], Coroutine[Any, Any, None]]


async def prepare_drill(
    name: str,
    buyers: list[DrillBuyer],
    mailbox: Mailbox,
    config: SaleConfig | None = None,
    *,
    allow_resent_ticket_copies: bool = False,
    **event_overrides: Any,
) -> Drill:
    """A fresh event of 230 seats (150 normal, 60 VIP, 20 VVIP) and its sale, not started."""
    started_at = await database_now()
    async with gateway_client() as organizer_client:
        event = await create_event(
            organizer_client,
            headers=signed_headers(),
            **{
                "title": f"Drill {name} {uuid.uuid4().hex[:6]}",
                "seats_normal": 150,
                "seats_vip": 60,
                "seats_vvip": 20,
                "seats_per_row": 10,
                **event_overrides,
            },
        )
    with mailbox.lock:
        mail = TicketMail(mailbox, start=len(mailbox.messages))
    sale = Sale(event, buyers, config or SaleConfig())
    return Drill(name, event, sale, started_at, mail, allow_resent_ticket_copies)


async def run_sale(drill: Drill, fault: Fault | None = None) -> None:
    """Run the sale to its end with ``fault`` injected alongside (bounded in time)."""
    bound = STEP_DEADLINE_SECONDS * drill.sale.config.bookings_per_buyer + 120
    async with asyncio.timeout(bound), asyncio.TaskGroup() as sale_and_fault:
        sale_and_fault.create_task(drill.sale.run())
        if fault is not None:
            sale_and_fault.create_task(fault(drill.sale))


async def run_drill(
    name: str,
    buyers: list[DrillBuyer],
    mailbox: Mailbox,
    record: Callable[[DrillResult], None],
    *,
    fault: Fault | None = None,
    config: SaleConfig | None = None,
    allow_resent_ticket_copies: bool = False,
    settle_timeout: float = 120.0,
) -> DrillResult:
    """Put an event on sale, inject ``fault`` mid-sale, check every invariant, record it."""
    began = time.monotonic()
    drill = await prepare_drill(
        name, buyers, mailbox, config, allow_resent_ticket_copies=allow_resent_ticket_copies
    )
    await run_sale(drill, fault)
    result = await settle_and_check(drill, timeout=settle_timeout)
    result.seconds = time.monotonic() - began
    record(result)
    assert result.passed, f"drill {name} broke its promises:\n  " + "\n  ".join(result.problems)
    return result


async def settle_and_check(drill: Drill, *, timeout: float) -> DrillResult:
    """Wait out the last hold, then look until nothing is in flight (or time is up)."""
    # Paid or declined bookings give their seats up (sold or released) without waiting for
    # the TTL; the others (walked away from, paid late, outcome unknown) may hold until it.
    expiries = [
        a.expires_at
        for a in drill.sale.attempts
        if a.expires_at is not None
        and (
            a.plan in (Plan.ABANDON, Plan.LATE_PAY) or a.payment_status not in ("success", "failed")
        )
    ]
    if expiries:
        wait = max(expiries).timestamp() + SETTLE_MARGIN_SECONDS - time.time()
        await asyncio.sleep(max(0.0, wait))
    subscribers = consumers_by_key()
    deadline = time.monotonic() + timeout
    while True:
        try:
            seen = await observe(drill, subscribers)
        except (OSError, asyncpg.PostgresError, redis_errors.RedisError, httpx.HTTPError) as exc:
            seen = Observation(in_flight=[f"cannot look yet: {type(exc).__name__}: {exc}"])
        if seen.broken or not seen.in_flight or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    return _result(drill, seen)


def _result(drill: Drill, seen: Observation) -> DrillResult:
    outcomes = Counter(a.outcome for a in drill.sale.attempts)
    problems = list(seen.broken)
    problems += [f"still not settled at the deadline: {item}" for item in seen.in_flight[:40]]
    gave_up = drill.sale.stats.retried["gave_up"]
    if gave_up:
        problems.append(f"buyers gave up {gave_up} times: the stack did not recover in time")
    problems += [
        f"{count} bookings answered {outcome}"
        for outcome, count in outcomes.items()
        if outcome.startswith("rejected:")
    ]
    payments = Counter(a.payment_status for a in drill.sale.attempts if a.payment_status)
    problems += [
        f"{count} payments: {status.removeprefix('unexpected:')}"
        for status, count in payments.items()
        if status.startswith("unexpected:")
    ]
    return DrillResult(
        name=drill.name,
        attempted=len(drill.sale.attempts),
        created=outcomes["created"],
        refused=outcomes["refused"],
        gave_up=gave_up,
        paid=seen.counts["paid"],
        confirmed=seen.counts["confirmed"],
        refunded=seen.counts["refunded"],
        payments_failed=seen.counts["payments_failed"],
        expired=seen.counts["expired"],
        double_sold=seen.counts["double_sold"],
        messages=seen.counts["messages"],
        messages_lost=seen.counts["messages_missing"],
        tickets_emailed=seen.counts["tickets_emailed"],
        ticket_copies_resent=seen.counts["ticket_copies_resent"],
        ticket_retries=seen.counts["ticket_retries"],
        messages_held_back=seen.counts["messages_held_back"],
        not_payable=sum(n for status, n in payments.items() if status.startswith("not_init")),
        retried=Counter({k: v for k, v in drill.sale.stats.retried.items() if k != "gave_up"}),
        server_errors=drill.sale.stats.server_errors,
        problems=problems,
    )


def summary_lines(results: Iterable[DrillResult]) -> list[str]:
    """The table printed at the end of the suite."""
    results = list(results)
    header = (
        f"{'drill':<28}{'result':>7}{'secs':>6}{'attempted':>10}{'booked':>7}{'paid':>6}"
        f"{'confirmed':>10}{'refunded':>9}{'expired':>8}{'double-sold':>12}{'msgs':>6}"
        f"{'lost':>5}{'tickets':>8}"
    )
    lines = [header]
    for r in results:
        lines.append(
            f"{r.name:<28}{'ok' if r.passed else 'FAILED':>7}{r.seconds:>6.0f}{r.attempted:>10}"
            f"{r.created:>7}{r.paid:>6}{r.confirmed:>10}{r.refunded:>9}{r.expired:>8}"
            f"{r.double_sold:>12}{r.messages:>6}{r.messages_lost:>5}{r.tickets_emailed:>8}"
        )
    for r in results:
        notes = []
        if r.retried:
            notes.append("retried " + ", ".join(f"{k}x{v}" for k, v in r.retried.most_common()))
        if r.server_errors:
            notes.append("500s " + ", ".join(f"{k}x{v}" for k, v in r.server_errors.items()))
        if r.not_payable:
            notes.append(f"{r.not_payable} booking(s) no longer payable when the buyer got to pay")
        if r.messages_held_back:
            notes.append(f"{r.messages_held_back} message(s) waited over 5 s in an outbox")
        if r.ticket_retries:
            notes.append(f"{r.ticket_retries} ticket(s) sent only on a retry")
        if r.ticket_copies_resent:
            notes.append(
                f"{r.ticket_copies_resent} ticket email(s) resent with the same Message-ID"
            )
        if notes:
            lines.append(f"  {r.name}: " + "; ".join(notes))
    lines.append(
        f"drills run {len(results)}, bookings attempted {sum(r.attempted for r in results)}, "
        f"paid {sum(r.paid for r in results)}, confirmed {sum(r.confirmed for r in results)}, "
        f"refunded {sum(r.refunded for r in results)}, "
        f"double-sold {sum(r.double_sold for r in results)}, "
        f"messages lost {sum(r.messages_lost for r in results)}"
    )
    return lines
