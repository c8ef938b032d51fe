"""What one benchmark run measured, row by row, and whether each target was met."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.baselines import HoldScriptRate, InsertRate
from bench.k6 import K6Result
from bench.logscan import LoggedProblem, RouteFigures
from bench.procstats import ProcessSampler
from bench.profiling import ProfileSummary
from bench.seat_map import SeatMapRow
from bench.ticket_emails import TicketEmails
from bench.waiting_room import QueueRow

# The issues' targets for this 2-core machine, everything on one box.
READ_SHARE_TARGET = 0.5
#: row 2: bookings/s as a share of PostgreSQL's booking-insert ceiling (pgbench, same run)
BOOKINGS_SHARE_TARGET = 0.12
BOOKINGS_SHARE_AIM = 0.20
BOOKING_P99_TARGET_MS = 250.0
FLASH_P99_TARGET_MS = 1000.0
#: initialize, pay (the checkout POST) and verify, each
FLASH_STEP_P99_TARGET_MS = 1000.0
FLASH_SELL_OUT_TARGET_S = 90.0
FLASH_SEATS_TARGET = 10_000
FLASH_BUYERS_TARGET = 500
#: CPU of the five services per completed (paid and confirmed) purchase
PURCHASE_CPU_TARGET_MS = 25.0
SERVICE_RSS_TARGET_MB = 150.0
# The payment steps of a flash-sale purchase, as k6/flash_sale.js names their trends.
FLASH_STEPS = {
    "initialize": "flash_initialize_duration",
    "pay": "flash_pay_duration",
    "verify": "flash_verify_duration",
}
# The original's published stress-test figures (seed/ORIGINAL_README.md).
ORIGINAL_STRESS_RPS = 64.0
ORIGINAL_STRESS_P95_MS = 3.0
# Replicas of every service in the scaling pass (one per core of the benchmark machine).
SCALING_REPLICAS = 2
# How many cores a part of the system can keep busy: one asyncio process or Redis's single
# command thread use one; the gateway runs two nginx workers; PostgreSQL and RabbitMQ
# (processes, Erlang schedulers) use every core. The load generator is not a part.
SINGLE_CORE_PARTS = ("redis",)
GATEWAY_WORKERS = 2
NOT_A_PART = ("k6 (load generator)",)


def cpu_ms_per(samplers: Iterable[ProcessSampler], parts: Iterable[str], count: int) -> float:
    """CPU milliseconds ``parts`` used over the samplers' windows, per one of ``count``."""
    if count <= 0:
        return 0.0
    seconds = sum(sampler.cpu_seconds(part) for sampler in samplers for part in parts)
    return 1000 * seconds / count


@dataclass(frozen=True)
class Throughput:
    """Requests/s and latency of one k6 run, from its summary."""

    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    failed_share: float
    requests: int

    @classmethod
    def of_http(cls, result: K6Result, seconds: float | None = None) -> Throughput:
        """Over ``seconds`` of steady load, or (None) over k6's whole test duration."""
        requests = int(result.value("http_reqs", "count"))
        rate = requests / seconds if seconds else result.value("http_reqs", "rate")
        return cls(
            requests_per_second=rate,
            p50_ms=result.value("http_req_duration", "med"),
            p95_ms=result.value("http_req_duration", "p(95)"),
            p99_ms=result.value("http_req_duration", "p(99)"),
            failed_share=result.value("http_req_failed", "value"),
            requests=requests,
        )


@dataclass
class ReadRow:
    vus: int
    seconds: int
    body_bytes: int
    gateway: Throughput
    static: Throughput
    gateway_run: K6Result
    static_run: K6Result

    @property
    def share(self) -> float:
        static = self.static.requests_per_second
        return self.gateway.requests_per_second / static if static else 0.0

    @property
    def met(self) -> bool:
        return self.gateway_run.passed and self.share >= READ_SHARE_TARGET


@dataclass
class BookingLoad:
    """One run of ``k6/bookings.js``: bookings made on distinct seats, refused, and latency."""

    vus: int
    seconds: int
    seats: int
    created: int
    refused: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    run: K6Result

    @classmethod
    def measured(cls, result: K6Result, *, vus: int, seconds: int, seats: int) -> dict[str, Any]:
        """The fields of this class from a finished run, to pass on to a row's constructor."""
        return {
            "vus": vus,
            "seconds": seconds,
            "seats": seats,
            "created": int(result.value("bookings_created", "count")),
            "refused": int(result.value("bookings_refused", "count")),
            "p50_ms": result.value("booking_duration", "med"),
            "p95_ms": result.value("booking_duration", "p(95)"),
            "p99_ms": result.value("booking_duration", "p(99)"),
            "run": result,
        }

    @property
    def per_second(self) -> float:
        return self.created / self.seconds if self.seconds else 0.0


