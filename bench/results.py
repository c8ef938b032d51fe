"""What one benchmark run measured, row by row, and whether each target was met."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.baselines import HoldScriptRate
from bench.k6 import K6Result
from bench.logscan import LoggedProblem, RouteFigures
from bench.procstats import ProcessSampler
from bench.profiling import ProfileSummary

# The targets for this 2-core machine, everything on one box.
READ_SHARE_TARGET = 0.5
BOOKINGS_PER_SECOND_TARGET = 1000.0
BOOKING_P99_TARGET_MS = 250.0
FLASH_P99_TARGET_MS = 1000.0
FLASH_SEATS_TARGET = 10_000
FLASH_BUYERS_TARGET = 500
SERVICE_RSS_TARGET_MB = 150.0
# The original's published stress-test figures (seed/ORIGINAL_README.md).
ORIGINAL_STRESS_RPS = 64.0
ORIGINAL_STRESS_P95_MS = 3.0


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
class BookingRow:
    vus: int
    seconds: int
    seats: int
    created: int
    refused: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    run: K6Result
    raw: HoldScriptRate
    processes: ProcessSampler
    gateway: dict[tuple[str, str], RouteFigures] = field(default_factory=dict)
    problems: list[LoggedProblem] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.created / self.seconds if self.seconds else 0.0

    @property
    def met(self) -> bool:
        return (
            self.refused == 0
            and self.per_second >= BOOKINGS_PER_SECOND_TARGET
            and self.p99_ms < BOOKING_P99_TARGET_MS
        )


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
        return {name: self.processes.peak_rss_mb(name) for name in self.services}

    @property
    def memory_met(self) -> bool:
        return all(mb < SERVICE_RSS_TARGET_MB for mb in self.peak_rss_mb.values())

    @property
    def met(self) -> bool:
        return (
            self.double_sold == 0
            and self.sell_out_seconds is not None
            and self.capacity >= FLASH_SEATS_TARGET
            and self.buyers >= FLASH_BUYERS_TARGET
            and self.p99_ms < FLASH_P99_TARGET_MS
        )


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
    profiles: list[ProfileSummary] = field(default_factory=list)
    profile_load: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def all_met(self) -> bool:
        rows = (self.read, self.bookings, self.flash, self.stress)
        return (
            not self.errors
            and all(row is not None and row.met for row in rows)
            and self.flash is not None
            and self.flash.memory_met
        )
