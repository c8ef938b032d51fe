"""docs/BENCHMARKS.md and the table printed at the end of a run, from measured results only."""

from __future__ import annotations

from collections.abc import Iterable

from bench.logscan import LoggedProblem, RouteFigures
from bench.procstats import HELPER_GROUPS, ProcessSampler
from bench.profiling import ProfileSummary
from bench.results import (
    BOOKING_P99_TARGET_MS,
    BOOKINGS_PER_SECOND_TARGET,
    FLASH_BUYERS_TARGET,
    FLASH_P99_TARGET_MS,
    FLASH_SEATS_TARGET,
    ORIGINAL_STRESS_P95_MS,
    ORIGINAL_STRESS_RPS,
    READ_SHARE_TARGET,
    SERVICE_RSS_TARGET_MB,
    BookingRow,
    FlashRow,
    ReadRow,
    RunResults,
    StressRow,
    Throughput,
)
from devstack.config import SERVICES

HOT_CORE_PERCENT = 85.0


def _verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _latency(t: Throughput) -> str:
    return f"p50/p95/p99 {_ms(t.p50_ms)} / {_ms(t.p95_ms)} / {_ms(t.p99_ms)} ms"


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# -- the summary table -----------------------------------------------------------------


def _read_cells(row: ReadRow) -> list[str]:
    return [
        "1",
        f"GET /api/events, {row.vus} VUs, {row.seconds} s ({row.body_bytes:,} B body)",
        f"gateway: {row.gateway.requests_per_second:,.0f} req/s, {_latency(row.gateway)}",
        f"nginx static copy: {row.static.requests_per_second:,.0f} req/s, {_latency(row.static)}",
        f"≥ {READ_SHARE_TARGET:.0%} of nginx",
        f"{row.share:.1%} of nginx: {_verdict(row.met)}",
    ]


def _booking_cells(row: BookingRow) -> list[str]:
    raw = row.raw
    return [
        "2",
        f"bookings created, {row.vus} VUs, {row.seconds} s, distinct seats",
        f"{row.per_second:,.0f} bookings/s ({row.created:,} created, {row.refused} refused), "
        f"p50/p95/p99 {_ms(row.p50_ms)} / {_ms(row.p95_ms)} / {_ms(row.p99_ms)} ms",
        f"hold script on Redis (redis-benchmark, {raw.clients} clients): "
        f"{raw.requests_per_second:,.0f} holds/s, p50/p95/p99 {_ms(raw.p50_ms)} / "
        f"{_ms(raw.p95_ms)} / {_ms(raw.p99_ms)} ms",
        f"≥ {BOOKINGS_PER_SECOND_TARGET:,.0f}/s, p99 < {BOOKING_P99_TARGET_MS:.0f} ms",
        _verdict(row.met),
    ]


def _sell_out(row: FlashRow) -> str:
    if row.sell_out_seconds is None:
        return f"not sold out ({row.sold:,} of {row.capacity:,})"
    return f"sold out in {row.sell_out_seconds:,.1f} s"


def _flash_cells(row: FlashRow) -> list[str]:
    return [
        "3",
        f"flash sale: {row.buyers} buyers, {row.capacity:,} seats, book + pay",
        f"{row.attempts:,} attempts, {row.sold:,} sold, {row.rejected:,} rejected, "
        f"**{row.double_sold} double-sold**, booking p95/p99 {_ms(row.p95_ms)} / "
        f"{_ms(row.p99_ms)} ms, {_sell_out(row)}",
        f"capacity {row.capacity:,}",
        f"0 double-sold; {FLASH_SEATS_TARGET:,} seats to {FLASH_BUYERS_TARGET} buyers, "
        f"p99 < {FLASH_P99_TARGET_MS / 1000:.0f} s",
        f"{'0 double-sold' if row.double_sold == 0 else 'DOUBLE-SOLD'}; {_verdict(row.met)}",
    ]


def _memory_cells(row: FlashRow) -> list[str]:
    peaks = ", ".join(
        f"{name.removesuffix('_service')} {mb:,.0f}" for name, mb in row.peak_rss_mb.items()
    )
    return [
        "3m",
        "peak RSS of each service during the flash sale",
        f"{peaks} MB",
        "",
        f"< {SERVICE_RSS_TARGET_MB:.0f} MB each",
        _verdict(row.memory_met),
    ]


