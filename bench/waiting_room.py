"""Row 6: an on-sale behind the event's waiting room (``k6/waiting_room.js``).

Thousands of buyers join one event's queue within seconds, some before the sale opens and
most after; the room admits them at a set rate (the purchase rate row 3 measured in the
same run, or a fixed rate when the row runs alone), and each admitted buyer books with its
pass, pays and verifies. The row reports how soon the first buyer went in, the admitted
buyers' booking and payment latency, whether the queue was fair (early arrivals shuffled,
later ones in arrival order), how far the wait the room estimated was from the wait a
buyer had, and, read back at the end, that no seat was sold twice.

**Accounts.** One place per account, so the row needs one account per buyer: 5,000, where
signing each up through the API (an argon2id hash per registration, on purpose) would take
about nine minutes. They are made the way auth_service itself makes a verified account,
without the hashing per account: the users are inserted into the bench stack's auth
database as verified, active buyers with one argon2id hash of the bench password (made by
auth_service's own :class:`~auth_service.passwords.PasswordHasher` with the stack's
settings), and each gets a session from auth_service's own
:meth:`~auth_service.tokens.TokenStore.start_session` (what a verification or a login
calls) with the bench stack's settings, so the access and refresh tokens are exactly what
auth_service would issue, the refresh family sits in the stack's Redis, and every service
verifies the tokens as usual. Before the row, the gateway checks a few of them (``GET
/api/auth/me``) and one password sign-in (the real argon2id check).

**Fairness.** The order is the server's: ``joined_at`` and ``admitted_at`` from the room's
answers. The room admits once per tick, so buyers admitted in the same tick share an
``admitted_at``: rank correlations use average ranks for ties, and "pairs in order" counts
only pairs joined at different moments and admitted in different ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import asyncpg

from bench.baselines import percentile
from bench.k6 import K6Result, run_k6
from bench.logscan import LoggedProblem, LogWindow, RouteFigures
from bench.prepare import PASSWORD, Account, BenchData, Gateway, _call, _expect, login
from bench.procstats import ProcessSampler
from devstack.config import Stack

SCRIPT = "waiting_room.js"
#: one loopback address per buyer (5,080), apart from the other rows' and the tests'
LOCAL_IPS = "127.0.101.1-127.0.120.254"
#: the admission rate when the run measured no purchase rate (``--only queue``)
DEFAULT_ADMIT_PER_MINUTE = 1200
#: what ``queue_admit_per_minute`` accepts
ADMIT_PER_MINUTE_RANGE = (1, 60_000)
#: booking, initialize, pay and verify of an admitted buyer, each
QUEUE_P99_TARGET_MS = 500.0
#: early arrivals are shuffled: join and admission order unrelated (|Spearman's rho| at most
#: this, or three standard errors of a random order, whichever is larger)
EARLY_RHO_LIMIT = 0.1
#: later arrivals go in as they came: this share of their pairs (or more) in order
LATE_IN_ORDER_TARGET = 0.99
QUEUE_BUYERS_TARGET = 5000
QUEUE_JOIN_SECONDS_TARGET = 10.0
#: the purchase steps of an admitted buyer, as k6/waiting_room.js names their trends
QUEUE_STEPS = {
    "booking": "queue_booking_duration",
    "initialize": "queue_initialize_duration",
    "pay": "queue_pay_duration",
    "verify": "queue_verify_duration",
}
BUYER_LINE = "queue-buyer "
SALE_LINE = "queue-sale "
#: the share of each class in the sale's seats (normal, vip; vvip takes the rest)
CLASS_SHARES = (0.8, 0.15)
#: at most this share of the buyers can be served: demand exceeds supply, as at an on-sale
SERVED_SHARE = 0.6

INSERT_USERS = """INSERT INTO users
    (email, password_hash, role, status, is_verified, verified_at, last_login_at)
