"""The machine's own ceilings, measured in the same run as the system.

* nginx serving a static copy of the event list's body: what the gateway could answer if
  no Python process were behind it.
* event_service's seat-hold Lua script driven straight on Redis by ``redis-benchmark``,
  each call holding a distinct seat: the rate the seat gate could decide holds if nothing
  else were in the booking path.
* booking_service's write, a booking with its seats (as a new booking is stored) plus one
  outbox row (as its state changes write), in one committed transaction, driven by
  ``pgbench`` on a scratch database with booking_db's schema: the rate PostgreSQL could
  store bookings if no Python process were in front of it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import redis

from devstack import infra
from devstack.config import ROOT
from devstack.gateway import nginx_binary
from devstack.processes import pid_alive
from event_service.seat_gate import gate_keys

STATIC_PORT = 28090
HOLD_BENCH_REDIS_DB = 12
HOLD_BENCH_EVENT_ID = 990_000_001
HOLD_TTL_MS = 900_000
SEATS_PER_ROW = 1000
PGBENCH_DATABASE = "booking_db_pgbench"


def _nginx_conf(prefix: Path, port: int) -> str:
    return f"""# static copy of GET /api/events, written by bench/baselines.py
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65;
    client_body_temp_path {prefix}/temp;
    proxy_temp_path {prefix}/temp;
    fastcgi_temp_path {prefix}/temp;
    uwsgi_temp_path {prefix}/temp;
    scgi_temp_path {prefix}/temp;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location = /api/events {{
            default_type application/json;
            alias {prefix}/events.json;
        }}
    }}
}}
"""


@contextlib.contextmanager
def static_nginx(body: bytes, run_dir: Path, port: int = STATIC_PORT) -> Iterator[str]:
    """nginx (same worker count as the gateway) serving ``body`` at ``/api/events``."""
    prefix = run_dir / "static-nginx"
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    (prefix / "events.json").write_bytes(body)
    conf = prefix / "nginx.conf"
    conf.write_text(_nginx_conf(prefix, port))
    subprocess.run([nginx_binary(), "-p", str(prefix), "-c", str(conf)], check=True)
    try:
        infra.wait_for_port(port, "static nginx", timeout=10)
        yield f"http://127.0.0.1:{port}/api/events"
    finally:
        pid = int((prefix / "nginx.pid").read_text().strip())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


@dataclass(frozen=True)
class HoldScriptRate:
    requests: int
    clients: int
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    seats_held: int
    command: str


def _script(name: str) -> str:
    folder = resources.files("event_service") / "lua"
    return (folder / "prelude.lua").read_text() + "\n" + (folder / f"{name}.lua").read_text()


def _parse_csv(output: str) -> dict[str, float]:
    rows = list(csv.DictReader(io.StringIO(output)))
    if not rows:
        raise RuntimeError(f"redis-benchmark printed no result:\n{output}")
    return {key: float(value) for key, value in rows[-1].items() if key != "test"}


def redis_hold_rate(*, requests: int = 200_000, clients: int = 50) -> HoldScriptRate:
    """``redis-benchmark`` running the hold script (EVALSHA), one new seat per call.

    The script is event_service's own (prelude + hold.lua), loaded with SCRIPT LOAD on
    a gate built by its own rebuild script, in a Redis db no stack uses, then deleted.
    Each call is a count hold of one normal seat under a fresh token: the script picks
    the next free seat, so no two calls contend for a seat.
    """
    client = redis.Redis(host="127.0.0.1", port=6379, db=HOLD_BENCH_REDIS_DB)
    keys = gate_keys(HOLD_BENCH_EVENT_ID)
    client.delete(*keys)
    try:
        rebuild = client.script_load(_script("rebuild"))
        hold = client.script_load(_script("hold"))
        capacity = requests + 1000
        client.evalsha(rebuild, len(keys), *keys, "replace", SEATS_PER_ROW, capacity, 0, 0, 0)
        command = [
            "redis-benchmark",
            "-h",
            "127.0.0.1",
            "-p",
            "6379",
            "--dbnum",
            str(HOLD_BENCH_REDIS_DB),
            "-n",
            str(requests),
            "-c",
            str(clients),
            "-r",
            "1000000000",
            "--csv",
            "EVALSHA",
            hold,
            str(len(keys)),
            *keys,
            "bench-__rand_int__",
            str(HOLD_TTL_MS),
            "bench",
            "count",
            "normal",
            "1",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
        figures = _parse_csv(result.stdout)
        held = int(client.hlen(keys[1]))
    finally:
        client.delete(*keys)
    if held < requests * 0.99:
        raise RuntimeError(f"the hold script held {held} seats for {requests} calls")
    shown = " ".join([*command[:17], f"<{len(keys)} keys>", *command[-6:]])
    return HoldScriptRate(
        requests=requests,
        clients=clients,
        requests_per_second=figures["rps"],
        p50_ms=figures["p50_latency_ms"],
        p95_ms=figures["p95_latency_ms"],
        p99_ms=figures["p99_latency_ms"],
        seats_held=held,
        command=shown,
    )


# One booking as booking_service stores it (_store_booking: the booking row, RETURNING
# its id, then its seats), plus one outbox row, committed. pgbench keeps each client's
# variables across transactions, so ``seq`` (started at 0 with -D) counts that client's
# bookings: hold tokens and seat ids never repeat, and the partial unique index on active
# seats never refuses an insert. Parameters are cast because prepared statements (the
# query mode asyncpg uses too) cannot infer the type of a parameter inside ``||``.
BOOKING_INSERT_SCRIPT = """\\set seq :seq + 1
\\set user_id :client_id + 1
\\set seat_a 2 * :seq
\\set seat_b 2 * :seq + 1
BEGIN;
INSERT INTO bookings (user_id, event_id, organizer_id, status, total_amount, currency,
    hold_token, expires_at, client_seats, created_at, updated_at)
  VALUES (:user_id, 1, 1, 'pending', 200.00, 'ETB',
    'pgbench-' || :client_id::text || '-' || :seq::text,
    now() + interval '900 seconds',
    '[{"id":"normal-' || :client_id::text || '-' || :seat_a::text || '","row":1,"number":1,'
      || '"price":100.0},{"id":"normal-' || :client_id::text || '-' || :seat_b::text
      || '","row":1,"number":2,"price":100.0}]',
    now(), now())
  RETURNING id AS booking_id \\gset