@dataclass
class BookingRow(BookingLoad):
    raw: HoldScriptRate
    processes: ProcessSampler
    gateway: dict[tuple[str, str], RouteFigures] = field(default_factory=dict)
    problems: list[LoggedProblem] = field(default_factory=list)
    #: PostgreSQL's ceiling for the booking write (pgbench), measured beside this row.
    inserts: InsertRate | None = None

    @property
    def ceiling_share(self) -> float | None:
        """Bookings/s as a share of pgbench's booking inserts/s (None: not measured)."""
        if self.inserts is None or self.inserts.transactions_per_second <= 0:
            return None
        return self.per_second / self.inserts.transactions_per_second

    def cpu_ms_per_booking(self, *parts: str) -> float:
        """CPU milliseconds ``parts`` (together) used per booking created during the row."""
        return cpu_ms_per([self.processes], parts, self.created)

    def misses(self) -> list[str]:
        """The targets this row missed, shortest wording first; empty when all were met."""
        missed = []
        share = self.ceiling_share
        if share is None:
            missed.append("no pgbench ceiling measured")
        elif share < BOOKINGS_SHARE_TARGET:
            missed.append(f"{share:.1%} of pgbench < {BOOKINGS_SHARE_TARGET:.0%}")
        if self.p99_ms >= BOOKING_P99_TARGET_MS:
            missed.append(f"p99 {self.p99_ms:,.0f} ms ≥ {BOOKING_P99_TARGET_MS:.0f} ms")
        if self.refused:
            missed.append(f"{self.refused:,} refused")
        return missed

    @property
    def met(self) -> bool:
        return not self.misses()


@dataclass
class ScalingRow(BookingLoad):
    """Row 2's load again, after the bench stack restarted with more replicas per service."""

    replicas: int
    warmup_seconds: int
    processes: ProcessSampler
    gateway: dict[tuple[str, str], RouteFigures] = field(default_factory=dict)
    problems: list[LoggedProblem] = field(default_factory=list)

    def replicas_of(self, service: str) -> int:
        """How many processes of ``service`` were sampled (proof the replicas ran)."""
        return len(self.processes.processes_of(service))


@dataclass
class FlashRow:
    buyers: int
    capacity: int
    attempts: int
    bookings: int
    sold: int
    rejected: int
    double_sold: int
    oversold: int
    paid_unconfirmed: int
    confirm_lagging: int
    stuck_pending: int
    lost_bookings: int
    finished_buyers: int
    unexpected: int
    payment_failed: int
    p95_ms: float
    p99_ms: float
    purchase_p99_ms: float
    sell_out_seconds: float | None
    run: K6Result
    processes: ProcessSampler
    services: list[str]
    gateway: dict[tuple[str, str], RouteFigures] = field(default_factory=dict)
    problems: list[LoggedProblem] = field(default_factory=list)
    #: buyers started no booking after this many seconds of sale (None: until sold out)
    sale_seconds: int | None = None
    event_id: int = 0
    #: bookings of the sale confirmed at the end: the purchases completed (paid, confirmed)
    purchases: int = 0
    #: seconds from the sale's start to the last booking confirmed (sold out or not)
    last_sold_seconds: float | None = None
    #: p99 of each payment step (FLASH_STEPS), None when the script did not time it
    step_p99_ms: dict[str, float | None] = field(default_factory=dict)
    #: the ticket emails read back after the sale (None: not read)
    emails: TicketEmails | None = None
    #: the processes while the harness waited for the ticket emails after the load
    drain: ProcessSampler | None = None

    @property
    def correct(self) -> bool:
        """The script's own verdict: nothing oversold, double-sold or paid and lost."""
        return self.run.passed or (
            self.double_sold == 0
            and self.oversold == 0
            and self.paid_unconfirmed == 0
            and self.stuck_pending == 0
            and self.lost_bookings == 0
        )

    @property
    def peak_rss_mb(self) -> dict[str, float]:
        """Each service's peak over the sale and the wait for its ticket emails."""
        return {
            name: max(sampler.peak_rss_mb(name) for sampler in self.samplers)
            for name in self.services
        }

    @property
    def memory_met(self) -> bool:
        return all(mb < SERVICE_RSS_TARGET_MB for mb in self.peak_rss_mb.values())

    @property
    def samplers(self) -> list[ProcessSampler]:
        """The sale's load, then the wait for its ticket emails: the work its purchases made."""
        return [self.processes] if self.drain is None else [self.processes, self.drain]

    def cpu_seconds(self, part: str) -> float:
        return sum(sampler.cpu_seconds(part) for sampler in self.samplers)

    def cpu_ms_per_purchase(self, *parts: str) -> float | None:
        """CPU milliseconds ``parts`` used per completed purchase, over the load and the drain."""
        return cpu_ms_per(self.samplers, parts, self.purchases) if self.purchases else None

    @property
    def services_cpu_ms_per_purchase(self) -> float | None:
        return self.cpu_ms_per_purchase(*self.services)

    @property
    def purchase_cpu_met(self) -> bool:
        cost = self.services_cpu_ms_per_purchase
        return cost is not None and cost <= PURCHASE_CPU_TARGET_MS

    def misses(self) -> list[str]:
        """The row's targets this sale missed, each in a few words with its figure."""
        missed = []
        if self.double_sold:
            missed.append(f"{self.double_sold} double-sold")
        if self.capacity < FLASH_SEATS_TARGET or self.buyers < FLASH_BUYERS_TARGET:
            missed.append(f"{self.capacity:,} seats, {self.buyers} buyers: not the target size")
        if self.sell_out_seconds is None:
            missed.append(f"not sold out ({self.sold:,} of {self.capacity:,})")
        elif self.sell_out_seconds > FLASH_SELL_OUT_TARGET_S:
            missed.append(f"sold out after {self.sell_out_seconds:,.0f} s")
        if self.p99_ms >= FLASH_P99_TARGET_MS:
            missed.append(f"booking p99 {self.p99_ms:,.0f} ms")
        for step in FLASH_STEPS:
            p99 = self.step_p99_ms.get(step)
            if p99 is None:
                missed.append(f"{step} not timed")
            elif p99 >= FLASH_STEP_P99_TARGET_MS:
                missed.append(f"{step} p99 {p99:,.0f} ms")
        if self.emails is None:
            missed.append("ticket emails not read")
        elif not self.emails.met:
            missed.append(f"{self.emails.missing:,} ticket emails not sent")
        return missed

    @property
    def met(self) -> bool:
        return not self.misses()


