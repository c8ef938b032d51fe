"""One benchmark run: a fresh bench stack, accounts, the rows, profiles, scaling.

Rows run in this order so that none pays for another's leftovers: reads (1), the
original's stress test (4), booking throughput (2; its bookings stay pending, which costs
nothing until they expire long after the run), the scaling pass (row 2's load on more
replicas per service; it restarts the stack keeping its data, then goes back to one
process each), then the flash sale (3). The sale's ticket emails trail it, so the
harness waits for them (bounded) while it still samples the processes: their CPU is part
of what a purchase costs. The waiting room (6) comes last: row 3's purchase rate sets its
admission rate, and it makes accounts of its own (:mod:`bench.waiting_room`). Profiles of
missed rows are taken under a repeat of their load, never during a measured row: rows 1
and 2 right after row 2, and a short second sale (the busiest services of the first)
after the flash sale.

``--only`` runs a subset on the same fresh stack (:func:`subset_plan`), so a developer can
compare one row before and after a change in a minute or two.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from bench import stack
from bench.baselines import booking_insert_rate, redis_hold_rate, static_nginx, tool_version
from bench.k6 import K6Result, k6_version, run_k6
from bench.logscan import LogWindow
from bench.mail import MailSink
from bench.prepare import BenchData, prepare, refresh_sessions
from bench.procstats import ProcessSampler, children_of
from bench.profiling import ProfileSummary, start_recording, summarize
from bench.results import (
    FLASH_STEPS,
    SCALING_REPLICAS,
    BookingLoad,
    BookingRow,
    FlashRow,
    ReadRow,
    RunResults,
    ScalingRow,
    StressRow,
    Throughput,
)
from bench.seat_map import measure_seat_map
from bench.ticket_emails import TicketEmails, wait_for_ticket_emails
from bench.waiting_room import (
    DEFAULT_ADMIT_PER_MINUTE,
    FULL_QUEUE,
    QUICK_QUEUE,
    QueuePlan,
    QueueRow,
    admission_rate,
)
from bench.waiting_room import LOCAL_IPS as QUEUE_LOCAL_IPS
from bench.waiting_room import measure as measure_queue
from devstack import infra
from devstack.config import ROOT, SERVICES
from devstack.gateway import nginx_pid

RUN_DIR = stack.BENCH_STACK.run_dir
LOG_DIR = stack.BENCH_STACK.log_dir
K6_LOGS = RUN_DIR / "k6"
PROFILE_RATE = 100
# The rows a run can be limited to with ``--only``, and every part of a full run in order.
SUBSETS = ("bookings", "flash", "seatmap", "queue")
ALL_PARTS = ("reads", "seatmap", "stress", "bookings", "scaling", "flash", "queue")
# How many of the flash sale's busiest services a missed sale profiles.
FLASH_PROFILED_SERVICES = 2


@dataclass(frozen=True)
class Plan:
    """How big each row is. ``FULL`` is the issue's; ``QUICK`` checks the harness in ~2 min."""

    buyers: int = 500
    catalogue_events: int = 20
    warmup_seconds: int = 5
    read_vus: int = 50
    read_seconds: int = 20
    booking_vus: int = 50
    booking_seconds: int = 20
    booking_seats: int = 100_000
    flash_seats: tuple[int, int, int] = (8000, 1500, 500)
    flash_max_duration: str = "4m"
    stress_stages: tuple[str, ...] = ()
    #: how long after the sale the harness waits for its ticket emails, at most
    email_drain_seconds: int = 300
    redis_requests: int = 200_000
    pgbench_clients: int = 50
    pgbench_seconds: int = 12
    profile_seconds: int = 15
    #: row 6, the waiting room (its own accounts)
    queue: QueuePlan = FULL_QUEUE
    quick: bool = False

    @property
    def flash_capacity(self) -> int:
        return sum(self.flash_seats)