def _stress_cells(row: StressRow) -> list[str]:
    figures = row.figures
    return [
        "4",
        f"k6/stress_test.js, ramp to {row.max_vus} users",
        f"{figures.requests_per_second:,.1f} req/s, {_latency(figures)}, "
        f"{figures.failed_share:.2%} failed",
        f"original (Go): ~{ORIGINAL_STRESS_RPS:.0f} req/s, p95 < {ORIGINAL_STRESS_P95_MS:.0f} ms, "
        "0 % errors",
        "p95 < 500 ms, < 1 % failed",
        _verdict(row.met),
    ]


def summary_table(results: RunResults) -> list[str]:
    rows = []
    if results.read is not None:
        rows.append(_read_cells(results.read))
    if results.bookings is not None:
        rows.append(_booking_cells(results.bookings))
    if results.flash is not None:
        rows.append(_flash_cells(results.flash))
        rows.append(_memory_cells(results.flash))
    if results.stress is not None:
        rows.append(_stress_cells(results.stress))
    header = ["#", "measurement", "this system", "machine limit / reference", "target", "result"]
    return _table(header, rows)


# -- details ---------------------------------------------------------------------------


def _process_table(processes: ProcessSampler, services: list[str]) -> list[str]:
    names = [*services, "nginx gateway", *HELPER_GROUPS.values()]
    rows = [
        [
            name,
            f"{processes.cpu_percent(name):,.0f} %",
            f"{processes.peak_rss_mb(name):,.0f} MB",
        ]
        for name in names
    ]
    lines = _table(["process", "CPU (% of one core)", "peak RSS"], rows)
    lines.append("")
    lines.append(
        f"Whole machine: {processes.machine_busy_percent:.0f} % of both cores busy over "
        f"{processes.seconds:.0f} s (PostgreSQL, Redis and RabbitMQ figures include every "
        "stack and test process on the machine)."
    )
    return lines


def _profile_section(profiles: list[ProfileSummary], load: str) -> list[str]:
    lines = [
        "## Profile: where the time goes",
        "",
        f"py-spy {profiles[0].rate} Hz, non-blocking, idle threads excluded, under {load}. "
        "Self time is the innermost frame of each sample, grouped by package; inclusive time "
        "counts every sample a project function was on the stack for.",
        "",
    ]
    for profile in profiles:
        lines += [
            f"### {profile.service} ({profile.samples:,} samples, busy "
            f"{profile.busy_share:.0%} of the window; raw stacks: `{profile.raw}`)",
            "",
        ]
        lines += _table(
            ["self time by package", "share"],
            [[name, f"{share:.1%}"] for name, share in profile.by_package],
        )
        lines.append("")
        lines += _table(
            ["heaviest functions (self)", "share"],
            [[f"`{name}`", f"{share:.1%}"] for name, share in profile.top_self],
        )
        lines.append("")
        lines += _table(
            ["project code (inclusive)", "share"],
            [[f"`{name}`", f"{share:.1%}"] for name, share in profile.top_project],
        )
        lines.append("")
    return lines


def _hot_processes(processes: ProcessSampler, services: list[str]) -> list[str]:
    return [
        f"{name} {processes.cpu_percent(name):.0f} %"
        for name in services
        if processes.cpu_percent(name) >= HOT_CORE_PERCENT
    ]


def _profile(results: RunResults, service: str, load: str) -> ProfileSummary | None:
    return next((p for p in results.profiles if p.service == service and p.load == load), None)


def _share_of(pairs: list[tuple[str, float]], needle: str) -> float:
    return sum(share for name, share in pairs if needle in name)


def _profile_evidence(profile: ProfileSummary | None) -> str:
    if profile is None:
        return ""
    packages = ", ".join(f"{name} {share:.0%}" for name, share in profile.by_package[:4])
    hot = ", ".join(f"`{name}` {share:.0%}" for name, share in profile.top_project[:3])
    return (
        f" Profile of {profile.service} under this load: busy {profile.busy_share:.0%} of "
        f"the window; self time by package {packages}; hottest project code (inclusive) "
        f"{hot}."
    )


def _problem_evidence(problems: list[LoggedProblem]) -> str:
    if not problems:
        return ""
    shown = "; ".join(f'{p.service} {p.level} x{p.count}: "{p.message}"' for p in problems[:3])
    return f" The services logged: {shown}."


