"""The scaling figures without a stack: pgbench's output, the report, docs/SCALING.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench.__main__ as entry
from bench.baselines import (
    HoldScriptRate,
    InsertRate,
    parse_pgbench,
    percentile,
    pgbench_latencies_ms,
)
from bench.k6 import K6Result
from bench.logscan import LogWindow
from bench.procstats import CLOCK_TICKS, ProcessSampler
from bench.report import (
    SCALING_END,
    SCALING_START,
    render,
    replace_generated_block,
    scaling_block,
)
from bench.results import BookingRow, RunResults, ScalingRow, scaling_figures

PGBENCH_15 = """pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: booking_insert.sql
scaling factor: 1
query mode: prepared
number of clients: 50
number of threads: 2
maximum number of tries: 1
duration: 12 s
number of transactions actually processed: 32391
number of failed transactions: 0 (0.000%)
latency average = 18.525 ms
initial connection time = 131.709 ms
tps = 2699.112145 (without initial connection time)
"""

PGBENCH_13 = """transaction type: booking_insert.sql
number of transactions actually processed: 1200
latency average = 40.000 ms
tps = 1190.500000 (including connections establishing)
tps = 1250.250000 (excluding connections establishing)
"""

SERVICES = [
    "auth_service",
    "booking_service",
    "event_service",
    "payment_service",
    "notification_service",
]


def test_pgbench_summary_is_read_without_connection_time() -> None:
    summary = parse_pgbench(PGBENCH_15)
    assert summary.transactions == 32391
    assert summary.failed == 0
    assert summary.transactions_per_second == pytest.approx(2699.112145)
    assert summary.latency_average_ms == pytest.approx(18.525)


def test_older_pgbench_summary_takes_the_tps_excluding_connections() -> None:
    summary = parse_pgbench(PGBENCH_13)
    assert summary.transactions_per_second == pytest.approx(1250.25)
    assert summary.failed == 0


def test_pgbench_output_without_a_result_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="transactions actually processed"):
        parse_pgbench("pgbench: error: connection to server failed\n")


def test_pgbench_log_latencies_skip_failed_transactions() -> None:
    lines = [
        "0 1 133222 0 1795612318 504375",
        "1 1 1500 0 1795612318 504385",
        "2 1 failed 0 1795612318 504388",
        "",
    ]
    assert pgbench_latencies_ms(lines) == [133.222, 1.5]
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.99) == 5.0
    assert percentile([], 0.5) == 0.0


def _sampler(
    seconds: float, cpu: dict[str, list[float]], services: dict[str, list[int]]
) -> ProcessSampler:
    """A sampler as if it had watched ``seconds``: ``cpu`` in % of one core per process."""
    sampler = ProcessSampler(services)
    sampler.seconds = seconds
    sampler.machine_busy_percent = 90.0
    for name, shares in cpu.items():
        figures = sampler.figures[name]
        pids = services.get(name) or list(range(900, 900 + len(shares)))
        for pid, share in zip(pids, shares, strict=True):
            ticks = round(share / 100 * CLOCK_TICKS * seconds)
            figures.pid_ticks[pid] = ticks
            figures.cpu_ticks += ticks
    return sampler


def _k6(tmp_path: Path) -> K6Result:
    return K6Result("bookings.js", 0, {}, tmp_path / "k6.log")


def _results(tmp_path: Path, *, scaling: bool = True) -> RunResults:
    one = {name: [i + 1] for i, name in enumerate(SERVICES)}
    row2 = _sampler(
        20.0,
        {
            "booking_service": [80.0],
            "event_service": [30.0],
            "postgresql (all databases)": [10.0],
            "redis": [5.0],
            "nginx gateway": [2.0],
            "k6 (load generator)": [50.0],
        },
        one,
    )
    bookings = BookingRow(
        vus=50,
        seconds=20,
        seats=100_000,
        created=4000,
        refused=0,
        p50_ms=200.0,
        p95_ms=500.0,
        p99_ms=700.0,
        run=_k6(tmp_path),
        raw=HoldScriptRate(200_000, 50, 50_000.0, 0.9, 1.4, 2.1, 200_000, "redis-benchmark"),
        processes=row2,
        inserts=InsertRate(50, 2, 12, 36_000, 0, 3000.0, 16.0, 12.0, 40.0, 80.0, "pgbench -n"),
    )
    results = RunResults(
        started_at="2026-11-25T10:00:00+00:00",
        command="scripts/bench",
        machine={"cores (nproc)": "2", "cpu": "AMD EPYC", "memory": "23.5 GiB"},
        versions={"project commit": "abc1234"},
        bookings=bookings,
        cores=2,
    )
    if scaling:
        two = {name: [10 + i, 20 + i] for i, name in enumerate(SERVICES)}
        results.scaling = ScalingRow(
            replicas=2,
            vus=50,
            seconds=20,
            seats=100_000,
            warmup_seconds=5,
            created=5000,
            refused=0,
            p50_ms=150.0,
            p95_ms=400.0,
            p99_ms=600.0,
            run=_k6(tmp_path),
            processes=_sampler(20.0, {"booking_service": [60.0, 65.0]}, two),
        )
    return results


def test_scaling_figures_derive_the_rate_per_busy_process(tmp_path: Path) -> None:
    figures = scaling_figures(_results(tmp_path), SERVICES)
    assert figures is not None
    assert figures.booking_cpu_percent == pytest.approx(80.0)
    assert figures.per_busy_process == pytest.approx(250.0)  # 200/s on 0.8 of a core
    assert figures.more_replicas_per_busy_process == pytest.approx(200.0)  # 250/s on 1.25
    assert figures.speedup == pytest.approx(1.25)
    order = [step.part for step in figures.saturation]
    assert order == [
        "booking_service",
        "event_service",
        "postgresql (all databases)",
        "redis",
        "nginx gateway",
    ]
    postgres = figures.saturation[2]
    assert postgres.usable_cores == 2
    assert postgres.full_at_per_second == pytest.approx(200 * 200 / 10)
    assert figures.saturation[3].usable_cores == 1  # Redis runs commands on one thread


def test_report_has_a_scaling_section(tmp_path: Path) -> None:
    report = render(_results(tmp_path))
    section = report[report.index("## Scaling") :]
    assert "| 1 (row 2) | 200 | 4,000 / 0 | 200 / 500 / 700 ms | 80 % | 90 % |" in section
    assert "| 2 | 250 | 5,000 / 0 | 150 / 400 / 600 ms | 125 % (60 % + 65 %) | 90 % |" in section
    assert "| bookings/s per fully busy booking_service process | 250 | derived:" in section
    assert "| holds/s per Redis primary (one hot event's ceiling) | 50,000 |" in section
    assert "| booking inserts/s per PostgreSQL | 3,000 |" in section
    assert "| booking_service | 2 | 125 % (60 % + 65 %) |" in section
    assert "p50/p95/p99 12.0 / 40.0 / 80.0 ms" in section
    assert "k6 (load generator) |" not in section.split("### Processes")[0]


def test_report_without_the_scaling_pass_still_states_the_ceilings(tmp_path: Path) -> None:
    report = render(_results(tmp_path, scaling=False))
    section = report[report.index("## Scaling") :]
    assert "| 1 (row 2) | 200 |" in section
    assert "| 2 |" not in section
    assert "| booking inserts/s per PostgreSQL | 3,000 |" in section


def test_scaling_block_names_its_run(tmp_path: Path) -> None:
    block = scaling_block(_results(tmp_path))
    assert "| bookings/s, 1 replica per service | 200 (p95 500 ms, p99 700 ms) |" in block
    assert "| bookings/s, 2 replicas per service | 250 (p95 400 ms, p99 600 ms) |" in block
    assert (
        "booking_service 80 % → event_service 30 % → postgresql (all databases) 10 % → "
        "redis 5 % → nginx gateway 2 %"
    ) in block
    assert "2026-11-25T10:00:00+00:00" in block
    assert "`abc1234`" in block
    assert "2 cores (AMD EPYC)" in block
    assert SCALING_START not in block


def _doc(inside: str) -> str:
    return f"# Scaling\n\nprose before\n\n{SCALING_START}\n{inside}\n{SCALING_END}\n\nprose after\n"


def test_generated_block_replaces_only_what_is_between_the_markers() -> None:
    document = _doc("_Not generated yet._")
    updated = replace_generated_block(document, "| a | b |\n")
    assert updated == _doc("| a | b |")
    assert replace_generated_block(updated, "| a | b |") == updated


@pytest.mark.parametrize(
    "document",
    [
        "no markers at all",
        f"{SCALING_END}\nreversed\n{SCALING_START}\n",
        f"{SCALING_START}\nno end\n",
        f"{SCALING_START}\n{SCALING_START}\ntwice\n{SCALING_END}\n",
    ],
)
def test_generated_block_needs_its_markers(document: str) -> None:
    with pytest.raises(ValueError, match="marker"):
        replace_generated_block(document, "x")


@pytest.mark.parametrize(("argv", "rewritten"), [(["--quick"], False), ([], True)])
def test_only_a_full_run_rewrites_docs_scaling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], rewritten: bool
) -> None:
    doc = tmp_path / "SCALING.md"
    doc.write_text(_doc("_Not generated yet._"))
    monkeypatch.setattr(entry, "ROOT", tmp_path)
    monkeypatch.setattr(entry, "DEFAULT_OUTPUT", tmp_path / "BENCHMARKS.md")
    monkeypatch.setattr(entry, "QUICK_OUTPUT", tmp_path / "BENCHMARKS-quick.md")
    monkeypatch.setattr(entry, "SCALING_DOC", tmp_path / "SCALING.md")
    monkeypatch.setattr(entry, "run", lambda plan, **_: _results(tmp_path))
    entry.main(argv)  # no flash sale in the fake results: exit status 2, report written
    assert ("abc1234" in doc.read_text()) is rewritten
    assert ("_Not generated yet._" in doc.read_text()) is not rewritten


def test_logged_problems_are_read_from_every_replica(tmp_path: Path) -> None:
    logs = [tmp_path / f"booking_service-{replica}.log" for replica in (0, 1)]
    for log in logs:
        log.write_text("")
    with LogWindow(tmp_path) as window:
        for log in logs:
            log.write_text(json.dumps({"level": "warning", "msg": "slow"}) + "\n")
    [problem] = window.problems(["booking_service"])
    assert problem.count == 2