FULL = Plan()
QUICK = Plan(
    buyers=20,
    catalogue_events=5,
    warmup_seconds=2,
    read_vus=20,
    read_seconds=5,
    booking_vus=10,
    booking_seconds=5,
    booking_seats=20_000,
    flash_seats=(150, 40, 10),
    flash_max_duration="1m",
    stress_stages=("5s:30", "5s:0"),
    email_drain_seconds=60,
    redis_requests=20_000,
    pgbench_seconds=3,
    profile_seconds=5,
    queue=QUICK_QUEUE,
    quick=True,
)
# ``--quick --only bookings``: row 2 at the full run's concurrency (its share of pgbench
# depends on it, so before/after figures compare with the full run's) in shorter windows.
QUICK_BOOKINGS = replace(
    QUICK,
    booking_vus=FULL.booking_vus,
    booking_seconds=10,
    booking_seats=FULL.booking_seats,
    warmup_seconds=3,
    redis_requests=50_000,
    pgbench_seconds=5,
)


def subset_plan(plan: Plan, only: Sequence[str]) -> Plan:
    """The plan of an ``--only`` run: no catalogue, and only the buyers its rows use."""
    unknown = set(only) - set(SUBSETS)
    if unknown:
        raise ValueError(f"--only takes {', '.join(SUBSETS)}, not {', '.join(sorted(unknown))}")
    if plan.quick and "bookings" in only:
        plan = QUICK_BOOKINGS
    buyers = plan.buyers if "flash" in only else plan.booking_vus
    if set(only) == {"queue"}:
        buyers = 0  # the waiting room makes its own
    return replace(plan, buyers=buyers, catalogue_events=0)


@dataclass
class Context:
    plan: Plan
    data_file: Path
    results: RunResults
    pids: dict[str, int] = field(default_factory=dict)
    profiled: set[str] = field(default_factory=set)
    data: BenchData | None = None
    profile_loads: list[str] = field(default_factory=list)

    @property
    def gateway_url(self) -> str:
        return stack.BENCH_STACK.gateway_url

    def k6_env(self, **extra: str) -> dict[str, str]:
        return {"BENCH_DATA": str(self.data_file), "BASE_URL": self.gateway_url, **extra}


