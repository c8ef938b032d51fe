"""The machine's own ceilings, measured in the same run as the system.

* nginx serving a static copy of the event list's body: what the gateway could answer if
  no Python process were behind it.
* event_service's seat-hold Lua script driven straight on Redis by ``redis-benchmark``,
  each call holding a distinct seat: the rate the seat gate could decide holds if nothing
  else were in the booking path.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import redis

from devstack import infra
from devstack.gateway import nginx_binary
from devstack.processes import pid_alive
from event_service.seat_gate import gate_keys

STATIC_PORT = 28090
HOLD_BENCH_REDIS_DB = 12
HOLD_BENCH_EVENT_ID = 990_000_001
HOLD_TTL_MS = 900_000
SEATS_PER_ROW = 1000


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
        client.evalsha(rebuild, len(keys), *keys, "replace", SEATS_PER_ROW, capacity, 0, 0)
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
    shown = " ".join([*command[:17], "<9 keys>", *command[-6:]])
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


def tool_version(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else "unknown"
