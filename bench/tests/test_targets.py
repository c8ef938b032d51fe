"""Issue #22's figures without a stack: CPU per booking and per purchase, the share of
pgbench, the flash sale's payment steps and ticket emails, profile costs, ``--only``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import bench.__main__ as entry
from bench import run as run_module
from bench.baselines import HoldScriptRate, InsertRate
from bench.gaps import gap_analysis, top_costs
from bench.k6 import K6Result
from bench.procstats import CLOCK_TICKS, ProcessSampler
from bench.profiling import ProfileSummary, summarize
from bench.report import console_table, render
from bench.results import BookingRow, FlashRow, RunResults
from bench.ticket_emails import SaleRecords, TicketEmails, ticket_emails

SERVICES = [
    "auth_service",
    "booking_service",
    "event_service",
    "payment_service",
    "notification_service",
]
K6 = "k6 (load generator)"
NGINX = "nginx gateway"
PAID = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _sampler(
    seconds: float, cpu_seconds: dict[str, float], peak_mb: float = 100.0
) -> ProcessSampler:
    """A sampler as if it had watched ``seconds`` and seen ``cpu_seconds`` per part."""
    sampler = ProcessSampler({name: [i + 1] for i, name in enumerate(SERVICES)})
    sampler.seconds = seconds
    sampler.machine_busy_percent = 95.0
    for name, used in cpu_seconds.items():
        figures = sampler.figures[name]
        figures.cpu_ticks = round(used * CLOCK_TICKS)
        figures.peak_rss_mb = peak_mb
    return sampler


def _k6(tmp_path: Path, script: str = "bookings.js") -> K6Result:
    return K6Result(script, 0, {}, tmp_path / "k6.log")


def _booking_row(tmp_path: Path, *, created: int = 4000, p99_ms: float = 120.0) -> BookingRow:
    """20 s of row 2 on a machine whose pgbench does 3,000 bookings/s."""
    return BookingRow(
        vus=50,
        seconds=20,
        seats=100_000,
        created=created,
        refused=0,
        p50_ms=40.0,
        p95_ms=90.0,
        p99_ms=p99_ms,
        run=_k6(tmp_path),
        raw=HoldScriptRate(200_000, 50, 40_000.0, 1.0, 1.5, 2.0, 200_000, "redis-benchmark"),
        processes=_sampler(
            20.0,
            {"booking_service": 16.0, "event_service": 4.0, NGINX: 1.0, K6: 3.0},
        ),
        inserts=InsertRate(50, 2, 12, 36_000, 0, 3000.0, 16.0, 12.0, 40.0, 80.0, "pgbench -n"),
    )


def _emails(missing: int = 0) -> TicketEmails:
    return TicketEmails(
        confirmed=2500,
        sent=2500 - missing,
        duplicated=0,
        unpaid=0,
        lag_p50_s=1.5,
        lag_p99_s=4.25,
        lag_max_s=7.5,
        last_sent_after_load_s=12.0,
        waited_s=9.0,
        timeout_s=300.0,
    )


def _flash(tmp_path: Path, **changes: object) -> FlashRow:
    """A sale of 10,000 seats in 2,500 purchases; the services used 50 s of CPU in all."""
    fields: dict[str, object] = {
        "buyers": 500,
        "capacity": 10_000,
        "attempts": 6000,
        "bookings": 2500,
        "sold": 10_000,
        "rejected": 3500,
        "double_sold": 0,
        "oversold": 0,
        "paid_unconfirmed": 0,
        "confirm_lagging": 0,
        "stuck_pending": 0,
        "lost_bookings": 0,
        "finished_buyers": 500,
        "unexpected": 0,
        "payment_failed": 0,
        "p95_ms": 400.0,
        "p99_ms": 700.0,
        "purchase_p99_ms": 1500.0,
        "sell_out_seconds": 61.0,
        "run": _k6(tmp_path, "flash_sale.js"),
        "processes": _sampler(
            60.0,
            {
                "booking_service": 15.0,
                "event_service": 10.0,
                "payment_service": 12.5,
                "notification_service": 5.0,
                "auth_service": 0.5,
                NGINX: 2.5,
                K6: 5.0,
            },
        ),
        "services": SERVICES,
        "purchases": 2500,
        "last_sold_seconds": 61.0,
        "step_p99_ms": {"initialize": 300.0, "pay": 200.0, "verify": 100.0},
        "emails": _emails(),
        "drain": _sampler(10.0, {"notification_service": 7.0}, peak_mb=120.0),
    }
    fields.update(changes)
    return FlashRow(**fields)  # type: ignore[arg-type]


def _results(tmp_path: Path, **rows: object) -> RunResults:
    results = RunResults(started_at="2026-12-04T10:00:00+00:00", command="scripts/bench")
    for name, row in rows.items():
        setattr(results, name, row)
    return results


# -- CPU per booking and per purchase --------------------------------------------------


def test_cpu_per_booking_is_each_process_cpu_over_the_bookings_created(tmp_path: Path) -> None:
    row = _booking_row(tmp_path)
    assert row.processes.cpu_seconds("booking_service") == pytest.approx(16.0)
    assert row.cpu_ms_per_booking("booking_service") == pytest.approx(4.0)
    assert row.cpu_ms_per_booking(*SERVICES) == pytest.approx(5.0)
    assert row.cpu_ms_per_booking(K6) == pytest.approx(0.75)
    assert _booking_row(tmp_path, created=0).cpu_ms_per_booking("booking_service") == 0.0


def test_cpu_per_purchase_counts_the_wait_for_the_ticket_emails(tmp_path: Path) -> None:
    flash = _flash(tmp_path)
    # 43 s during the sale and 7 s of notification_service afterwards, for 2,500 purchases.
    assert flash.services_cpu_ms_per_purchase == pytest.approx(20.0)
    assert flash.cpu_ms_per_purchase("notification_service") == pytest.approx(4.8)
    others = [name for name in SERVICES if name != "notification_service"]
    assert flash.cpu_ms_per_purchase(*others) == pytest.approx(15.2)
    assert flash.purchase_cpu_met
    assert flash.peak_rss_mb["notification_service"] == 120.0


def test_cpu_per_purchase_misses_over_25_ms_and_is_unknown_without_purchases(
    tmp_path: Path,
) -> None:
    assert not _flash(tmp_path, purchases=1000).purchase_cpu_met  # 50 ms each
    nothing = _flash(tmp_path, purchases=0)
    assert nothing.services_cpu_ms_per_purchase is None
    assert not nothing.purchase_cpu_met


# -- row 2: share of pgbench -----------------------------------------------------------


def test_row_2_is_judged_by_its_share_of_pgbench_and_its_p99(tmp_path: Path) -> None:
    met = _booking_row(tmp_path, created=8000)  # 400/s of 3,000/s
    assert met.ceiling_share == pytest.approx(400 / 3000)
    assert met.met
    assert _booking_row(tmp_path, created=8000, p99_ms=250.0).misses() == ["p99 250 ms ≥ 250 ms"]
    slow = _booking_row(tmp_path, created=4000)  # 200/s: 6.7 %
    assert slow.misses() == ["6.7% of pgbench < 12%"]


def test_row_2_without_a_pgbench_ceiling_is_not_met(tmp_path: Path) -> None:
    row = _booking_row(tmp_path, created=8000)
    row.inserts = None
    assert row.ceiling_share is None
    assert row.misses() == ["no pgbench ceiling measured"]


def test_row_2_reports_the_share_and_the_cpu_per_booking(tmp_path: Path) -> None:
    report = render(_results(tmp_path, bookings=_booking_row(tmp_path, created=8000)))
    row = next(line for line in report.splitlines() if line.startswith("| 2 |"))
    assert "400 bookings/s (8,000 created, 0 refused) = **13.3% of pgbench's 3,000/s**" in row
    assert "CPU per booking: services 2.5 ms (booking 2.0, event 0.50), nginx 0.12 ms" in row
    assert "k6 0.38 ms" in row
    assert "≥ 12% of pgbench (aim 20%), p99 < 250 ms | **met** |" in row
    assert "| booking_service | 80 % | 16.0 s | 2.0 | 100 MB |" in report
    assert "| process | CPU (% of one core) | CPU time | CPU ms per booking | peak RSS |" in report
    assert "k6 (the load generator) 0.38 ms (12%)" in report
    assert "nginx 0.12 ms (4%)" in report


# -- row 3: the sale, its payment steps and its ticket emails --------------------------


def test_a_sale_sold_out_in_time_with_fast_steps_and_every_email_is_met(tmp_path: Path) -> None:
    flash = _flash(tmp_path)
    assert flash.misses() == []
    report = render(_results(tmp_path, flash=flash))
    row = next(line for line in report.splitlines() if line.startswith("| 3 |"))
    assert "sold out in 61.0 s; booking p99 700 ms" in row
    assert "initialize / pay / verify p99 300 / 200 / 100 ms" in row
    assert "ticket emails: 2,500 of 2,500 confirmed bookings sent" in row
    assert "lag payment → email p99 4.2 s, largest 7.5 s" in row
    assert row.endswith("0 double-sold; **met** |")


@pytest.mark.parametrize(
    ("changes", "missed"),
    [
        ({"sell_out_seconds": 95.0}, "sold out after 95 s"),
        ({"sell_out_seconds": None, "sold": 8000}, "not sold out (8,000 of 10,000)"),
        ({"p99_ms": 1000.0}, "booking p99 1,000 ms"),
        ({"step_p99_ms": {"initialize": 1200.0, "pay": 1.0, "verify": 1.0}}, "initialize p99"),
        ({"step_p99_ms": {"initialize": 1.0, "pay": 1.0}}, "verify not timed"),
        ({"emails": _emails(missing=3)}, "3 ticket emails not sent"),
        ({"emails": None}, "ticket emails not read"),
        ({"capacity": 200, "buyers": 20}, "not the target size"),
    ],
)
def test_each_flash_target_is_named_when_missed(
    tmp_path: Path, changes: dict[str, object], missed: str
) -> None:
    flash = _flash(tmp_path, **changes)
    assert not flash.met
    assert any(missed in text for text in flash.misses()), flash.misses()


def test_a_sale_not_sold_out_says_when_its_last_seat_sold(tmp_path: Path) -> None:
    flash = _flash(tmp_path, sell_out_seconds=None, sold=7444, last_sold_seconds=219.4)
    report = render(_results(tmp_path, flash=flash))
    assert "not sold out (7,444 of 10,000 sold, the last at 219 s)" in report


def test_the_new_purchase_cpu_row_shows_the_five_services_and_the_split(tmp_path: Path) -> None:
    report = render(_results(tmp_path, flash=_flash(tmp_path, purchases=1000)))
    row = next(line for line in report.splitlines() if line.startswith("| 3c |"))
    assert "**50.0 ms** (50 s of CPU over 60 s of sale + 10 s of ticket emails ÷ 1,000" in row
    assert "booking 15.0, event 10.0, payment 12.5, notification 12.0" in row
    assert "without notification_service 38.0 ms" in row
    assert "nginx 2.5 ms, k6 5.0 ms per purchase" in row
    assert row.endswith("| ≤ 25 ms | **missed** |")


# -- ticket emails read back -------------------------------------------------------------


def test_ticket_email_lags_run_from_payment_to_the_first_email() -> None:
    records = SaleRecords(
        confirmed=[1, 2, 3, 4],
        paid_at={1: PAID, 2: PAID, 3: PAID},
        sent={
            1: (1, PAID + timedelta(seconds=2)),
            2: (2, PAID + timedelta(seconds=10)),
            4: (1, PAID + timedelta(seconds=30)),
        },
    )
    emails = ticket_emails(
        records, load_ended_at=PAID + timedelta(seconds=20), waited_s=12.0, timeout_s=60.0
    )
    assert (emails.confirmed, emails.sent, emails.missing) == (4, 3, 1)
    assert emails.duplicated == 1  # booking 2 was emailed twice
    assert emails.unpaid == 1  # booking 4 has no paid payment, so no lag
    assert emails.lag_max_s == 10.0
    assert emails.lag_p99_s == 10.0
    assert emails.last_sent_after_load_s == 10.0
    assert not emails.met


def test_a_sale_without_confirmed_bookings_owes_no_email() -> None:
    emails = ticket_emails(
        SaleRecords([], {}, {}), load_ended_at=PAID, waited_s=0.0, timeout_s=60.0
    )
    assert emails.met
    assert emails.lag_max_s is None
    assert emails.last_sent_after_load_s is None


# -- profile costs and the explanation of a missed target ------------------------------


def _profile(
    tmp_path: Path, service: str, lines: list[str], seconds: float = 10.0
) -> ProfileSummary:
    raw = tmp_path / f"{service}.txt"
    raw.write_text("\n".join(lines) + "\n")
    return summarize(service, raw, seconds=seconds, rate=100, load="profile-bookings")


BOOKING_STACKS = [
    "run (uvicorn/main.py);create_booking (booking_service/service.py);"
    "_store (booking_service/service.py);execute (sqlalchemy/orm/session.py) 300",
    "run (uvicorn/main.py);create_booking (booking_service/service.py);"
    "hold (booking_service/event_client.py);send (httpcore/_sync.py) 200",
    "run (uvicorn/main.py);run_once (asyncio/base_events.py) 100",
]
EVENT_STACKS = [
    "run (uvicorn/main.py);hold_seats (event_service/holds.py);evalsha (redis/client.py) 250",
    "run (uvicorn/main.py);route (fastapi/routing.py) 50",
]


def test_a_profile_cost_names_its_heaviest_function_and_the_code_it_ran_under(
    tmp_path: Path,
) -> None:
    profile = _profile(tmp_path, "booking_service", BOOKING_STACKS)
    [sqlalchemy, httpcore, loop] = profile.costs
    assert sqlalchemy.package == "sqlalchemy"
    assert sqlalchemy.share == pytest.approx(0.5)
    assert sqlalchemy.seconds == pytest.approx(3.0)
    assert sqlalchemy.heaviest[0] == "execute (sqlalchemy/orm/session.py)"
    assert sqlalchemy.heaviest[1] == pytest.approx(0.5)
    assert sqlalchemy.under is not None
    assert sqlalchemy.under[0] == "_store (booking_service/service.py)"
    assert httpcore.under is not None
    assert httpcore.under[0] == "hold (booking_service/event_client.py)"
    assert loop.under is None  # the event loop's own time ran under no project code


def test_top_costs_rank_every_profiled_service_by_seconds(tmp_path: Path) -> None:
    profiles = [
        _profile(tmp_path, "booking_service", BOOKING_STACKS),
        _profile(tmp_path, "event_service", EVENT_STACKS),
    ]
    ranked = [(p.service, c.package) for p, c in top_costs(profiles)]
    assert ranked == [
        ("booking_service", "sqlalchemy"),
        ("event_service", "redis"),
        ("booking_service", "httpcore"),
    ]


def test_a_missed_row_2_names_the_profile_top_three_costs(tmp_path: Path) -> None:
    results = _results(tmp_path, bookings=_booking_row(tmp_path), cores=2)
    results.profiles = [
        _profile(tmp_path, "booking_service", BOOKING_STACKS),
        _profile(tmp_path, "event_service", EVENT_STACKS),
    ]
    [paragraph] = gap_analysis(results, SERVICES)
    assert paragraph.startswith("- **Row 2** (6.7% of pgbench < 12%): 200 bookings/s.")
    assert "12% is 360 bookings/s, 20% 600/s" in paragraph
    assert "would take 1.8 cores of the machine's 2 for the services alone" in paragraph
    assert "booking_service 4.0 ms (80 % of one core)" in paragraph
    assert (
        "(1) booking_service in sqlalchemy, 3.0 s of its 10 s window (50% of its samples; "
        "heaviest `execute (sqlalchemy/orm/session.py)`, mostly under "
        "`_store (booking_service/service.py)`)"
    ) in paragraph
    assert "(2) event_service in redis" in paragraph
    assert "(3) booking_service in httpcore" in paragraph


def test_a_missed_row_without_a_profile_says_so(tmp_path: Path) -> None:
    flash = _flash(tmp_path, p99_ms=2000.0, purchases=1000)
    paragraphs = gap_analysis(_results(tmp_path, flash=flash), SERVICES)
    assert paragraphs[0].startswith("- **Row 3** (booking p99 2,000 ms):")
    assert "No profile under a repeat of the flash sale was taken in this run" in paragraphs[0]
    assert paragraphs[1].startswith("- **CPU per purchase** (50.0 ms, target ≤ 25 ms):")
    assert "Meeting the target means 25.0 ms less per purchase (50% of the cost)." in paragraphs[1]


def test_the_explanations_carry_no_advice_written_ahead_of_the_run(tmp_path: Path) -> None:
    flash = _flash(tmp_path, p99_ms=2000.0, purchases=1000)
    for name in SERVICES:
        flash.processes.figures[name].peak_rss_mb = 200.0
    results = _results(tmp_path, bookings=_booking_row(tmp_path), flash=flash)
    text = "\n".join(gap_analysis(results, SERVICES))
    assert "**Memory**" in text
    for stale in (
        "MALLOC_ARENA_MAX",
        "proxy_cache",
        "limit-concurrency",
        "replicas",
        "would close",
    ):
        assert stale not in text


# -- --only ------------------------------------------------------------------------------


def test_only_bookings_prepares_just_the_buyers_row_2_uses() -> None:
    plan = run_module.subset_plan(run_module.FULL, ["bookings"])
    assert (plan.buyers, plan.catalogue_events) == (50, 0)
    assert plan.booking_seconds == run_module.FULL.booking_seconds


def test_quick_only_bookings_keeps_the_full_concurrency_in_shorter_windows() -> None:
    plan = run_module.subset_plan(run_module.QUICK, ["bookings"])
    assert plan.booking_vus == run_module.FULL.booking_vus
    assert plan.buyers == plan.booking_vus
    assert plan.booking_seconds < run_module.FULL.booking_seconds
    assert plan.pgbench_clients == run_module.FULL.pgbench_clients
    assert plan.quick


def test_an_unknown_subset_is_refused() -> None:
    with pytest.raises(ValueError, match="--only takes"):
        run_module.subset_plan(run_module.FULL, ["reads"])


def test_only_bookings_writes_its_own_report_and_leaves_the_docs_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[dict[str, object]] = []

    def fake_run(plan: run_module.Plan, **kwargs: object) -> RunResults:
        calls.append({"plan": plan, **kwargs})
        results = _results(tmp_path, bookings=_booking_row(tmp_path, created=8000))
        results.only = ("bookings",)
        return results

    monkeypatch.setattr(entry, "ROOT", tmp_path)
    monkeypatch.setattr(entry, "DEFAULT_OUTPUT", tmp_path / "BENCHMARKS.md")
    monkeypatch.setattr(entry, "QUICK_OUTPUT", tmp_path / "run" / "BENCHMARKS-quick.md")
    monkeypatch.setattr(entry, "SCALING_DOC", tmp_path / "SCALING.md")
    monkeypatch.setattr(entry, "run", fake_run)
    assert entry.main(["--quick", "--only", "bookings"]) == 0  # no flash sale, no violation
    [call] = calls
    assert call["only"] == ["bookings"]
    report = (tmp_path / "run" / "BENCHMARKS-bookings-quick.md").read_text()
    assert "**Subset run** (`--only bookings`): only row 2 with its baselines" in report
    assert not (tmp_path / "BENCHMARKS.md").exists()
    printed = capsys.readouterr().out
    assert "| 2 | bookings created" in printed
    assert "CPU ms per booking" in printed


def test_console_lists_missed_targets_with_their_figures(tmp_path: Path) -> None:
    printed = console_table(_results(tmp_path, bookings=_booking_row(tmp_path)))
    assert "- **Row 2** (6.7% of pgbench < 12%)" in printed


def test_a_missed_sale_profiles_its_two_busiest_services_counting_the_emails(
    tmp_path: Path,
) -> None:
    # booking 15 s, payment 12.5 s, notification 5 s in the sale + 7 s of ticket emails
    assert run_module.busiest_services(_flash(tmp_path)) == ["booking_service", "payment_service"]
    drained = _sampler(10.0, {"notification_service": 20.0})
    assert run_module.busiest_services(_flash(tmp_path, drain=drained)) == [
        "notification_service",
        "booking_service",
    ]