INSERT INTO booking_seats (booking_id, event_id, seat_id, ticket_class, "row", number, price,
    status)
  VALUES
    (:booking_id::bigint, 1, 'normal-' || :client_id::text || '-' || :seat_a::text, 'normal',
      :user_id::int, :seat_a::int, 100.00, 'pending'),
    (:booking_id::bigint, 1, 'normal-' || :client_id::text || '-' || :seat_b::text, 'normal',
      :user_id::int, :seat_b::int, 100.00, 'pending');
INSERT INTO outbox_messages (message_id, routing_key, envelope)
  VALUES (gen_random_uuid(), 'booking_created', jsonb_build_object(
    'type', 'booking_created', 'occurred_at', now(),
    'payload', jsonb_build_object('booking_id', :booking_id::bigint, 'event_id', 1,
      'user_id', :user_id::bigint, 'seat_ids', jsonb_build_array(
        'normal-' || :client_id::text || '-' || :seat_a::text,
        'normal-' || :client_id::text || '-' || :seat_b::text))));
COMMIT;
"""


@dataclass(frozen=True)
class PgbenchSummary:
    """What pgbench prints at the end of a run (the figures this harness uses)."""

    transactions: int
    failed: int
    transactions_per_second: float
    latency_average_ms: float


def _pgbench_number(pattern: str, output: str) -> float:
    found = re.search(pattern, output, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"pgbench printed no {pattern!r}:\n{output}")
    return float(found.group(1))


def parse_pgbench(output: str) -> PgbenchSummary:
    """Read pgbench's end-of-run summary.

    tps is the figure without connection set-up (``without initial connection time`` in
    pgbench 14+, ``excluding connections establishing`` before), since the services keep
    their connections pooled.
    """
    tps = re.search(r"^tps = ([\d.]+) \((?:without initial|excluding)", output, re.MULTILINE)
    failed = re.search(r"^number of failed transactions: (\d+)", output, re.MULTILINE)
    return PgbenchSummary(
        transactions=int(
            _pgbench_number(r"^number of transactions actually processed: (\d+)", output)
        ),
        failed=int(failed.group(1)) if failed else 0,
        transactions_per_second=(
            float(tps.group(1)) if tps else _pgbench_number(r"^tps = ([\d.]+)", output)
        ),
        latency_average_ms=_pgbench_number(r"^latency average = ([\d.]+) ms", output),
    )


def pgbench_latencies_ms(lines: Iterable[str]) -> list[float]:
    """Per-transaction latencies from pgbench's ``--log`` lines (3rd field, microseconds).

    A failed or skipped transaction logs a word there instead of a number; it is left out.
    """
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and fields[2].isdigit():
            found.append(int(fields[2]) / 1000)
    return found


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


@dataclass(frozen=True)
class InsertRate:
    """Booking transactions/s PostgreSQL committed under pgbench, and their latency."""

    clients: int
    threads: int
    seconds: int
    transactions: int
    failed: int
    transactions_per_second: float
    latency_average_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    command: str


def _migrate_booking_schema(database: str) -> None:
    """booking_service's own Alembic history, as devstack applies it to a stack's db."""
    env = {
        **os.environ,
        "DB_HOST": "127.0.0.1",
        "DB_PORT": "5432",
        "DB_USER": infra.DB_ROLE,
        "DB_PASSWORD": infra.DB_ROLE_PASSWORD,
        "DB_NAME": database,
    }
    result = subprocess.run(
        [sys.executable, "-m", "ticketing_common.migrations", "booking_service"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrating {database} failed:\n{result.stdout}\n{result.stderr}")


def _drop_database(database: str) -> None:
    infra.psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE);\n")


@contextlib.contextmanager
def scratch_booking_db(database: str = PGBENCH_DATABASE) -> Iterator[str]:
    """A fresh database with booking_db's real schema, dropped afterwards."""
    if not database.endswith("_pgbench"):
        raise ValueError(f"refusing to drop {database}")
    _drop_database(database)
    infra.psql(f"CREATE DATABASE {database} OWNER {infra.DB_ROLE};\n")
    try:
        _migrate_booking_schema(database)
        yield database
    finally:
        _drop_database(database)