def _read_gap(results: RunResults, read: ReadRow) -> str:
    profile = _profile(results, "event_service", "profile-read")
    text = (
        f"- **Row 1** ({read.share:.1%} of nginx; gateway p99 {_ms(read.gateway.p99_ms)} ms): "
        "every read runs through one Python process, where nginx sends the same bytes from "
        f"memory.{_profile_evidence(profile)}"
    )
    if profile is not None and _share_of(profile.top_project, "SeatGate.availability") >= 0.1:
        text += (
            " The list asks Redis for the live availability of each event on the page "
            "separately (one script call per event, gathered), so a page of "
            f"{results.plan_catalogue} events costs as many round trips; one pipelined call "
            "(or one script over all events of the page) would make it one."
        )
    return text + (
        " What would close the rest: let the gateway micro-cache GET /api/events for a "
        "second (`proxy_cache` + `proxy_cache_lock`: most reads would never reach Python), "
        "and one service replica per core (REPLICAS=2)."
    )


def _booking_gap(results: RunResults, bookings: BookingRow) -> str:
    profile = _profile(results, "booking_service", "profile-bookings")
    hot = _hot_processes(bookings.processes, _services(results))
    text = (
        f"- **Row 2** ({bookings.per_second:,.0f} bookings/s, p99 {_ms(bookings.p99_ms)} ms; "
        f"the hold script alone does {bookings.raw.requests_per_second:,.0f}/s, so the seat "
        "gate is not the limit): each booking crosses the gateway, booking_service, its "
        "internal calls to event_service and a PostgreSQL transaction. "
        f"The machine was {bookings.processes.machine_busy_percent:.0f} % busy"
        + (f"; {', '.join(hot)} of one core (one asyncio process uses one core)" if hot else "")
        + f".{_profile_evidence(profile)}"
    )
    if profile is not None:
        client = sum(
            share for name, share in profile.by_package if name in {"httpcore", "httpx", "anyio"}
        )
        if client >= 0.2:
            text += (
                f" {client:.0%} of booking_service's own time is the internal HTTP client "
                "(httpx/httpcore/anyio)"
            )
            bookkeeping = _share_of(profile.top_self, "_assign_requests_to_connections")
            bookkeeping += _share_of(profile.top_self, "is_idle")
            if bookkeeping >= 0.05:
                text += (
                    f", {bookkeeping:.0%} alone in httpcore's pool bookkeeping, which walks "
                    "every pooled connection on each request"
                )
            text += (
                "; fewer internal calls per booking (event read and hold in one round "
                "trip), a smaller pool or a lighter client would cut it."
            )
    return text + (
        " What would close the rest: replicas of booking_service and event_service (one per "
        "core), and less per-request Python on the booking path."
    )


def _flash_gap(flash: FlashRow) -> str:
    slow = sorted(
        ((route, figures) for route, figures in flash.gateway.items() if figures.requests >= 50),
        key=lambda item: -item[1].percentile_ms(0.99),
    )[:3]
    routes = "; ".join(
        f"{method} {path} p50 {_ms(f.percentile_ms(0.5))} ms, p99 {_ms(f.percentile_ms(0.99))} "
        f"ms, {f.share(500, 600)} answered 5xx"
        for (method, path), f in slow
    )
    text = (
        f"- **Row 3** (booking p99 {_ms(flash.p99_ms)} ms, {_sell_out(flash)}): "
        f"{flash.buyers} buyers share two cores with the payment path and ticket rendering "
        f"(notification_service {flash.processes.cpu_percent('notification_service'):.0f} % "
        f"of a core). Slowest routes at the gateway: {routes}."
        f"{_problem_evidence(flash.problems)}"
    )
    if any("QueuePool limit" in p.message for p in flash.problems):
        pooled = sorted({p.service for p in flash.problems if "QueuePool limit" in p.message})
        text += (
            f" {', '.join(pooled)} ran out of pooled database connections and made requests "
            "wait up to the pool timeout: look for a request that holds one connection while "
            "it waits on something else (an HTTP call, or a second session from the same "
            "pool inside the same request); that wait, not the seat gate, sets the sale's "
            "tail latency."
        )
    return text + (
        " What would close it: "
        + ("the failures the services logged first, then " if flash.problems else "")
        + "the row 2 fixes, and rendering tickets away from the sale's hot path."
    )