def say(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def _gateway_pids() -> list[int]:
    master = nginx_pid(stack.BENCH_STACK)
    return [master, *children_of(master)] if master else []


def _settle(timeout: float = 120.0) -> None:
    """Wait until the bench vhost's queues are drained (background work done), bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "-p", stack.BENCH_STACK.vhost, "messages"],
            capture_output=True,
            text=True,
            check=False,
        )
        counts = [int(x) for x in listed.stdout.split() if x.isdigit()]
        if listed.returncode == 0 and sum(counts) == 0:
            break
        time.sleep(2)
    time.sleep(2)


def _refresh(ctx: Context) -> None:
    """New access tokens for every account before a row that needs them (15 min TTL)."""
    assert ctx.data is not None
    ctx.data = asyncio.run(refresh_sessions(ctx.data))
    ctx.data.write(ctx.data_file)


def _check(result: K6Result, ctx: Context, during: str = "") -> None:
    if not result.passed:
        failure = f"{during}: {result.describe_failure()}" if during else result.describe_failure()
        ctx.results.errors.append(failure)
        say(failure)


# -- rows ------------------------------------------------------------------------------


def measure_reads(ctx: Context) -> ReadRow:
    plan = ctx.plan
    say(f"row 1: GET /api/events, {plan.read_vus} VUs x {plan.read_seconds}s, gateway vs nginx")
    body = httpx.get(f"{ctx.gateway_url}/api/events", timeout=30).content
    target = f"{ctx.gateway_url}/api/events"

    def read(url: str, seconds: int, label: str) -> K6Result:
        env = {
            "TARGET_URL": url,
            "VUS": str(plan.read_vus),
            "DURATION": f"{seconds}s",
            "EXPECT_BYTES": str(len(body)),
        }
        return run_k6("events_read.js", env=env, log_dir=K6_LOGS, label=label)

    read(target, plan.warmup_seconds, "read-warmup")
    gateway = read(target, plan.read_seconds, "read-gateway")
    _check(gateway, ctx)
    with static_nginx(body, RUN_DIR) as static_url:
        read(static_url, plan.warmup_seconds, "read-static-warmup")
        static = read(static_url, plan.read_seconds, "read-static")
    _check(static, ctx)
    return ReadRow(
        vus=plan.read_vus,
        seconds=plan.read_seconds,
        body_bytes=len(body),
        gateway=Throughput.of_http(gateway, plan.read_seconds),
        static=Throughput.of_http(static, plan.read_seconds),
        gateway_run=gateway,
        static_run=static,
    )


def measure_stress(ctx: Context) -> StressRow:
    say("row 4: k6/stress_test.js (ramp to 100 users)")
    extra: list[str] = []
    for stage in ctx.plan.stress_stages:
        extra += ["--stage", stage]
    result = run_k6(
        "stress_test.js",
        env={"BASE_URL": ctx.gateway_url},
        log_dir=K6_LOGS,
        extra_args=extra,
        label="stress",
    )
    _check(result, ctx)
    return StressRow(
        figures=Throughput.of_http(result),
        max_vus=int(result.value("vus_max", "max")),
        run=result,
    )


def warm_up_bookings(ctx: Context) -> None:
    """A short booking load on its own event, for a stack that served nothing yet."""
    plan = ctx.plan
    say(f"row 2: warm-up, {plan.booking_vus} VUs x {plan.warmup_seconds}s")
    run_k6(
        "bookings.js",
        env=ctx.k6_env(
            VUS=str(plan.booking_vus),
            DURATION=f"{plan.warmup_seconds}s",
            SEATS=str(plan.booking_seats),
            BOOKING_P99_MS="100000",
        ),
        log_dir=K6_LOGS,
        label="bookings-warmup",
    )


def measure_bookings(ctx: Context) -> BookingRow:
    plan = ctx.plan
    say(f"row 2: bookings, {plan.booking_vus} VUs x {plan.booking_seconds}s, distinct seats")
    env = ctx.k6_env(
        VUS=str(plan.booking_vus),
        DURATION=f"{plan.booking_seconds}s",
        SEATS=str(plan.booking_seats),
    )
    with LogWindow(LOG_DIR) as logs, ProcessSampler(ctx.pids, _gateway_pids) as processes:
        result = run_k6("bookings.js", env=env, log_dir=K6_LOGS, label="bookings")
    _check(result, ctx)
    say(f"row 2: redis-benchmark on the hold script, {plan.redis_requests} calls")
    raw = redis_hold_rate(requests=plan.redis_requests, clients=plan.booking_vus)
    say(f"row 2: pgbench on the booking insert, {plan.pgbench_clients} clients")
    inserts = booking_insert_rate(
        RUN_DIR / "pgbench", clients=plan.pgbench_clients, seconds=plan.pgbench_seconds
    )
    return BookingRow(
        **BookingLoad.measured(
            result, vus=plan.booking_vus, seconds=plan.booking_seconds, seats=plan.booking_seats
        ),
        raw=raw,
        processes=processes,
        gateway=logs.gateway_routes(),
        problems=logs.problems(list(SERVICES)),
        inserts=inserts,
    )


def _seconds(duration: str) -> int:
    """A k6 duration such as ``4m``, ``90s`` or ``1m30s`` in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a k6 duration: {duration!r}")
    return sum(int(number) * units[unit] for number, unit in parts)


def measure_flash_sale(ctx: Context) -> FlashRow:
    plan = ctx.plan
    normal, vip, vvip = plan.flash_seats
    say(f"row 3: flash sale, {plan.buyers} buyers for {plan.flash_capacity} seats")
    sale_seconds = max(10, _seconds(plan.flash_max_duration) - 60)
    env = ctx.k6_env(
        MAX_DURATION=plan.flash_max_duration,
        SETTLE_TIMEOUT_S="60",
        DRAIN_TIMEOUT_S="300",
        # The last bookings start a minute before the scenario's limit, so each one is
        # paid or cancelled (not cut mid-purchase) and the read-back can judge them all.
        SALE_SECONDS=str(sale_seconds),
        BUYERS=str(plan.buyers),
        SEATS_NORMAL=str(normal),
        SEATS_VIP=str(vip),
        SEATS_VVIP=str(vvip),
    )
    with LogWindow(LOG_DIR) as logs, ProcessSampler(ctx.pids, _gateway_pids) as processes:
        result = run_k6("flash_sale.js", env=env, log_dir=K6_LOGS, label="flash_sale")
    load_ended_at = datetime.now(UTC)
    _check(result, ctx)
    event_id = int(result.value("flash_event_id", "value"))
    with ProcessSampler(ctx.pids, _gateway_pids) as drain:
        emails = _ticket_emails(ctx, event_id, load_ended_at)
    sold_out = result.value("flash_sold_out", "value") == 1
    purchases = int(result.value("flash_confirmed_bookings", "value"))
    return FlashRow(
        buyers=plan.buyers,
        capacity=int(result.value("flash_capacity", "value")),
        attempts=int(result.value("flash_attempts", "count")),
        bookings=int(result.value("flash_bookings", "count")),
        sold=int(result.value("flash_sold_seats", "value")),
        rejected=int(result.value("flash_rejected", "count")),
        double_sold=int(result.value("flash_double_sold", "count")),
        oversold=int(result.value("flash_oversold", "count")),
        paid_unconfirmed=int(result.value("flash_paid_unconfirmed", "count")),
        confirm_lagging=int(result.value("flash_confirm_lagging", "count")),
        stuck_pending=int(result.value("flash_stuck_pending", "count")),
        lost_bookings=int(result.value("flash_lost_bookings", "count")),
        finished_buyers=int(result.value("iterations", "count")),
        unexpected=int(result.value("flash_unexpected", "count")),
        payment_failed=int(result.value("flash_payment_failed", "count")),
        p95_ms=result.value("flash_booking_duration", "p(95)"),
        p99_ms=result.value("flash_booking_duration", "p(99)"),
        purchase_p99_ms=result.value("flash_purchase_duration", "p(99)"),
        sell_out_seconds=result.value("flash_sell_out_ms", "value") / 1000 if sold_out else None,
        run=result,
        processes=processes,
        services=list(SERVICES),
        gateway=logs.gateway_routes(),
        problems=logs.problems(list(SERVICES)),
        sale_seconds=sale_seconds,
        event_id=event_id,
        purchases=purchases,
        last_sold_seconds=(
            result.value("flash_last_sold_ms", "value") / 1000
            if purchases and "flash_last_sold_ms" in result.metrics
            else None
        ),
        step_p99_ms={step: _p99(result, metric) for step, metric in FLASH_STEPS.items()},
        emails=emails,
        drain=drain,
    )


def _p99(result: K6Result, metric: str) -> float | None:
    """A trend's p99, None when the script did not record the trend at all."""
    return result.value(metric, "p(99)") if metric in result.metrics else None


def _ticket_emails(ctx: Context, event_id: int, load_ended_at: datetime) -> TicketEmails | None:
    """Wait (bounded) for every confirmed booking's ticket email, and read the lags."""
    if not event_id:
        ctx.results.errors.append("flash sale: k6 reported no event id; ticket emails not read")
        return None
    timeout = ctx.plan.email_drain_seconds
    say(f"row 3: waiting up to {timeout} s for the sale's ticket emails")
    try:
        return wait_for_ticket_emails(
            stack.BENCH_STACK, event_id, load_ended_at=load_ended_at, timeout_s=timeout
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        failure = f"flash sale: reading the ticket emails back failed: {exc!r}"
        ctx.results.errors.append(failure)
        say(failure)
        return None


def measure_scaling(ctx: Context, replicas: int = SCALING_REPLICAS) -> ScalingRow:
    """Row 2's load on ``replicas`` processes of every service, the data kept.

    A restart leaves every process cold (no pooled connections, no cached event), where
    row 2's had served the rows before it, so a short booking warm-up on its own event
    comes first; the measured run then books a fresh event as row 2 did.
    """
    plan = ctx.plan
    say(f"scaling: restarting the bench stack with {replicas} replicas per service")
    scaled = stack.restart_with_replicas(replicas)
    ctx.pids = stack.service_pids()
    pids = stack.replica_pids(scaled)
    missing = [service for service, found in pids.items() if len(found) != replicas]
    if missing:
        raise RuntimeError(f"not {replicas} processes of {', '.join(missing)} after the restart")
    _refresh(ctx)
    run_k6(
        "bookings.js",
        env=ctx.k6_env(
            VUS=str(plan.booking_vus),
            DURATION=f"{plan.warmup_seconds}s",
            SEATS=str(plan.booking_seats),
            BOOKING_P99_MS="100000",
        ),
        log_dir=K6_LOGS,
        label="scaling-warmup",
    )
    _settle()
    say(f"scaling: bookings, {plan.booking_vus} VUs x {plan.booking_seconds}s, {replicas} replicas")
    env = ctx.k6_env(
        VUS=str(plan.booking_vus),
        DURATION=f"{plan.booking_seconds}s",
        SEATS=str(plan.booking_seats),
    )
    with LogWindow(LOG_DIR) as logs, ProcessSampler(pids, _gateway_pids) as processes:
        result = run_k6("bookings.js", env=env, log_dir=K6_LOGS, label="scaling-bookings")
    _check(result, ctx, during=f"{replicas} replicas")
    return ScalingRow(
        **BookingLoad.measured(
            result, vus=plan.booking_vus, seconds=plan.booking_seconds, seats=plan.booking_seats
        ),
        replicas=replicas,
        warmup_seconds=plan.warmup_seconds,
        processes=processes,
        gateway=logs.gateway_routes(),
        problems=logs.problems(list(SERVICES)),
    )


def queue_admission_rate(results: RunResults) -> tuple[int, str]:
    """Row 6's admission rate: row 3's purchase rate when measured, else the fixed one."""
    flash = results.flash
    if flash is not None:
        seconds = flash.last_sold_seconds
        rate = admission_rate(flash.purchases, seconds)
        if rate is not None and seconds is not None:
            return rate, (
                f"row 3's purchase rate in this run: {flash.purchases:,} purchases completed "
                f"in {seconds:,.1f} s (the sale's start to its last confirmation)"
            )
    return DEFAULT_ADMIT_PER_MINUTE, (
        "a fixed rate, event_service's default QUEUE_ADMIT_PER_MINUTE (no flash sale "
        "measured a purchase rate in this run)"
    )


def measure_waiting_room(ctx: Context) -> QueueRow:
    assert ctx.data is not None
    rate, source = queue_admission_rate(ctx.results)
    return measure_queue(
        plan=ctx.plan.queue,
        stack=stack.BENCH_STACK,
        base=ctx.data,
        admit_per_minute=rate,
        rate_source=source,
        pids=ctx.pids,
        gateway_pids=_gateway_pids,
        services=list(SERVICES),
        k6_logs=K6_LOGS,
        data_file=RUN_DIR / "queue-accounts.json",
        say=say,
    )


# -- profiles --------------------------------------------------------------------------


def _profiled(
    ctx: Context, services: list[str], script: str, env: dict[str, str], label: str
) -> list[ProfileSummary]:
    seconds = ctx.plan.profile_seconds
    recorders = {
        service: (
            start_recording(
                ctx.pids[service], seconds, RUN_DIR / "profiles" / f"{label}-{service}.txt"
            ),
            RUN_DIR / "profiles" / f"{label}-{service}.txt",
        )
        for service in services
    }
    run_k6(script, env=env, log_dir=K6_LOGS, label=label)
    summaries = []
    for service, (recorder, output) in recorders.items():
        recorder.wait(timeout=seconds + 60)
        if output.exists():
            summaries.append(
                summarize(service, output, seconds=seconds, rate=PROFILE_RATE, load=label)
            )
    return summaries


def _profile_reads(ctx: Context) -> None:
    plan = ctx.plan
    say("profiling event_service under the event-list load")
    ctx.results.profiles += _profiled(
        ctx,
        ["event_service"],
        "events_read.js",
        {
            "TARGET_URL": f"{ctx.gateway_url}/api/events",
            "VUS": str(plan.read_vus),
            "DURATION": f"{plan.profile_seconds + 2}s",
        },
        "profile-read",
    )
    ctx.profile_loads.append(f"row 1's load ({plan.read_vus} VUs on GET /api/events)")


def _profile_bookings(ctx: Context) -> None:
    plan = ctx.plan
    say("profiling booking_service and event_service under the booking load")
    ctx.results.profiles += _profiled(
        ctx,
        ["booking_service", "event_service"],
        "bookings.js",
        ctx.k6_env(
            VUS=str(plan.booking_vus),
            DURATION=f"{plan.profile_seconds + 2}s",
            SEATS=str(plan.booking_seats),
            BOOKING_P99_MS="100000",
        ),
        "profile-bookings",
    )
    ctx.profile_loads.append(f"row 2's load ({plan.booking_vus} VUs creating bookings)")


def busiest_services(flash: FlashRow, count: int = FLASH_PROFILED_SERVICES) -> list[str]:
    """The services that used the most CPU over the sale and its ticket emails."""
    return sorted(flash.services, key=lambda service: -flash.cpu_seconds(service))[:count]


def _profile_flash(ctx: Context, flash: FlashRow) -> None:
    """A short second sale on a fresh event, the busiest services of the first profiled.

    Buyers start bookings for the profile's window only and are cut soon after, so it is
    bounded; its own figures are not a measurement and are not judged.
    """
    plan = ctx.plan
    services = busiest_services(flash)
    normal, vip, vvip = plan.flash_seats
    say(f"profiling {', '.join(services)} under a {plan.profile_seconds} s repeat of the sale")
    _settle()
    _refresh(ctx)
    ctx.results.profiles += _profiled(
        ctx,
        services,
        "flash_sale.js",
        ctx.k6_env(
            MAX_DURATION=f"{plan.profile_seconds + 15}s",
            SALE_SECONDS=str(plan.profile_seconds),
            SETTLE_TIMEOUT_S="5",
            DRAIN_TIMEOUT_S="30",
            BOOKING_P99_MS="100000",
            BUYERS=str(plan.buyers),
            SEATS_NORMAL=str(normal),
            SEATS_VIP=str(vip),
            SEATS_VVIP=str(vvip),
        ),
        "profile-flash",
    )
    ctx.profile_loads.append(
        f"the first {plan.profile_seconds} s of a second flash sale ({plan.buyers} buyers, "
        f"{plan.flash_capacity:,} seats)"
    )


def profile_missed_rows(ctx: Context) -> None:
    """py-spy on the services behind every row that missed its target, under its load.

    Called after row 2 (for rows 1 and 2) and again after the flash sale (for row 3, the
    CPU per purchase and the memory row). Never during a measured row.
    """
    results = ctx.results
    if results.read is not None and not results.read.met and "read" not in ctx.profiled:
        ctx.profiled.add("read")
        _profile_reads(ctx)
    if results.bookings is not None and not results.bookings.met and "bookings" not in ctx.profiled:
        ctx.profiled.add("bookings")
        _profile_bookings(ctx)
    flash = results.flash
    flash_missed = flash is not None and not (
        flash.met and flash.memory_met and flash.purchase_cpu_met
    )
    if flash is not None and flash_missed and "flash" not in ctx.profiled:
        ctx.profiled.add("flash")
        _profile_flash(ctx, flash)
    results.profile_load = "; ".join(ctx.profile_loads)


# -- the run ---------------------------------------------------------------------------


def _machine() -> dict[str, str]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    model = "unknown"
    with contextlib.suppress(OSError, StopIteration):
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "cores (nproc)": str(os.cpu_count()),
        "memory": f"{total_kb / 1024 / 1024:.1f} GiB",
        "cpu": model,
        "kernel": f"{platform.system()} {platform.release()}",
    }


def _versions() -> dict[str, str]:
    packages = ["fastapi", "uvicorn", "sqlalchemy", "asyncpg", "pydantic", "redis", "aio-pika"]
    found = {
        "python": platform.python_version(),
        "k6": k6_version(),
        "nginx": tool_version(["nginx", "-v"]),
        "postgresql": infra.psql("SHOW server_version;").strip(),
        "redis": tool_version(["redis-server", "--version"]),
        "rabbitmq": tool_version(["rabbitmqctl", "-q", "version"]),
        "redis-benchmark": tool_version(["redis-benchmark", "--version"]),
    }
    for package in packages:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[f"{package} (Python)"] = importlib.metadata.version(package)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    found["project commit"] = commit.stdout.strip() or "unknown"
    return found


def _settings(parts: set[str]) -> dict[str, str]:
    bench = stack.BENCH_STACK
    scaling = f"; {SCALING_REPLICAS} in the scaling pass" if "scaling" in parts else ""
    return {
        "gateway rate limit": f"{bench.rate_limit_rps} r/s per address, burst "
        f"{bench.rate_limit_burst} (raised for the benchmark; 10 r/s, burst 20 by default)",
        "client addresses": "k6 --local-ips 127.0.1.1-127.0.8.254 (one address per VU)"
        + (f"; row 6: {QUEUE_LOCAL_IPS} (one per buyer)" if "queue" in parts else ""),
        "replicas": f"{bench.replicas} process per service (uvicorn, uvloop, httptools)" + scaling,
        "database pools": (
            f"DB_POOL_SIZE={stack.BENCH_DB_POOL_SIZE}, "
            f"DB_MAX_OVERFLOW={stack.BENCH_DB_MAX_OVERFLOW} per service (the defaults)"
        ),
        "malloc": "MALLOC_ARENA_MAX=2 (as devstack and the image set it)",
        "hold TTL": "HOLD_TTL_SECONDS default (900 s)",
    }


def _measure(ctx: Context, parts: set[str]) -> None:
    """The rows in ``parts``, in the order the module's docstring explains."""
    results = ctx.results
    if "reads" in parts:
        results.read = measure_reads(ctx)
    if "seatmap" in parts:
        say("row 5: the seat map of a 100,000-seat event (first, full and conditional reads)")
        assert ctx.data is not None
        pids = ctx.pids["event_service"]
        results.seat_map = measure_seat_map(
            ctx.gateway_url, ctx.data.organizer, [pids] if isinstance(pids, int) else list(pids)
        )
    if "stress" in parts:
        results.stress = measure_stress(ctx)
    if "bookings" in parts:
        _settle()
        _refresh(ctx)
        if "reads" not in parts:
            warm_up_bookings(ctx)  # no row before it warmed the stack up
        results.bookings = measure_bookings(ctx)
        profile_missed_rows(ctx)
    if "scaling" in parts:
        _settle()
        # Right after row 2, while its pending bookings are far from their hold TTL (their
        # expiry would otherwise add load to a later pass), then back to one process each.
        results.scaling = measure_scaling(ctx)
        say("scaling: back to 1 process per service for the flash sale")
        stack.restart_with_replicas(1)
        ctx.pids = stack.service_pids()
    if "flash" in parts:
        _settle()
        _refresh(ctx)
        results.flash = measure_flash_sale(ctx)
        profile_missed_rows(ctx)
    if "queue" in parts:
        _settle()
        _refresh(ctx)  # the admin's and the organizer's sessions
        results.queue = measure_waiting_room(ctx)


@contextlib.contextmanager
def _bench_stack(keep: bool) -> Iterator[None]:
    say("starting a fresh bench stack (gateway :28080)")
    stack.start_fresh()
    try:
        yield
    finally:
        if not keep:
            say("stopping the bench stack")
            stack.stop()


def run(
    plan: Plan,
    *,
    only: Sequence[str] = (),
    keep_stack: bool = False,
    command: str = "scripts/bench",
) -> RunResults:
    """Every row (``only`` empty) or just those named, with their baselines and profiles."""
    parts = set(only) or set(ALL_PARTS)
    results = RunResults(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        quick=plan.quick,
        command=command,
        buyers=plan.buyers,
        only=tuple(only),
    )
    results.plan_catalogue = plan.catalogue_events
    results.machine = _machine()
    results.cores = os.cpu_count() or 1
    results.settings = _settings(parts)
    data_file = RUN_DIR / "accounts.json"
    ctx = Context(plan, data_file, results)
    with stack.stack_lock(), _bench_stack(keep_stack), MailSink(stack.BENCH_SMTP_PORT) as mail:
        results.load_before = stack.machine_load()
        results.versions = _versions()
        ctx.pids = stack.service_pids()
        say(f"preparing {plan.buyers} buyers, an organizer and {plan.catalogue_events} events")
        started = time.monotonic()
        data = asyncio.run(
            prepare(
                ctx.gateway_url,
                mail.code_for,
                buyers=plan.buyers,
                catalogue_events=plan.catalogue_events,
                progress=say,
            )
        )
        data.write(data_file)
        ctx.data = data
        results.prepare_seconds = time.monotonic() - started
        _settle()
        _measure(ctx, parts)
        results.load_after = stack.machine_load()
    results.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    return results