SELECT email, $2, 'user', 'active', true, now(), now() FROM unnest($1::text[]) AS t(email)
RETURNING id, email"""


@dataclass(frozen=True)
class QueuePlan:
    """How big the row is. The full run's is the issue's: 5,000 buyers join within 10 s."""

    buyers: int = QUEUE_BUYERS_TARGET
    join_seconds: float = QUEUE_JOIN_SECONDS_TARGET
    #: the sale opens this long after the first buyer may join
    onsale_after_s: float = 2.0
    #: seats for this many seconds of admissions at the rate (at most SERVED_SHARE of the
    #: buyers): after that the event is sold out and the room sends the others home
    sell_seconds: float = 100.0
    seats_per_buyer: int = 2
    #: a buyer still waiting this long after the sale opened gives up
    wait_seconds: float = 150.0
    max_duration: str = "3m"
    drain_seconds: int = 30

    def seats(self, admit_per_minute: int) -> tuple[int, int, int]:
        """Normal, VIP and VVIP seats for ``sell_seconds`` of admissions at the rate."""
        served = min(admit_per_minute / 60 * self.sell_seconds, SERVED_SHARE * self.buyers)
        total = max(3, math.ceil(served) * self.seats_per_buyer)
        normal = math.floor(total * CLASS_SHARES[0])
        vip = math.floor(total * CLASS_SHARES[1])
        return normal, vip, total - normal - vip


FULL_QUEUE = QueuePlan()
QUICK_QUEUE = QueuePlan(
    buyers=300,
    join_seconds=5,
    onsale_after_s=1,
    sell_seconds=10,
    wait_seconds=60,
    max_duration="1m30s",
)


def admission_rate(purchases: int, seconds: float | None) -> int | None:
    """Purchases a minute over ``seconds`` as an admission rate the room accepts."""
    if purchases <= 0 or not seconds or seconds <= 0:
        return None
    low, high = ADMIT_PER_MINUTE_RANGE
    return max(low, min(high, round(purchases / seconds * 60)))


# -- accounts ------------------------------------------------------------------------


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` on top, as a service process of the stack starts."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass(frozen=True)
class MadeAccounts:
    buyers: list[Account]
    seconds: float


async def make_buyers(stack: Stack, count: int) -> MadeAccounts:
    """``count`` verified buyers with live sessions, as auth_service would have them.

    auth_service's settings are read from the environment the stack gives its process,
    so the hash parameters, the JWT secrets, the token lifetimes and the Redis db are the
    running service's.
    """
    # Imported here: only this row needs auth_service's code in the harness.
    from auth_service.models import User, UserStatus
    from auth_service.passwords import PasswordHasher
    from auth_service.settings import AuthSettings
    from auth_service.tokens import TokenStore
    from ticketing_common.redis import create_redis
    from ticketing_common.security import Role

    started = time.monotonic()
    with _environment(stack.service_env("auth_service")):
        settings = AuthSettings()
    hasher = PasswordHasher(settings)
    try:
        password_hash = await hasher.hash(PASSWORD)
    finally:
        hasher.close()
    tag = uuid.uuid4().hex[:8]
    emails = [f"queue-buyer-{tag}-{n:05d}@bench.example.com" for n in range(count)]
    connection = await asyncpg.connect(
        host=settings.db_host,
        port=settings.db_port,
        user=settings.db_user,
        password=settings.db_password,
        database=settings.db_name,
    )
    try:
        rows = await connection.fetch(INSERT_USERS, emails, password_hash)
    finally:
        await connection.close()
    ids = {str(row["email"]): int(row["id"]) for row in rows}
    redis = create_redis(settings)
    tokens = TokenStore(redis, settings)
    limit = asyncio.Semaphore(32)

    async def session(email: str) -> Account:
        user = User(id=ids[email], email=email, role=Role.USER.value, status=UserStatus.ACTIVE)
        async with limit:
            pair = await tokens.start_session(user)
        return Account(email, ids[email], pair.access_token, pair.refresh_token)

    try:
        buyers = await asyncio.gather(*(session(email) for email in emails))
    finally:
        await redis.aclose()
    return MadeAccounts(list(buyers), time.monotonic() - started)


async def check_buyers(gateway_url: str, buyers: Sequence[Account]) -> None:
    """The real services accept the tokens and auth_service the password: or raise."""
    gateway = Gateway(gateway_url)
    async with gateway.client() as client:
        for account in {
            id(a): a for a in (buyers[0], buyers[len(buyers) // 2], buyers[-1])
        }.values():
            response = await _call(
                client,
                "GET",
                "/api/auth/me",
                headers={"Authorization": f"Bearer {account.access_token}"},
            )
            body = _expect(response, 200, f"GET /api/auth/me as {account.email}")
            if int(body["id"]) != account.user_id or body.get("is_verified") is not True:
                raise RuntimeError(f"auth_service does not see {account.email} as made: {body}")
        await login(client, buyers[0].email, PASSWORD)


def write_accounts(base: BenchData, buyers: list[Account], path: Path) -> BenchData:
    """The k6 script's data file: the run's admin and organizer, and the row's buyers."""
    data = BenchData(
        gateway_url=base.gateway_url,
        created_at=datetime.now(UTC).isoformat(),
        admin=base.admin,
        organizer=base.organizer,
        buyers=buyers,
    )
    data.write(path)
    return data