def _memory_gap(flash: FlashRow) -> str:
    over = [
        f"{name} {mb:.0f} MB"
        for name, mb in flash.peak_rss_mb.items()
        if mb >= SERVICE_RSS_TARGET_MB
    ]
    auth = flash.peak_rss_mb.get("auth_service", 0.0) >= SERVICE_RSS_TARGET_MB
    return (
        f"- **Memory** ({', '.join(over)} at peak, target < {SERVICE_RSS_TARGET_MB:.0f} MB): "
        f"a service's resident memory grows with the requests in flight at once ({flash.buyers} "
        "buyers here) and glibc keeps freed arenas. What would close it: "
        "`MALLOC_ARENA_MAX=2` in the services' environment and bounding in-flight work per "
        "process (uvicorn `--limit-concurrency`)"
        + (
            "; for auth_service, a smaller argon2 memory cost or fewer hash workers (each "
            "hash holds ARGON2_MEMORY_COST KiB)."
            if auth
            else "."
        )
    )


def gap_analysis(results: RunResults) -> list[str]:
    """What the measurements say about each missed target, and what would close it."""
    lines: list[str] = []
    read, bookings, flash = results.read, results.bookings, results.flash
    if read is not None and not read.met:
        lines.append(_read_gap(results, read))
    if bookings is not None and not bookings.met:
        lines.append(_booking_gap(results, bookings))
    if flash is not None and not flash.met:
        lines.append(_flash_gap(flash))
    if flash is not None and not flash.memory_met:
        lines.append(_memory_gap(flash))
    return lines


def _gateway_table(routes: dict[tuple[str, str], RouteFigures]) -> list[str]:
    rows = [
        [
            f"{method} {path}",
            f"{f.requests:,}",
            f"{f.share(200, 400):,}",
            f"{f.share(400, 500):,}",
            f"{f.share(500, 600):,}",
            _ms(f.percentile_ms(0.5)),
            _ms(f.percentile_ms(0.99)),
        ]
        for (method, path), f in sorted(routes.items(), key=lambda item: -item[1].requests)
    ]
    return _table(
        ["route (as nginx logged it)", "requests", "2xx/3xx", "4xx", "5xx", "p50 ms", "p99 ms"],
        rows,
    )


def _problems_table(problems: list[LoggedProblem]) -> list[str]:
    if not problems:
        return ["No warnings or errors in the services' logs."]
    return _table(
        ["service", "level", "count", "message"],
        [[p.service, p.level, f"{p.count:,}", p.message.replace("|", "/")] for p in problems],
    )


def render(results: RunResults) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{results.command}` on {results.started_at} (finished "
        f"{results.finished_at}). Every figure below comes from that one run; do not edit "
        "this file by hand, run the command again.",
        "",
    ]
    if results.quick:
        lines += [
            "> **Quick run** (`--quick`): small numbers to check the harness, not the issue's "
            "sizes. The targets are judged against the full run only.",
            "",
        ]
    lines += summary_table(results)
    lines.append("")
    if results.errors:
        lines += ["**k6 reported failures in this run:**", "", "```text"]
        lines += results.errors
        lines += ["```", ""]
    lines += [
        "## How it was measured",
        "",
        f"Command: `{results.command}`. Everything runs on this one machine: the bench stack "
        "(five services, nginx gateway on :28080, fresh databases `*_db_bench`, Redis db 11, "
        "vhost `ticketing_bench`), PostgreSQL, Redis, RabbitMQ, and the load generator (k6) "
        "itself. The run holds `/tmp/ticketing-stack.lock`, so no test run starts while it "
        "measures, but other developers' processes may still be running on the machine: the "
        f"load average was {', '.join(f'{x:.2f}' for x in results.load_before)} at the start "
        f"and {', '.join(f'{x:.2f}' for x in results.load_after)} at the end (1, 5, 15 min). "
        "With a load average above 1 the figures are pessimistic.",
        "",
        f"Accounts: {results.flash.buyers if results.flash else '?'} buyers registered and "
        "verified through the gateway (argon2id, codes read from the emails), an organizer "
        f"approved by the admin, in {results.prepare_seconds:.0f} s; every row reuses them.",
        "",
    ]
    lines += _table(["machine", ""], [[k, v] for k, v in results.machine.items()])
    lines.append("")
    lines += _table(["setting", ""], [[k, v] for k, v in results.settings.items()])
    lines.append("")
    lines += _table(["version", ""], [[k, f"`{v}`"] for k, v in results.versions.items()])
    lines += ["", "## Rows", ""]
    lines += _row_notes(results)
    if results.bookings is not None:
        lines += ["### Processes during row 2 (bookings)", ""]
        lines += _process_table(results.bookings.processes, _services(results))
        lines += ["", "### The gateway and the service logs during row 2", ""]
        lines += _gateway_table(results.bookings.gateway)
        lines.append("")
        lines += _problems_table(results.bookings.problems)
        lines.append("")
    if results.flash is not None:
        lines += ["### Processes during row 3 (flash sale)", ""]
        lines += _process_table(results.flash.processes, _services(results))
        lines += ["", "### The gateway and the service logs during row 3", ""]
        lines += _gateway_table(results.flash.gateway)
        lines.append("")
        lines += _problems_table(results.flash.problems)
        lines.append("")
    analysis = gap_analysis(results)
    if analysis:
        lines += ["## Missed targets and what would close them", "", *analysis, ""]
    if results.profiles:
        lines += _profile_section(results.profiles, results.profile_load)
    lines += [
        "## Raw output",
        "",
        "k6 logs and summaries: `.run/bench/k6/`; service logs: `.run/bench/logs/`; "
        "profiles: `.run/bench/profiles/`.",
        "",
    ]
    return "\n".join(lines)


