"""The dedicated bench stack: started fresh for every run, under the machine's stack lock.

It is a devstack ``Stack`` like dev and test, shifted by 20000 ports, with its own
databases (``*_db_bench``), Redis db and RabbitMQ vhost, so a benchmark never touches a
developer's data or a test run's. Its gateway is the real template; only the per-address
rate limit is raised (the benchmark says so in its report), since a throughput row would
otherwise measure the limiter instead of the system.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator

import redis

from devstack import infra, processes
from devstack.__main__ import down, up
from devstack.config import LOAD_TEST_BUYER_LIMITS, SERVICES, Stack

STACK_LOCK = "/tmp/ticketing-stack.lock"  # noqa: S108 - the machine-wide lock scripts/test takes
BENCH_SMTP_PORT = 22525
BENCH_RATE_LIMIT_RPS = 100_000
BENCH_RATE_LIMIT_BURST = 100_000
BENCH_DB_POOL_SIZE = 10
BENCH_DB_MAX_OVERFLOW = 10

BENCH_STACK = Stack(
    "bench",
    port_offset=20000,
    db_suffix="_bench",
    redis_db=11,
    vhost="ticketing_bench",
    rate_limit_rps=BENCH_RATE_LIMIT_RPS,
    rate_limit_burst=BENCH_RATE_LIMIT_BURST,
    extra_env={
        # The harness runs the SMTP server that receives verification codes and tickets.
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(BENCH_SMTP_PORT),
        "SMTP_EMAIL": "tickets@example.com",
        # The services' default pools (10 + 10 overflow), as deployed: devstack raises
        # PostgreSQL's max_connections to 400, which holds the dev, test and bench stacks
        # (two replicas each in the scaling pass: 2 x 5 x 20 = 200).
        "DB_POOL_SIZE": str(BENCH_DB_POOL_SIZE),
        "DB_MAX_OVERFLOW": str(BENCH_DB_MAX_OVERFLOW),
        # Row 2 books without paying from 50 accounts: it measures the booking path (the
        # per-buyer count still runs in every booking's statement), not the limits.
        **LOAD_TEST_BUYER_LIMITS,
    },
)


@contextlib.contextmanager
def stack_lock(path: str = STACK_LOCK) -> Iterator[None]:
    """Hold the machine's stack lock (flock) so no test run restarts a stack under us."""
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for {path} (a test run holds it)...", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _drop_bench_data(stack: Stack) -> None:
    """Drop the bench stack's databases, Redis db and vhost: every run starts the same."""
    if not stack.db_suffix.endswith("_bench"):
        raise ValueError(f"refusing to wipe the {stack.name} stack")
    infra.ensure_infrastructure(stack)
    drops = [f"DROP DATABASE IF EXISTS {stack.database(s)} WITH (FORCE);" for s in SERVICES]
    infra.psql("\n".join(drops) + "\n")
    redis.Redis(host="127.0.0.1", port=6379, db=stack.redis_db).flushdb()
    subprocess.run(
        ["rabbitmqctl", "-q", "delete_vhost", stack.vhost], check=False, capture_output=True
    )


def start_fresh(stack: Stack = BENCH_STACK) -> None:
    """Stop whatever of the bench stack runs, wipe its data, start it again and wait."""
    with contextlib.redirect_stdout(sys.stderr):
        down(stack)
        _drop_bench_data(stack)
        for log in stack.log_dir.glob("*.log"):
            log.unlink()
        up(stack)


def restart_with_replicas(replicas: int, stack: Stack = BENCH_STACK) -> Stack:
    """Stop every process of the stack and start it again with ``replicas`` per service.

    Unlike :func:`start_fresh` nothing is dropped: the databases, the Redis db and the
    vhost keep the accounts and events a run prepared, so a later pass reuses them. The
    replicas share the stack's run folder (pid files and logs are per replica), so
    :func:`stop` with the one-replica stack still stops them all.
    """
    scaled = dataclasses.replace(stack, replicas=replicas)
    with contextlib.redirect_stdout(sys.stderr):
        down(stack)
        up(scaled)
    return scaled


def stop(stack: Stack = BENCH_STACK) -> None:
    with contextlib.redirect_stdout(sys.stderr):
        down(stack)


def service_pids(stack: Stack = BENCH_STACK) -> dict[str, int]:
    """The running service processes of the stack (replica 0 of each)."""
    return {service: pids[0] for service, pids in replica_pids(stack).items() if pids}


def replica_pids(stack: Stack = BENCH_STACK) -> dict[str, list[int]]:
    """The running processes of every replica of each service, replica 0 first."""
    found: dict[str, list[int]] = {}
    for service in SERVICES:
        replicas = range(stack.replicas_of(service))
        pids = [processes.running_pid(stack, service, r) for r in replicas]
        found[service] = [pid for pid in pids if pid is not None]
    return found


def machine_load() -> tuple[float, float, float]:
    return os.getloadavg()
