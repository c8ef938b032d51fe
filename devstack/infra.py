"""PostgreSQL, Redis and RabbitMQ: start them when they are down, create what a stack needs."""

from __future__ import annotations

import glob
import shutil
import socket
import subprocess
import time

from devstack.config import SERVICES, Stack

DB_ROLE = "ticketing"
DB_ROLE_PASSWORD = "ticketing"  # noqa: S105 - local development role


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(port: int, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start listening on port {port} in {timeout:.0f}s")
        time.sleep(0.3)


def ensure_postgres() -> None:
    if port_open(5432):
        return
    versions = sorted(p.rsplit("/", 1)[-1] for p in glob.glob("/etc/postgresql/*"))
    if not versions:
        raise SystemExit("PostgreSQL is not installed (run scripts/bootstrap.sh)")
    print(f"starting PostgreSQL {versions[-1]}")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], check=True
    )
    wait_for_port(5432, "PostgreSQL")


def ensure_redis() -> None:
    if port_open(6379):
        return
    print("starting Redis")
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        ],
        check=True,
    )
    wait_for_port(6379, "Redis")


def ensure_rabbitmq() -> None:
    if not port_open(5672):
        print("starting RabbitMQ")
        subprocess.run(["rabbitmq-server", "-detached"], check=True)
    subprocess.run(["rabbitmqctl", "-q", "await_startup", "--timeout", "120"], check=True)


def psql(sql: str) -> str:
    """Run SQL as the postgres superuser over the local socket (peer auth)."""
    runner = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else []
    result = subprocess.run(
        [*runner, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-At"],
        input=sql,
        text=True,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"psql failed: {result.stderr.strip()}")
    return result.stdout


MIN_MAX_CONNECTIONS = 400


def ensure_postgres_capacity() -> None:
    """Every replica keeps its own pool, so the default 100 connections run out fast.

    ``max_connections`` only changes with a restart: done once, when it is still too low.
    """
    current = int(psql("SHOW max_connections;").strip() or 0)
    if current >= MIN_MAX_CONNECTIONS:
        return
    print(f"raising PostgreSQL max_connections {current} -> {MIN_MAX_CONNECTIONS} (restart)")
    psql(f"ALTER SYSTEM SET max_connections = {MIN_MAX_CONNECTIONS};")
    versions = sorted(p.rsplit("/", 1)[-1] for p in glob.glob("/etc/postgresql/*"))
    subprocess.run(
        [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            versions[-1],
            "main",
            "restart",
            "-m",
            "fast",
        ],
        check=True,
    )
    wait_for_port(5432, "PostgreSQL")


def ensure_databases(stack: Stack) -> None:
    statements = [
        f"""DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{DB_ROLE}') THEN
    CREATE ROLE {DB_ROLE} LOGIN PASSWORD '{DB_ROLE_PASSWORD}' CREATEDB;
  END IF;
END $$;"""
    ]
    for service in SERVICES:
        db = stack.database(service)
        statements.append(
            f"SELECT 'CREATE DATABASE {db} OWNER {DB_ROLE}' "  # noqa: S608 - our own names
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{db}')\\gexec"
        )
    psql("\n".join(statements) + "\n")


def drop_databases(stack: Stack) -> None:
    """Drop a disposable stack's databases, so its next ``up`` migrates from nothing, and
    empty its Redis database with them.

    The test stack's databases outlive a run; a checkout with a migration another
    checkout never had would otherwise find a revision it cannot locate. Its Redis keys
    are named by database ids (events, users), which start again from 1: left behind,
    they would describe rows that no longer exist.
    """
    if stack.name == "dev":
        raise SystemExit("refusing to drop the dev stack's databases")
    if port_open(6379) and shutil.which("redis-cli"):
        subprocess.run(
            ["redis-cli", "-n", str(stack.redis_db), "FLUSHDB"],
            check=True,
            capture_output=True,
            timeout=30,
        )
    if not port_open(5432):
        return
    psql(
        "\n".join(
            f"DROP DATABASE IF EXISTS {stack.database(service)} WITH (FORCE);"
            for service in SERVICES
        )
        + "\n"
    )


def ensure_vhost(stack: Stack) -> None:
    if stack.vhost == "/":
        return
    subprocess.run(
        ["rabbitmqctl", "-q", "add_vhost", stack.vhost], check=False, capture_output=True
    )
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", stack.vhost, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )


def ensure_infrastructure(stack: Stack) -> None:
    ensure_postgres()
    ensure_postgres_capacity()
    ensure_redis()
    ensure_rabbitmq()
    ensure_databases(stack)
    ensure_vhost(stack)
