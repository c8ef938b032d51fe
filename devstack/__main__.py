"""``python -m devstack up|down|status|migrate|infra|reset [--stack dev|test] [--replicas N]``.

``reset`` stops a disposable stack and drops its databases (never the dev stack's).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import httpx

from devstack import gateway, infra, processes
from devstack.config import SERVICES, Stack, stack_named


def migrate(stack: Stack) -> None:
    for service in SERVICES:
        env = stack.service_env(service)
        result = subprocess.run(
            [sys.executable, "-m", "ticketing_common.migrations", service],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"migrating {service} failed:\n{result.stdout}\n{result.stderr}")
    print(f"[{stack.name}] databases migrated")


def up(stack: Stack) -> None:
    infra.ensure_infrastructure(stack)
    migrate(stack)
    for service in SERVICES:
        for replica in range(stack.replicas_of(service)):
            processes.start_service(stack, service, replica)
    processes.wait_ready(stack)
    gateway.start_or_reload(stack)
    _wait_gateway(stack)
    status(stack)


def _wait_gateway(stack: Stack) -> None:
    infra.wait_for_port(stack.gateway_port, "nginx gateway", timeout=20)
    response = httpx.get(f"{stack.gateway_url}/gateway/healthz", timeout=3)
    response.raise_for_status()


def down(stack: Stack) -> None:
    stopped = []
    for pid_path in sorted((stack.run_dir / "pids").glob("*.pid")):
        service, _, replica = pid_path.stem.rpartition("-")
        if processes.stop_service(stack, service, int(replica)):
            stopped.append(pid_path.stem)
    pid = gateway.nginx_pid(stack)
    if pid and processes.pid_alive(pid):
        processes.stop_pid(pid)
        stopped.append("nginx")
    print(f"[{stack.name}] stopped: {', '.join(stopped) or 'nothing was running'}")


def status(stack: Stack) -> None:
    print(f"[{stack.name}] gateway      {stack.gateway_url}  (logs in {stack.log_dir})")
    for service in SERVICES:
        for replica in range(stack.replicas_of(service)):
            pid = processes.running_pid(stack, service, replica)
            state = f"pid {pid}" if pid else "not running"
            url = stack.service_url(service, replica)
            print(f"[{stack.name}] {service:<21} {url}  {state}  db={stack.database(service)}")
    print(f"[{stack.name}] docs: {stack.service_url('event_service')}/docs (one per service)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack")
    parser.add_argument("command", choices=["up", "down", "status", "migrate", "infra", "reset"])
    parser.add_argument("--stack", default="dev", choices=["dev", "test"])
    parser.add_argument("--replicas", type=int, default=None)
    args = parser.parse_args(argv)
    stack = stack_named(args.stack, args.replicas)
    if args.command == "up":
        up(stack)
    elif args.command == "down":
        down(stack)
    elif args.command == "status":
        status(stack)
    elif args.command == "reset":
        down(stack)
        infra.drop_databases(stack)
    elif args.command == "migrate":
        infra.ensure_infrastructure(stack)
        migrate(stack)
    else:
        infra.ensure_infrastructure(stack)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
