"""What a run's own figures say about each target it missed.

Every sentence is computed from that run: the row's figures, the CPU each process spent
per booking or purchase, what the gateway and the services logged, and the top three
costs of the py-spy profile taken in the same run under a repeat of the row's load (the
packages with the most self time across the profiled services, each with its heaviest
function and the project code it ran under). Nothing here is written ahead of a
measurement, so nothing goes stale when the code changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.fmt import cpu_ms, ms, short_service
from bench.logscan import LoggedProblem
from bench.profiling import Cost, ProfileSummary
from bench.results import (
    BOOKINGS_SHARE_AIM,
    BOOKINGS_SHARE_TARGET,
    PURCHASE_CPU_TARGET_MS,
    READ_SHARE_TARGET,
    SERVICE_RSS_TARGET_MB,
    BookingRow,
    FlashRow,
    ReadRow,
    RunResults,
)

TOP_COSTS = 3
# A route the gateway saw fewer times than this says little about a tail latency.
MIN_ROUTE_REQUESTS = 50


def top_costs(
    profiles: Sequence[ProfileSummary], count: int = TOP_COSTS
) -> list[tuple[ProfileSummary, Cost]]:
    """The heaviest costs across ``profiles``, by seconds of the window (comparable, since
    the profiled services were sampled at the same rate over the same load)."""
    ranked = sorted(
        ((profile, cost) for profile in profiles for cost in profile.costs),
        key=lambda pair: -pair[1].seconds,
    )
    return ranked[:count]


def _describe(profile: ProfileSummary, cost: Cost) -> str:
    text = (
        f"{profile.service} in {cost.package}, {cost.seconds:,.1f} s of its "
        f"{profile.seconds:.0f} s window ({cost.share:.0%} of its samples; heaviest "
        f"`{cost.heaviest[0]}`"
    )
    return text + (f", mostly under `{cost.under[0]}`)" if cost.under else ")")


def costs_sentence(profiles: Sequence[ProfileSummary], load: str) -> str:
    ranked = top_costs(profiles)
    if not ranked:
        return f" No profile under {load} was taken in this run, so no cost can be named."
    items = "; ".join(f"({i}) {_describe(p, c)}" for i, (p, c) in enumerate(ranked, 1))
    return f" Top {len(ranked)} costs in the profile under {load}: {items}."


def _profiles(results: RunResults, load: str) -> list[ProfileSummary]:
    return [profile for profile in results.profiles if profile.load == load]


def _problems(problems: list[LoggedProblem]) -> str:
    if not problems:
        return ""
    shown = "; ".join(f'{p.service} {p.level} x{p.count:,}: "{p.message}"' for p in problems[:3])
    text = f" The services logged: {shown}."
    pooled = sorted({p.service for p in problems if "QueuePool limit" in p.message})
    if pooled:
        waits = sum(p.count for p in problems if "QueuePool limit" in p.message)
        text += (
            f" {waits:,} of those are {', '.join(pooled)} timing out on a full database "
            "connection pool."
        )
    return text


def _read_gap(results: RunResults, read: ReadRow) -> str:
    return (
        f"- **Row 1** ({read.share:.1%} of nginx, target ≥ {READ_SHARE_TARGET:.0%}): the "
        f"gateway answered {read.gateway.requests_per_second:,.0f} req/s (p99 "
        f"{ms(read.gateway.p99_ms)} ms) where nginx alone answered "
        f"{read.static.requests_per_second:,.0f} req/s (p99 {ms(read.static.p99_ms)} ms)."
        + costs_sentence(_profiles(results, "profile-read"), "row 1's load")
    )


def _ceiling_text(row: BookingRow, services: list[str], cores: int) -> str:
    if row.inserts is None or row.inserts.transactions_per_second <= 0:
        return " pgbench's ceiling was not measured, so the share cannot be judged."
    ceiling = row.inserts.transactions_per_second
    target = BOOKINGS_SHARE_TARGET * ceiling
    total = row.cpu_ms_per_booking(*services)
    text = (
        f" pgbench committed {ceiling:,.0f} booking transactions/s in the same run: "
        f"{BOOKINGS_SHARE_TARGET:.0%} is {target:,.0f} bookings/s, "
        f"{BOOKINGS_SHARE_AIM:.0%} {BOOKINGS_SHARE_AIM * ceiling:,.0f}/s."
    )
    if total > 0:
        text += (
            f" At {cpu_ms(total)} ms of service CPU per booking, {target:,.0f}/s would take "
            f"{target * total / 1000:,.1f} cores of the machine's {cores} for the services "
            f"alone (one core at {target:,.0f}/s is {cpu_ms(1000 / target)} ms per booking)."
        )
    return text


def _booking_gap(results: RunResults, row: BookingRow, services: list[str]) -> str:
    per_service = sorted(
        ((name, row.cpu_ms_per_booking(name)) for name in services), key=lambda pair: -pair[1]
    )
    busiest = [(name, cost) for name, cost in per_service if cost >= 0.05][:3]
    text = (
        f"- **Row 2** ({'; '.join(row.misses())}): {row.per_second:,.0f} bookings/s."
        + _ceiling_text(row, services, results.cores)
    )
    if busiest:
        text += (
            " CPU per booking, busiest first: "
            + ", ".join(
                f"{name} {cpu_ms(cost)} ms ({row.processes.cpu_percent(name):.0f} % of one core)"
                for name, cost in busiest
            )
            + f"; the machine was {row.processes.machine_busy_percent:.0f} % busy."
        )
    inserts = row.inserts
    text += (
        f" Latency p50/p99 {ms(row.p50_ms)} / {ms(row.p99_ms)} ms, where the hold script on "
        f"Redis answers at p99 {ms(row.raw.p99_ms)} ms"
        + (f" and pgbench's transaction at p99 {ms(inserts.p99_ms)} ms" if inserts else "")
        + "."
    )
    return (
        text
        + _problems(row.problems)
        + costs_sentence(_profiles(results, "profile-bookings"), "row 2's load")
    )


def _slowest_routes(flash: FlashRow, count: int = 3) -> str:
    slow = sorted(
        (
            (route, figures)
            for route, figures in flash.gateway.items()
            if figures.requests >= MIN_ROUTE_REQUESTS
        ),
        key=lambda item: -item[1].percentile_ms(0.99),
    )[:count]
    return "; ".join(
        f"{method} {path} p50 {ms(f.percentile_ms(0.5))} ms, p99 {ms(f.percentile_ms(0.99))} "
        f"ms, {f.share(500, 600):,} answered 5xx"
        for (method, path), f in slow
    )


def _email_text(flash: FlashRow) -> str:
    emails = flash.emails
    if emails is None:
        return " The ticket emails were not read back."
    text = f" {emails.sent:,} of {emails.confirmed:,} confirmed bookings had their ticket email"
    if emails.last_sent_after_load_s is not None:
        after = emails.last_sent_after_load_s
        text += (
            f"; the last went out {after:,.0f} s after the sale's load ended"
            if after > 0
            else "; the last went out before the sale's load ended"
        )
    if emails.missing:
        text += (
            f"; {emails.missing:,} were still unsent when the wait ran out after "
            f"{emails.waited_s:,.0f} s"
        )
    return text + "."


def _flash_gap(results: RunResults, flash: FlashRow) -> str:
    services = sorted(flash.services, key=lambda name: -flash.cpu_seconds(name))
    seconds = sum(flash.cpu_seconds(name) for name in flash.services)
    text = f"- **Row 3** ({'; '.join(flash.misses())}):"
    if flash.last_sold_seconds is not None:
        text += (
            f" {flash.sold:,} of {flash.capacity:,} seats sold in {flash.purchases:,} "
            f"purchases, the last {flash.last_sold_seconds:,.0f} s after the sale opened."
        )
    routes = _slowest_routes(flash)
    if routes:
        text += f" Slowest routes at the gateway: {routes}."
    text += _email_text(flash)
    busiest = "; ".join(
        f"{name} {flash.cpu_seconds(name):,.1f} s ({flash.processes.cpu_percent(name):.0f} % "
        "of one core during the sale)"
        for name in services[:3]
    )
    text += (
        f" The five services used {seconds:,.1f} s of CPU over the sale and its ticket emails, "
        f"busiest first: {busiest}; the machine was "
        f"{flash.processes.machine_busy_percent:.0f} % busy during the sale."
    )
    return (
        text
        + _problems(flash.problems)
        + costs_sentence(_profiles(results, "profile-flash"), "a repeat of the flash sale")
    )


def _purchase_cpu_gap(results: RunResults, flash: FlashRow, row3_named: bool) -> str:
    total = flash.services_cpu_ms_per_purchase
    if total is None:
        return "- **CPU per purchase**: no purchase completed, so there is no cost per purchase."
    per_service = sorted(
        ((name, flash.cpu_ms_per_purchase(name) or 0.0) for name in flash.services),
        key=lambda pair: -pair[1],
    )
    others = [name for name in flash.services if name != "notification_service"]
    excess = total - PURCHASE_CPU_TARGET_MS
    text = (
        f"- **CPU per purchase** ({cpu_ms(total)} ms, target ≤ {PURCHASE_CPU_TARGET_MS:.0f} "
        "ms): "
        + ", ".join(f"{short_service(name)} {cpu_ms(cost)} ms" for name, cost in per_service)
        + f"; without notification_service {cpu_ms(flash.cpu_ms_per_purchase(*others) or 0)} "
        f"ms. Meeting the target means {cpu_ms(excess)} ms less per purchase "
        f"({excess / total:.0%} of the cost)."
    )
    if row3_named and _profiles(results, "profile-flash"):
        return text + " Its top costs are the flash-sale profile's, named under row 3."
    return text + costs_sentence(_profiles(results, "profile-flash"), "a repeat of the flash sale")


def _memory_gap(results: RunResults, flash: FlashRow) -> str:
    peaks = flash.peak_rss_mb
    over = [name for name, mb in peaks.items() if mb >= SERVICE_RSS_TARGET_MB]
    text = (
        f"- **Memory** ({', '.join(f'{name} {peaks[name]:,.0f} MB' for name in over)} at "
        f"peak, target < {SERVICE_RSS_TARGET_MB:.0f} MB each):"
    )
    bookings = results.bookings
    if bookings is not None:
        during_row2 = ", ".join(
            f"{name} {bookings.processes.peak_rss_mb(name):,.0f} MB" for name in over
        )
        text += f" during row 2 they peaked at {during_row2}."
    return text + " py-spy samples CPU, not memory, so no profile cost applies to this row."


def gap_analysis(results: RunResults, services: list[str]) -> list[str]:
    """One paragraph per missed target, in the order of the summary table."""
    lines: list[str] = []
    read, bookings, flash = results.read, results.bookings, results.flash
    if read is not None and not read.met:
        lines.append(_read_gap(results, read))
    if bookings is not None and not bookings.met:
        lines.append(_booking_gap(results, bookings, services))
    if flash is not None and not flash.met:
        lines.append(_flash_gap(results, flash))
    if flash is not None and not flash.memory_met:
        lines.append(_memory_gap(results, flash))
    if flash is not None and not flash.purchase_cpu_met:
        lines.append(_purchase_cpu_gap(results, flash, row3_named=not flash.met))
    return lines