def _services(results: RunResults) -> list[str]:
    return list(SERVICES)


def _row_notes(results: RunResults) -> list[str]:
    lines = []
    if results.read is not None:
        read = results.read
        lines.append(
            f"1. Both sides ran `k6/events_read.js` with the same {read.vus} VUs, addresses "
            f"and {read.seconds} s (after a warm-up); the static copy is the exact "
            f"{read.body_bytes:,}-byte body the gateway returned, served by nginx with the "
            "gateway's worker count. Every answer was checked for status 200 and the full "
            f"body. Failed: gateway {read.gateway.failed_share:.2%}, static "
            f"{read.static.failed_share:.2%}."
        )
    if results.bookings is not None:
        bookings = results.bookings
        lines.append(
            f"2. `k6/bookings.js`: each iteration books the next free seat of one "
            f"{bookings.seats:,}-seat event for one of the prepared buyers. The "
            f"raw figure is `{bookings.raw.command}` ({bookings.raw.requests:,} calls, "
            f"{bookings.raw.seats_held:,} seats held), the very script event_service runs "
            "(prelude + hold.lua), loaded with SCRIPT LOAD in a Redis db no stack uses."
        )
    if results.flash is not None:
        flash = results.flash
        lines.append(
            f"3. `k6/flash_sale.js`: {flash.buyers} VUs, each its own buyer and address, "
            f"race for one event of {flash.capacity:,} seats (Normal, VIP, VVIP), half of the "
            "attempts naming front-row seats, the rest asking for a count; each booking won "
            "is paid on the simulated provider's checkout and verified. "
            f"{flash.finished_buyers} of {flash.buyers} buyers finished (bought until sold "
            "out and saw their paid bookings confirmed) before the scenario's time limit; "
            "the others were stopped mid-request. "
            f"{flash.bookings:,} bookings won, {flash.payment_failed} payments failed "
            "(or timed out, and the booking was cancelled), "
            f"{flash.unexpected} unexpected answers, purchase (book + pay) p99 "
            f"{_ms(flash.purchase_p99_ms)} ms. Read back at the end: "
            f"{flash.oversold} oversold, {flash.double_sold} seats in two confirmed bookings, "
            f"{flash.paid_unconfirmed} paid but unconfirmed once the saga drained "
            f"({flash.lost_bookings} ended expired or failed, {flash.stuck_pending} still "
            f"pending); {flash.confirm_lagging} paid bookings were not yet confirmed when "
            "their buyer stopped waiting (the saga's lag under load, not a loss). The script's "
            f"verdict: {flash.run.outcome}"
            + (
                f" ({'; '.join(flash.run.failed_thresholds())})."
                if flash.run.failed_thresholds()
                else "."
            )
        )
    if results.stress is not None:
        stress = results.stress
        lines.append(
            f"4. `k6/stress_test.js` as written (ramp to 100 users, ~1 request per user per "
            f"second): {stress.figures.requests:,} requests; its thresholds: "
            f"{stress.run.outcome}. The original's figures are its README's; like them, the "
            "throughput is set by the users' pauses, so the comparison is about latency and "
            "errors."
        )
    lines.append("")
    return lines


def console_table(results: RunResults) -> str:
    return "\n".join(summary_table(results))
