"""The benchmark harness's own logic, without a stack: mail, profiles, k6 summaries, report."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from bench import run as run_module
from bench.baselines import HoldScriptRate, InsertRate
from bench.k6 import K6Result
from bench.logscan import LogWindow
from bench.mail import verification_code
from bench.procstats import ProcessSampler
from bench.profiling import package_of, summarize
from bench.report import render
from bench.results import BookingRow, FlashRow, RunResults
from bench.ticket_emails import TicketEmails


def _email(to: str, text: str) -> bytes:
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = "Hello"
    message.set_content(text)
    return message.as_bytes()


def test_verification_code_is_read_from_the_plain_text_email() -> None:
    raw = _email("Buyer@Example.com", "Welcome!\nYour verification code: 493021\n")
    assert verification_code(raw) == ("buyer@example.com", "493021")


def test_ticket_emails_are_not_mistaken_for_codes() -> None:
    assert verification_code(_email("a@example.com", "Your ticket is attached.")) is None


def test_profile_summary_groups_self_time_by_package(tmp_path: Path) -> None:
    raw = tmp_path / "stacks.txt"
    raw.write_text(
        "main (uvicorn/main.py);create_booking (booking_service/service.py);"
        "execute (asyncpg/connection.py) 30\n"
        "main (uvicorn/main.py);create_booking (booking_service/service.py);"
        "dumps (json/encoder.py) 10\n"
        "main (uvicorn/main.py);run (asyncio/base_events.py) 60\n"
    )
    summary = summarize("booking_service", raw, seconds=1.0, rate=100)
    assert summary.samples == 100
    assert summary.busy_share == 1.0
    assert dict(summary.by_package) == {
        "asyncio (event loop)": 0.6,
        "asyncpg": 0.3,
        "stdlib json": 0.1,
    }
    assert summary.top_project == [("create_booking (booking_service/service.py)", 0.4)]


def test_package_of_a_frame_is_its_top_folder() -> None:
    assert package_of("Session.execute (sqlalchemy/orm/session.py)") == "sqlalchemy"
    assert package_of("wait (threading.py)") == "stdlib"
    assert package_of("<module> (<frozen runpy>)") == "python internals"


def _k6(tmp_path: Path, metrics: dict[str, dict[str, object]], code: int = 0) -> K6Result:
    return K6Result("flash_sale.js", code, metrics, tmp_path / "k6.log")


def test_k6_result_names_the_crossed_thresholds(tmp_path: Path) -> None:
    result = _k6(
        tmp_path,
        {
            "flash_double_sold": {"count": 2, "thresholds": {"count==0": True}},
            "checks": {"value": 1, "thresholds": {"rate==1": False}},
        },
        code=99,
    )
    assert not result.passed
    assert result.outcome == "thresholds failed"
    assert result.failed_thresholds() == ["flash_double_sold: count==0"]
    assert result.value("flash_double_sold", "count") == 2
    assert result.value("missing", "p(99)") == 0.0


def _flash(tmp_path: Path, double_sold: int) -> FlashRow:
    return FlashRow(
        buyers=500,
        capacity=10_000,
        attempts=9000,
        bookings=4000,
        sold=10_000,
        rejected=5000,
        double_sold=double_sold,
        oversold=0,
        paid_unconfirmed=0,
        confirm_lagging=0,
        stuck_pending=0,
        lost_bookings=0,
        finished_buyers=500,
        unexpected=0,
        payment_failed=0,
        p95_ms=400.0,
        p99_ms=800.0,
        purchase_p99_ms=1500.0,
        sell_out_seconds=60.0,
        run=_k6(tmp_path, {}, code=99 if double_sold else 0),
        processes=ProcessSampler({}),
        services=["booking_service"],
        purchases=4000,
        last_sold_seconds=60.0,
        step_p99_ms={"initialize": 300.0, "pay": 200.0, "verify": 100.0},
        emails=TicketEmails(4000, 4000, 0, 0, 2.0, 5.0, 6.5, 3.0, 4.0, 300.0),
    )


def test_report_judges_a_clean_flash_sale_against_its_targets(tmp_path: Path) -> None:
    results = RunResults(started_at="2026-11-25T10:00:00+00:00", flash=_flash(tmp_path, 0))
    report = render(results)
    assert "**0 double-sold**" in report
    assert "sold out in 60.0 s" in report
    assert "| 3 | flash sale: 500 buyers, 10,000 seats" in report
    assert "0 double-sold; **met**" in report


def test_report_flags_a_double_sale(tmp_path: Path) -> None:
    flash = _flash(tmp_path, 3)
    assert not flash.met
    assert not flash.correct
    report = render(RunResults(started_at="2026-11-25T10:00:00+00:00", flash=flash))
    assert "**3 double-sold**" in report
    assert "DOUBLE-SOLD; **missed**" in report


def test_booking_row_misses_when_its_share_of_pgbench_is_under_target(tmp_path: Path) -> None:
    raw = HoldScriptRate(1000, 50, 30_000.0, 1.0, 2.0, 3.0, 1000, "redis-benchmark ...")
    inserts = InsertRate(50, 2, 12, 36_000, 0, 3000.0, 16.0, 12.0, 40.0, 80.0, "pgbench -n")
    row = BookingRow(
        vus=50,
        seconds=20,
        seats=100_000,
        created=4000,
        refused=0,
        p50_ms=50.0,
        p95_ms=90.0,
        p99_ms=120.0,
        run=_k6(tmp_path, {}),
        raw=raw,
        processes=ProcessSampler({}),
        inserts=inserts,
    )
    assert row.per_second == 200.0
    assert row.ceiling_share == pytest.approx(200 / 3000)
    assert not row.met
    report = render(RunResults(started_at="2026-11-25T10:00:00+00:00", bookings=row))
    assert "200 bookings/s (4,000 created, 0 refused) = **6.7% of pgbench's 3,000/s**" in report
    assert "30,000 holds/s" in report
    assert "**missed** (6.7% of pgbench < 12%)" in report
    assert "- **Row 2** (6.7% of pgbench < 12%): 200 bookings/s." in report


def test_routes_and_logged_failures_are_grouped_without_their_ids(tmp_path: Path) -> None:
    access = tmp_path / "gateway-access.log"
    service = tmp_path / "payment_service-0.log"
    access.write_text("")
    service.write_text("")
    with LogWindow(tmp_path) as window:
        access.write_text(
            "\n".join(
                json.dumps({"method": m, "uri": u, "status": s, "duration": d})
                for m, u, s, d in [
                    ("POST", "/api/bookings", 201, 0.010),
                    ("POST", "/api/bookings", 409, 0.020),
                    ("POST", "/api/payments/checkout/tkt-12-ab12/pay", 303, 0.5),
                    ("GET", "/api/bookings/17/cancel?x=1", 504, 30.0),
                    ("GET", "/gateway/healthz", 200, 0.001),
                ]
            )
            + "\n"
        )
        failure = "Traceback...\nTimeoutError: QueuePool limit of size 8 overflow 0 reached"
        service.write_text(
            "\n".join(
                json.dumps({"level": "error", "msg": f"unhandled error on GET {u}", "exc": failure})
                for u in ("/api/payments/verify/tkt-1-aa", "/api/payments/verify/tkt-2-bb")
            )
            + "\nnot json\n"
        )
    routes = window.gateway_routes()
    assert routes[("POST", "/api/bookings")].statuses == {201: 1, 409: 1}
    assert routes[("POST", "/api/bookings")].percentile_ms(0.99) == 20.0
    assert ("POST", "/api/payments/checkout/{tx_ref}/pay") in routes
    assert routes[("GET", "/api/bookings/{id}/cancel")].share(500, 600) == 1
    assert all(not path.startswith("/gateway") for _, path in routes)
    [problem] = window.problems(["payment_service"])
    assert problem.count == 2
    assert "QueuePool limit" in problem.message
    assert "tkt-" not in problem.message


@pytest.mark.parametrize(("duration", "seconds"), [("4m", 240), ("90s", 90), ("1m30s", 90)])
def test_k6_durations_in_seconds(duration: str, seconds: int) -> None:
    assert run_module._seconds(duration) == seconds


@pytest.mark.parametrize("duration", ["", "4", "4x", "m4"])
def test_a_malformed_k6_duration_is_refused(duration: str) -> None:
    with pytest.raises(ValueError, match="k6 duration"):
        run_module._seconds(duration)