# -- what the buyers saw -------------------------------------------------------------


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class BuyerRecord:
    """One buyer's line: times are epoch milliseconds (the server's for ``*_at_ms``)."""

    vu: int
    user_id: int
    outcome: str
    #: when the buyer sent its join (k6's clock, the same machine's)
    join_sent_ms: int | None = None
    joined_at_ms: int | None = None
    join_status: str | None = None
    #: the first answer the buyer read once the sale was open (its join, or a poll)
    first_ms: int | None = None
    first_status: str | None = None
    first_estimate_s: float | None = None
    admitted_at_ms: int | None = None
    admitted_seen_ms: int | None = None
    polls: int = 0
    #: when the buyer's booking was made (it held seats), if it was
    booked_ms: int | None = None
    paid: bool = False
    refusal: str | None = None
    #: when a buyer that was not admitted read its last answer (sold_out, expired)
    done_ms: int | None = None

    @classmethod
    def of(cls, line: Mapping[str, Any]) -> BuyerRecord:
        return cls(
            vu=_int(line.get("vu")) or 0,
            user_id=_int(line.get("user_id")) or 0,
            outcome=str(line.get("outcome", "unknown")),
            join_sent_ms=_int(line.get("join_sent_ms")),
            joined_at_ms=_int(line.get("joined_at_ms")),
            join_status=line.get("join_status"),
            first_ms=_int(line.get("first_ms")),
            first_status=line.get("first_status"),
            first_estimate_s=_float(line.get("first_estimate_s")),
            admitted_at_ms=_int(line.get("admitted_at_ms")),
            admitted_seen_ms=_int(line.get("admitted_seen_ms")),
            polls=_int(line.get("polls")) or 0,
            booked_ms=_int(line.get("booked_ms")),
            paid=line.get("paid") is True,
            refusal=line.get("refusal"),
            done_ms=_int(line.get("done_ms")),
        )


def read_buyer_lines(path: Path) -> tuple[list[BuyerRecord], dict[str, Any]]:
    """The buyers' records and the sale's line from k6's console output."""
    records: list[BuyerRecord] = []
    sale: dict[str, Any] = {}
    if not path.exists():
        return records, sale
    for line in path.read_text(errors="replace").splitlines():
        try:
            if line.startswith(BUYER_LINE):
                records.append(BuyerRecord.of(json.loads(line[len(BUYER_LINE) :])))
            elif line.startswith(SALE_LINE):
                sale = json.loads(line[len(SALE_LINE) :])
        except ValueError:
            continue
    return records, sale