def booking_insert_rate(
    work_dir: Path, *, clients: int = 50, threads: int = 2, seconds: int = 12
) -> InsertRate:
    """``pgbench`` committing booking transactions (:data:`BOOKING_INSERT_SCRIPT`).

    Over TCP with the stacks' role and prepared statements, as the services connect; on
    a database migrated by booking_service's own migrations, so every index and
    constraint a real booking pays for is there. Latency percentiles come from pgbench's
    per-transaction log.
    """
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    script = work_dir / "booking_insert.sql"
    script.write_text(BOOKING_INSERT_SCRIPT)
    with scratch_booking_db() as database:
        command = [
            "pgbench",
            "-n",
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            infra.DB_ROLE,
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            str(threads),
            "-T",
            str(seconds),
            "-D",
            "seq=0",
            "--log",
            f"--log-prefix={work_dir / 'txn'}",
            "-f",
            str(script),
            database,
        ]
        result = subprocess.run(
            command,
            env={**os.environ, "PGPASSWORD": infra.DB_ROLE_PASSWORD},
            cwd=work_dir,
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 120,
        )
    (work_dir / "pgbench.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed ({result.returncode}):\n{result.stderr[-2000:]}")
    summary = parse_pgbench(result.stdout)
    latencies: list[float] = []
    for log in sorted(work_dir.glob("txn.*")):
        with log.open() as handle:
            latencies += pgbench_latencies_ms(handle)
    shown = " ".join(
        "booking_insert.sql" if part == str(script) else part
        for part in command
        if not part.startswith("--log")
    )
    return InsertRate(
        clients=clients,
        threads=threads,
        seconds=seconds,
        transactions=summary.transactions,
        failed=summary.failed,
        transactions_per_second=summary.transactions_per_second,
        latency_average_ms=summary.latency_average_ms,
        p50_ms=percentile(latencies, 0.5),
        p95_ms=percentile(latencies, 0.95),
        p99_ms=percentile(latencies, 0.99),
        command=shown,
    )


def tool_version(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else "unknown"