@dataclass
class StressRow:
    figures: Throughput
    max_vus: int
    run: K6Result

    @property
    def met(self) -> bool:
        return self.run.passed


@dataclass
class RunResults:
    started_at: str
    finished_at: str = ""
    quick: bool = False
    command: str = ""
    machine: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    prepare_seconds: float = 0.0
    plan_catalogue: int = 0
    read: ReadRow | None = None
    bookings: BookingRow | None = None
    flash: FlashRow | None = None
    stress: StressRow | None = None
    scaling: ScalingRow | None = None
    seat_map: SeatMapRow | None = None
    queue: QueueRow | None = None
    cores: int = 1
    #: buyers prepared for the run
    buyers: int = 0
    #: the rows the run was limited to (``--only``); empty for every row
    only: tuple[str, ...] = ()
    profiles: list[ProfileSummary] = field(default_factory=list)
    profile_load: str = ""
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SaturationStep:
    """One part of the system during row 2: how busy, and when it would be fully busy."""

    part: str
    cpu_percent: float
    usable_cores: int
    #: bookings/s at which this part's CPU would be used up, if its cost per booking
    #: stayed what row 2 measured (a linear extrapolation, not a measurement).
    full_at_per_second: float


@dataclass(frozen=True)
class ScalingFigures:
    """The capacity figures docs/SCALING.md states, all from one run's measurements."""

    one_replica: BookingRow
    more_replicas: ScalingRow | None
    #: booking_service's CPU during row 2, in % of one core.
    booking_cpu_percent: float
    holds_per_second: float
    inserts: InsertRate | None
    saturation: list[SaturationStep]

    @property
    def per_busy_process(self) -> float | None:
        """Derived: row 2's bookings/s divided by the share of a core booking_service used."""
        share = self.booking_cpu_percent / 100
        return self.one_replica.per_second / share if share > 0 else None

    @property
    def more_replicas_per_busy_process(self) -> float | None:
        """The same derivation over the scaling pass (bookings/s per core of booking_service)."""
        if self.more_replicas is None:
            return None
        share = self.more_replicas.processes.cpu_percent("booking_service") / 100
        return self.more_replicas.per_second / share if share > 0 else None

    @property
    def speedup(self) -> float | None:
        one = self.one_replica.per_second
        if self.more_replicas is None or one <= 0:
            return None
        return self.more_replicas.per_second / one


def usable_cores(part: str, services: list[str], cores: int) -> int:
    if part in services or part in SINGLE_CORE_PARTS:
        return 1
    if part == "nginx gateway":
        return min(GATEWAY_WORKERS, cores)
    return cores


def saturation_order(
    processes: ProcessSampler, services: list[str], per_second: float, cores: int
) -> list[SaturationStep]:
    """The parts busy during a row (at least 1 % of a core), busiest first."""
    steps = []
    for part in processes.figures:
        cpu = processes.cpu_percent(part)
        if part in NOT_A_PART or cpu < 1.0:
            continue
        usable = usable_cores(part, services, cores)
        steps.append(SaturationStep(part, cpu, usable, per_second * usable * 100 / cpu))
    return sorted(steps, key=lambda step: -step.cpu_percent)


def scaling_figures(results: RunResults, services: list[str]) -> ScalingFigures | None:
    """None until row 2 has been measured: every figure hangs off it."""
    row = results.bookings
    if row is None:
        return None
    return ScalingFigures(
        one_replica=row,
        more_replicas=results.scaling,
        booking_cpu_percent=row.processes.cpu_percent("booking_service"),
        holds_per_second=row.raw.requests_per_second,
        inserts=row.inserts,
        saturation=saturation_order(row.processes, services, row.per_second, results.cores),
    )