# -- order statistics ----------------------------------------------------------------


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the average of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rho (Pearson's r of the average ranks); None without two distinct values."""
    if len(xs) != len(ys) or len(xs) < 3:
        return None
    rx, ry = average_ranks(xs), average_ranks(ys)
    mean = (len(xs) + 1) / 2
    covariance = sum((a - mean) * (b - mean) for a, b in zip(rx, ry, strict=True))
    spread_x = math.sqrt(sum((a - mean) ** 2 for a in rx))
    spread_y = math.sqrt(sum((b - mean) ** 2 for b in ry))
    if spread_x == 0 or spread_y == 0:
        return None
    return covariance / (spread_x * spread_y)


def ordered_pairs(xs: Sequence[float], ys: Sequence[float]) -> tuple[int, int]:
    """(pairs in the same order, pairs in opposite orders), over the pairs that differ in
    both ``xs`` and ``ys`` (ties in either say nothing about order). O(n log n)."""
    levels = {y: i + 1 for i, y in enumerate(sorted(set(ys)))}
    tree = [0] * (len(levels) + 1)

    def add(index: int) -> None:
        while index < len(tree):
            tree[index] += 1
            index += index & -index

    def below(index: int) -> int:  # how many inserted have a level <= index
        total = 0
        while index > 0:
            total += tree[index]
            index -= index & -index
        return total

    items = sorted(zip(xs, ys, strict=True))
    same = opposite = inserted = 0
    start = 0
    while start < len(items):
        end = start
        while end < len(items) and items[end][0] == items[start][0]:
            end += 1
        group = [levels[y] for _, y in items[start:end]]
        for level in group:  # against every earlier x, none of its own group
            same += below(level - 1)
            opposite += inserted - below(level)
        for level in group:
            add(level)
        inserted += len(group)
        start = end
    return same, opposite


@dataclass(frozen=True)
class Order:
    """How one group's admission order followed its join order (admitted buyers only)."""

    buyers: int
    rho: float | None
    in_order: int
    out_of_order: int

    @classmethod
    def of(cls, records: Sequence[BuyerRecord], *, by_sending: bool = False) -> Order:
        """By the server's ``joined_at``, or (``by_sending``) when the buyer sent its join."""
        pairs = [
            (float(joined), float(r.admitted_at_ms))
            for r in records
            if (joined := r.join_sent_ms if by_sending else r.joined_at_ms) is not None
            and r.admitted_at_ms is not None
        ]
        joins = [join for join, _ in pairs]
        admissions = [admission for _, admission in pairs]
        same, opposite = ordered_pairs(joins, admissions)
        return cls(len(pairs), spearman(joins, admissions), same, opposite)

    @property
    def share_in_order(self) -> float | None:
        judged = self.in_order + self.out_of_order
        return self.in_order / judged if judged else None

    @property
    def rho_limit(self) -> float:
        """How far from 0 a random order's rho may plausibly land (three standard errors)."""
        return max(EARLY_RHO_LIMIT, 3 / math.sqrt(self.buyers - 1)) if self.buyers > 1 else 1.0

    @property
    def shuffled(self) -> bool:
        return self.rho is not None and abs(self.rho) <= self.rho_limit

    @property
    def in_arrival_order(self) -> bool:
        share = self.share_in_order
        return share is not None and share >= LATE_IN_ORDER_TARGET


@dataclass(frozen=True)
class WaitEstimate:
    """The wait the room estimated at a buyer's first answer after the sale opened, against
    the wait the buyer then had (from that answer to its admission). Error = actual - estimate."""

    samples: int
    median_error_s: float
    median_abs_error_s: float
    p90_abs_error_s: float
    median_estimate_s: float
    median_actual_s: float

    @classmethod
    def of(cls, records: Sequence[BuyerRecord]) -> WaitEstimate | None:
        pairs = [
            (r.first_estimate_s, (r.admitted_at_ms - r.first_ms) / 1000)
            for r in records
            if r.first_status == "queued"
            and r.first_estimate_s is not None
            and r.first_ms is not None
            and r.admitted_at_ms is not None
        ]
        if not pairs:
            return None
        errors = [actual - estimate for estimate, actual in pairs]
        absolute = [abs(error) for error in errors]
        return cls(
            samples=len(pairs),
            median_error_s=percentile(errors, 0.5),
            median_abs_error_s=percentile(absolute, 0.5),
            p90_abs_error_s=percentile(absolute, 0.9),
            median_estimate_s=percentile([estimate for estimate, _ in pairs], 0.5),
            median_actual_s=percentile([actual for _, actual in pairs], 0.5),
        )


# -- the row over time ----------------------------------------------------------------

ACCESS_LOG = "gateway-access.log"
SLICE_SECONDS = 10
PAYMENT_PREFIX = "/api/payments/"


@dataclass(frozen=True)
class Slice:
    """What the gateway logged in one slice of the row (1 s resolution: nginx's ``ts``)."""

    #: seconds after ``onsale_at`` the slice starts
    start_s: int
    joins: int
    polls: int
    #: polls in the slice's busiest second
    peak_polls: int
    bookings: int
    booking_p50_ms: float | None
    booking_p99_ms: float | None
    #: initialize, checkout pay and verify together
    payment_p99_ms: float | None


def _route(method: str, uri: str) -> str | None:
    path = uri.split("?", 1)[0]
    if method == "POST" and path.endswith("/queue"):
        return "join"
    if method == "GET" and path.endswith("/queue/me"):
        return "poll"
    if method == "POST" and path == "/api/bookings":
        return "booking"
    if path.startswith(PAYMENT_PREFIX):
        return "payment"
    return None


def timeline(
    lines: Sequence[Mapping[str, Any]], onsale_ms: int, width: int = SLICE_SECONDS
) -> list[Slice]:
    """The row's requests by ``width``-second slice from ``onsale_at`` (gateway's log)."""
    per_second: dict[int, dict[str, list[float]]] = {}
    for line in lines:
        route = _route(str(line.get("method", "")), str(line.get("uri", "")))
        if route is None:
            continue
        try:
            at = datetime.fromisoformat(str(line["ts"])).timestamp()
            duration_ms = 1000 * float(line.get("duration", 0.0))
        except (KeyError, ValueError):
            continue
        second = math.floor(at - onsale_ms / 1000)
        per_second.setdefault(second, {}).setdefault(route, []).append(duration_ms)
    slices: list[Slice] = []
    if not per_second:
        return slices
    first = math.floor(min(per_second) / width) * width
    for start in range(first, max(per_second) + 1, width):
        seconds = [per_second.get(second, {}) for second in range(start, start + width)]

        def of(route: str, seconds: list[dict[str, list[float]]] = seconds) -> list[float]:
            return [d for second in seconds for d in second.get(route, [])]

        bookings, payments = of("booking"), of("payment")
        slices.append(
            Slice(
                start_s=start,
                joins=len(of("join")),
                polls=len(of("poll")),
                peak_polls=max(len(second.get("poll", [])) for second in seconds),
                bookings=len(bookings),
                booking_p50_ms=percentile(bookings, 0.5) if bookings else None,
                booking_p99_ms=percentile(bookings, 0.99) if bookings else None,
                payment_p99_ms=percentile(payments, 0.99) if payments else None,
            )
        )
    return slices


class AccessLogWindow:
    """The gateway's access-log lines written while the row ran."""

    def __init__(self, log_dir: Path) -> None:
        self.path = log_dir / ACCESS_LOG
        self._start = 0
        self.lines: list[dict[str, Any]] = []

    def _size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def __enter__(self) -> AccessLogWindow:
        self._start = self._size()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._size()
        if end <= self._start:
            return
        with self.path.open("rb") as handle:
            handle.seek(self._start)
            chunk = handle.read(end - self._start).decode(errors="replace")
        for text in chunk.splitlines():
            with contextlib.suppress(ValueError):
                line = json.loads(text)
                if isinstance(line, dict):
                    self.lines.append(line)


# -- the row -------------------------------------------------------------------------


@dataclass
class QueueRow:
    plan: QueuePlan
    admit_per_minute: int
    #: where the rate came from, in words
    rate_source: str
    seats: tuple[int, int, int]
    accounts_seconds: float
    records: list[BuyerRecord]
    sale: dict[str, Any]
    run: K6Result
    processes: ProcessSampler
    services: list[str]
    gateway: dict[tuple[str, str], RouteFigures] = field(default_factory=dict)
    problems: list[LoggedProblem] = field(default_factory=list)
    console: Path | None = None
    #: the gateway's view of the row, slice by slice from onsale_at
    slices: list[Slice] = field(default_factory=list)

    # what k6 counted and read back

    def _count(self, metric: str) -> int:
        return int(self.run.value(metric, "count"))

    def _gauge(self, metric: str) -> int:
        return int(self.run.value(metric, "value"))

    @property
    def capacity(self) -> int:
        return sum(self.seats)

    @property
    def sold(self) -> int:
        return self._gauge("queue_sold_seats")

    @property
    def confirmed_bookings(self) -> int:
        return self._gauge("queue_confirmed_bookings")

    @property
    def double_sold(self) -> int:
        return self._count("queue_double_sold")

    @property
    def oversold(self) -> int:
        return self._count("queue_oversold")

    @property
    def inconsistent(self) -> int:
        return self._count("queue_inconsistent")

    @property
    def lost_bookings(self) -> int:
        return self._count("queue_lost_bookings")

    @property
    def stuck_pending(self) -> int:
        return self._count("queue_stuck_pending")

    @property
    def unexpected(self) -> int:
        return self._count("queue_unexpected")

    @property
    def pass_refused(self) -> int:
        return self._count("queue_pass_refused")

    @property
    def payment_failed(self) -> int:
        return self._count("queue_payment_failed")

    @property
    def polls(self) -> int:
        return self._count("queue_polls")

    @property
    def gate_refuses(self) -> bool:
        return self.run.value("queue_gate_refusals_ok", "value") == 1

    @property
    def room_sold_out(self) -> bool:
        return self.run.value("queue_room_sold_out", "value") == 1

    def p99_ms(self, step: str) -> float | None:
        metric = QUEUE_STEPS[step]
        return self.run.value(metric, "p(99)") if metric in self.run.metrics else None

    @property
    def poll_p99_ms(self) -> float:
        return self.run.value("queue_poll_duration", "p(99)")

    @property
    def join_p99_ms(self) -> float:
        return self.run.value("queue_join_duration", "p(99)")

    # what the buyers' lines say

    @property
    def onsale_ms(self) -> int | None:
        return _int(self.sale.get("onsaleAt"))

    @property
    def joined(self) -> list[BuyerRecord]:
        return [r for r in self.records if r.joined_at_ms is not None]

    def outcomes(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.records)

    @cached_property
    def early(self) -> list[BuyerRecord]:
        """Joined before the sale opened (the server's join time against ``onsale_at``)."""
        onsale = self.onsale_ms
        return [r for r in self.joined if onsale is not None and (r.joined_at_ms or 0) < onsale]

    @cached_property
    def late(self) -> list[BuyerRecord]:
        onsale = self.onsale_ms
        return [r for r in self.joined if onsale is None or (r.joined_at_ms or 0) >= onsale]

    @property
    def admitted(self) -> list[BuyerRecord]:
        return [r for r in self.records if r.admitted_at_ms is not None]

    @property
    def bought(self) -> int:
        return sum(r.paid for r in self.records)

    @property
    def status_mismatches(self) -> int:
        """Buyers whose join answer's status disagrees with their join time and onsale_at."""
        early = {id(r) for r in self.early}
        return sum(
            (r.join_status == "waiting") != (id(r) in early)
            for r in self.joined
            if r.join_status in ("waiting", "queued")
        )

    @property
    def join_spread_s(self) -> float | None:
        joins = [r.joined_at_ms for r in self.joined if r.joined_at_ms is not None]
        return (max(joins) - min(joins)) / 1000 if len(joins) > 1 else None

    @property
    def first_admission_s(self) -> float | None:
        """From ``onsale_at`` to the first admission (the server's times)."""
        admissions = [r.admitted_at_ms for r in self.admitted if r.admitted_at_ms is not None]
        onsale = self.onsale_ms
        return (min(admissions) - onsale) / 1000 if admissions and onsale is not None else None

    def _after_onsale_s(self, moments: list[int]) -> float | None:
        onsale = self.onsale_ms
        return (moments[0] - onsale) / 1000 if moments and onsale is not None else None

    @property
    def last_booking_s(self) -> float | None:
        """From ``onsale_at`` to the last booking that got seats (as its buyer read it)."""
        booked = [r.booked_ms for r in self.records if r.booked_ms]
        return self._after_onsale_s([max(booked)] if booked else [])

    @property
    def sold_out_told_s(self) -> float | None:
        """From ``onsale_at`` to the first waiting buyer told ``sold_out``."""
        return self._after_onsale_s(
            sorted(r.done_ms for r in self.records if r.outcome == "sold_out" and r.done_ms)
        )

    @property
    def measured_admit_per_minute(self) -> float | None:
        """Admissions a minute from the first to the last, as the buyers' answers dated them."""
        admissions = sorted(r.admitted_at_ms for r in self.admitted if r.admitted_at_ms)
        if len(admissions) < 2 or admissions[-1] <= admissions[0]:
            return None
        return (len(admissions) - 1) / ((admissions[-1] - admissions[0]) / 60_000)

    @property
    def notice_delays_s(self) -> list[float]:
        """How long after its admission each buyer read it (its polling interval's share)."""
        return [
            (r.admitted_seen_ms - r.admitted_at_ms) / 1000
            for r in self.admitted
            if r.admitted_seen_ms is not None and r.admitted_at_ms is not None
        ]

    @cached_property
    def early_order(self) -> Order:
        return Order.of(self.early)

    @cached_property
    def late_order(self) -> Order:
        return Order.of(self.late)

    @cached_property
    def sent_late_order(self) -> Order:
        """The buyers who sent their join after ``onsale_at``, in the order they sent it."""
        onsale = self.onsale_ms
        sent_late = [
            r
            for r in self.joined
            if onsale is not None and r.join_sent_ms is not None and r.join_sent_ms >= onsale
        ]
        return Order.of(sent_late, by_sending=True)

    @property
    def sent_early_dated_late(self) -> int:
        """Joins sent before ``onsale_at`` that the server dated after it (a queued join)."""
        onsale = self.onsale_ms
        if onsale is None:
            return 0
        return sum(
            r.join_sent_ms is not None and r.join_sent_ms < onsale <= (r.joined_at_ms or 0)
            for r in self.joined
        )

    @property
    def join_lags_s(self) -> list[float]:
        """From sending a join to the server's ``joined_at``, per buyer."""
        return [
            (r.joined_at_ms - r.join_sent_ms) / 1000
            for r in self.joined
            if r.joined_at_ms is not None and r.join_sent_ms is not None
        ]

    @cached_property
    def estimate(self) -> WaitEstimate | None:
        return WaitEstimate.of(self.records)

    @property
    def polls_per_second(self) -> float:
        return self.polls / self.processes.seconds if self.processes.seconds else 0.0

    # verdicts

    @property
    def correct(self) -> bool:
        """Nothing sold twice, oversold, out of step with the seat map, or paid and lost."""
        return (
            self.double_sold == 0
            and self.oversold == 0
            and self.inconsistent == 0
            and self.lost_bookings == 0
        )

    def misses(self) -> list[str]:
        missed = []
        if self.double_sold:
            missed.append(f"{self.double_sold} double-sold")
        if self.oversold or self.inconsistent or self.lost_bookings:
            missed.append(
                f"{self.oversold} oversold, {self.inconsistent} seats out of step with the "
                f"seat map, {self.lost_bookings} paid bookings lost"
            )
        if self.plan.buyers < QUEUE_BUYERS_TARGET or self.plan.join_seconds > (
            QUEUE_JOIN_SECONDS_TARGET
        ):
            missed.append(
                f"{self.plan.buyers:,} buyers in {self.plan.join_seconds:g} s: not the target size"
            )
        if not self.gate_refuses:
            missed.append("the room let a booking through without a valid pass")
        for step in QUEUE_STEPS:
            p99 = self.p99_ms(step)
            if p99 is None:
                missed.append(f"{step} not timed")
            elif p99 >= QUEUE_P99_TARGET_MS:
                missed.append(f"{step} p99 {p99:,.0f} ms")
        early, late = self.early_order, self.late_order
        if early.rho is None:
            missed.append("early arrivals' order not measured")
        elif not early.shuffled:
            missed.append(f"early arrivals not shuffled (rho {early.rho:+.2f})")
        share = late.share_in_order
        if share is None:
            missed.append("later arrivals' order not measured")
        elif not late.in_arrival_order:
            missed.append(f"later arrivals {share:.1%} in order")
        if self.pass_refused:
            missed.append(f"{self.pass_refused:,} admitted buyers' passes refused")
        if self.unexpected:
            missed.append(f"{self.unexpected:,} unexpected answers")
        return missed

    @property
    def met(self) -> bool:
        return not self.misses()


def measure(
    *,
    plan: QueuePlan,
    stack: Stack,
    base: BenchData,
    admit_per_minute: int,
    rate_source: str,
    pids: Mapping[str, int],
    gateway_pids: Callable[[], list[int]],
    services: list[str],
    k6_logs: Path,
    data_file: Path,
    say: Callable[[str], None],
) -> QueueRow:
    """Make the row's accounts, run ``k6/waiting_room.js`` and read what the buyers saw."""
    say(f"row 6: making {plan.buyers:,} buyer accounts (auth_db rows, auth_service's sessions)")
    made = asyncio.run(make_buyers(stack, plan.buyers))
    asyncio.run(check_buyers(base.gateway_url, made.buyers))
    write_accounts(base, made.buyers, data_file)
    say(f"row 6: {plan.buyers:,} accounts in {made.seconds:.1f} s, checked through the gateway")
    seats = plan.seats(admit_per_minute)
    normal, vip, vvip = seats
    say(
        f"row 6: waiting room, {plan.buyers:,} buyers join within {plan.join_seconds:g} s, "
        f"admission {admit_per_minute:,}/min, {sum(seats):,} seats"
    )
    env = {
        "BENCH_DATA": str(data_file),
        "BASE_URL": base.gateway_url,
        "BUYERS": str(plan.buyers),
        "JOIN_SECONDS": str(plan.join_seconds),
        "ONSALE_AFTER_S": str(plan.onsale_after_s),
        "ADMIT_PER_MINUTE": str(admit_per_minute),
        "SEATS_NORMAL": str(normal),
        "SEATS_VIP": str(vip),
        "SEATS_VVIP": str(vvip),
        "SEATS_PER_BUYER": str(plan.seats_per_buyer),
        "QUEUE_WAIT_S": str(plan.wait_seconds),
        "MAX_DURATION": plan.max_duration,
        "DRAIN_TIMEOUT_S": str(plan.drain_seconds),
        "P99_MS": str(int(QUEUE_P99_TARGET_MS)),
    }
    console = k6_logs / "waiting_room-buyers.jsonl"
    k6_logs.mkdir(parents=True, exist_ok=True)
    console.unlink(missing_ok=True)
    with (
        LogWindow(stack.log_dir) as logs,
        AccessLogWindow(stack.log_dir) as access,
        ProcessSampler(pids, gateway_pids) as processes,
    ):
        result = run_k6(
            SCRIPT,
            env=env,
            log_dir=k6_logs,
            local_ips=LOCAL_IPS,
            extra_args=["--log-format", "raw", "--console-output", str(console)],
            label="waiting_room",
        )
    records, sale = read_buyer_lines(console)
    onsale = _int(sale.get("onsaleAt"))
    return QueueRow(
        plan=plan,
        admit_per_minute=admit_per_minute,
        rate_source=rate_source,
        seats=seats,
        accounts_seconds=made.seconds,
        records=records,
        sale=sale,
        run=result,
        processes=processes,
        services=services,
        gateway=logs.gateway_routes(),
        problems=logs.problems(services),
        console=console,
        slices=timeline(access.lines, onsale) if onsale is not None else [],
    )
