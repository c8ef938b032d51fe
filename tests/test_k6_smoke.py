"""The k6 scripts, run small and short against the test stack, so they cannot rot.

Each script runs for a few seconds with a handful of virtual users, each from its own
loopback address; the test stack keeps its real rate limit (10 r/s, burst 20), so the
throughput scripts pace themselves. A crossed k6 threshold or a failed check that a
threshold guards makes k6 exit non-zero, and the test fails. The flash sale also has to
sell every seat, none twice. The benchmark's own baseline (the seat-hold script driven by
redis-benchmark) runs tiny too. The full-size benchmark is ``scripts/bench``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.baselines import redis_hold_rate
from bench.k6 import K6Result, run_k6
from bench.prepare import prepare
from tests.conftest import GATEWAY_URL, Mailbox
from tests.support_auth import code_from_mailbox

pytestmark = [pytest.mark.stack, pytest.mark.timeout(120)]

BUYERS = 5
FLASH_SEATS = {"SEATS_NORMAL": "12", "SEATS_VIP": "6", "SEATS_VVIP": "2", "SEATS_PER_ROW": "10"}
# A few seconds each; k6 must finish well inside this.
K6_TIMEOUT = 60.0


@pytest.fixture(scope="module")
async def accounts(mailbox: Mailbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The setup step the benchmark uses, small: five verified buyers and an organizer."""

    async def code(email: str) -> str:
        return await code_from_mailbox(mailbox, email)

    data = await prepare(GATEWAY_URL, code, buyers=BUYERS, catalogue_events=2, concurrency=BUYERS)
    path = tmp_path_factory.mktemp("k6") / "accounts.json"
    data.write(path)
    return path


@pytest.fixture
def k6_logs(tmp_path: Path) -> Path:
    return tmp_path / "k6"


def _passed(result: K6Result) -> K6Result:
    assert result.passed, result.describe_failure() + "\n" + result.log.read_text()[-3000:]
    return result


def test_original_smoke_script_reads_the_event_list_without_errors(k6_logs: Path) -> None:
    result = _passed(
        run_k6(
            "script.js",
            env={"BASE_URL": GATEWAY_URL},
            log_dir=k6_logs,
            extra_args=["--stage", "2s:5", "--stage", "1s:0"],
            timeout=K6_TIMEOUT,
        )
    )
    assert result.value("http_reqs", "count") >= 3
    assert result.value("rate_limited", "value") == 0


def test_stress_script_meets_its_thresholds_on_a_short_ramp(k6_logs: Path) -> None:
    result = _passed(
        run_k6(
            "stress_test.js",
            env={"BASE_URL": GATEWAY_URL},
            log_dir=k6_logs,
            extra_args=["--stage", "3s:10", "--stage", "1s:0"],
            timeout=K6_TIMEOUT,
        )
    )
    assert result.value("http_reqs", "count") >= 5
    assert result.value("http_req_failed", "value") == 0


def test_flash_sale_sells_every_seat_once_and_confirms_every_payment(
    accounts: Path, k6_logs: Path
) -> None:
    result = _passed(
        run_k6(
            "flash_sale.js",
            env={
                "BENCH_DATA": str(accounts),
                "BASE_URL": GATEWAY_URL,
                "BUYERS": str(BUYERS),
                "MAX_SEATS": "2",
                "SETTLE_TIMEOUT_S": "30",
                "MAX_DURATION": "40s",
                # Latency is the benchmark's business; here only correctness is judged.
                "BOOKING_P99_MS": "10000",
                **FLASH_SEATS,
            },
            log_dir=k6_logs,
            timeout=K6_TIMEOUT + 60,
        )
    )
    assert result.value("flash_capacity", "value") == 20
    assert result.value("flash_sold_seats", "value") == 20
    assert result.value("flash_sold_out", "value") == 1
    assert result.value("flash_double_sold", "count") == 0
    assert result.value("flash_paid_unconfirmed", "count") == 0
    assert result.value("flash_stuck_pending", "count") == 0
    assert "flash_confirm_lagging" in result.metrics  # reported as the saga's lag, not judged
    assert result.value("flash_lost_bookings", "count") == 0
    assert result.value("iterations", "count") == BUYERS
    assert result.value("flash_attempts", "count") >= result.value("flash_bookings", "count") > 0


def test_waiting_room_script_admits_buyers_who_then_buy_every_seat_once(
    accounts: Path, k6_logs: Path
) -> None:
    result = _passed(
        run_k6(
            "waiting_room.js",
            env={
                "BENCH_DATA": str(accounts),
                "BASE_URL": GATEWAY_URL,
                "BUYERS": str(BUYERS),
                "SEATS_NORMAL": "4",
                "SEATS_VIP": "2",
                "SEATS_VVIP": "0",
                "SEATS_PER_ROW": "10",
                "JOIN_SECONDS": "2",
                "ONSALE_AFTER_S": "1",
                "LEAD_S": "3",
                "ADMIT_PER_MINUTE": "600",
                "QUEUE_WAIT_S": "40",
                # Latency is the benchmark's business; here only correctness is judged.
                "P99_MS": "10000",
            },
            log_dir=k6_logs,
            timeout=K6_TIMEOUT + 60,
        )
    )
    assert result.value("queue_gate_refusals_ok", "value") == 1  # 428 and 403 first
    assert result.value("queue_double_sold", "count") == 0
    assert result.value("queue_oversold", "count") == 0
    assert result.value("queue_lost_bookings", "count") == 0
    assert result.value("queue_admitted", "count") >= 1
    assert result.value("queue_bookings", "count") >= 1


def test_booking_throughput_script_books_distinct_seats(accounts: Path, k6_logs: Path) -> None:
    result = _passed(
        run_k6(
            "bookings.js",
            env={
                "BENCH_DATA": str(accounts),
                "BASE_URL": GATEWAY_URL,
                "VUS": "3",
                "DURATION": "3s",
                "SEATS": "2000",
                "PACE_S": "0.2",
                "BOOKING_P99_MS": "10000",
            },
            log_dir=k6_logs,
            timeout=K6_TIMEOUT,
        )
    )
    assert result.value("bookings_created", "count") >= 3
    assert result.value("bookings_refused", "count") == 0


def test_read_throughput_script_checks_the_whole_body(k6_logs: Path) -> None:
    result = _passed(
        run_k6(
            "events_read.js",
            env={
                "TARGET_URL": f"{GATEWAY_URL}/gateway/healthz",
                "VUS": "3",
                "DURATION": "2s",
                "PACE_S": "0.2",
                "EXPECT_BYTES": "35",
            },
            log_dir=k6_logs,
            timeout=K6_TIMEOUT,
        )
    )
    assert result.value("checks", "value") == 1
    assert result.value("http_reqs", "count") >= 3


def test_read_throughput_script_fails_when_the_body_differs(k6_logs: Path) -> None:
    result = run_k6(
        "events_read.js",
        env={
            "TARGET_URL": f"{GATEWAY_URL}/gateway/healthz",
            "VUS": "1",
            "DURATION": "1s",
            "PACE_S": "0.2",
            "EXPECT_BYTES": "1",
        },
        log_dir=k6_logs,
        timeout=K6_TIMEOUT,
    )
    assert not result.passed
    assert result.value("checks", "value") < 1


@pytest.mark.skipif(shutil.which("redis-benchmark") is None, reason="redis-benchmark missing")
def test_hold_script_baseline_holds_one_distinct_seat_per_call() -> None:
    rate = redis_hold_rate(requests=2000, clients=4)
    assert rate.seats_held >= 1980
    assert rate.requests_per_second > 0
