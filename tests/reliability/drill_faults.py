"""The faults the drills inject: real kills and restarts, loopback only, always undone.

Services of the test stack are SIGKILLed by the PID files devstack keeps and started again
with devstack's own ``start_service``. PostgreSQL, Redis and RabbitMQ are the machine's
shared servers: restarting them breaks every other user for a few seconds, so only the
full drill set (``DRILLS=full``, ``scripts/drills``) touches them, and each context
manager brings the server back in ``finally`` whatever happened in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import glob
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterator
from pathlib import Path

import httpx
import redis

from devstack import gateway, infra, processes
from devstack.config import SERVICES, Stack
from tests.conftest import TEST_STACK, Mailbox

READY_TIMEOUT_SECONDS = 90.0


# -- service processes --------------------------------------------------------------------


def running_replicas(service: str, stack: Stack = TEST_STACK) -> list[int]:
    """Replica numbers of ``service`` that devstack has a live PID file for."""
    replicas = []
    for path in sorted((stack.run_dir / "pids").glob(f"{service}-*.pid")):
        replica = int(path.stem.rpartition("-")[2])
        if processes.running_pid(stack, service, replica):
            replicas.append(replica)
    return replicas


def kill_service(service: str, stack: Stack = TEST_STACK) -> list[int]:
    """SIGKILL every running replica of ``service`` (no graceful shutdown); returns them."""
    victims = {r: processes.running_pid(stack, service, r) for r in running_replicas(service)}
    for pid in victims.values():
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(processes.running_pid(stack, service, r) for r in victims):
        for pid in victims.values():
            if pid is not None:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)  # ours if a drill started it
        assert time.monotonic() < deadline, f"{service} survived SIGKILL"
        time.sleep(0.05)
    return sorted(victims)


async def wait_ready(service: str, replica: int, stack: Stack = TEST_STACK) -> None:
    url = f"{stack.service_url(service, replica)}/readyz"
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    async with httpx.AsyncClient(timeout=3.0) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            assert processes.running_pid(stack, service, replica), f"{service}[{replica}] died"
            assert time.monotonic() < deadline, f"{service}[{replica}] not ready again"
            await asyncio.sleep(0.2)


async def start_service(service: str, replicas: Collection[int], stack: Stack = TEST_STACK) -> None:
    """Start the replicas again (devstack's command line and environment) and await /readyz."""
    for replica in replicas:
        processes.start_service(stack, service, replica)
    await asyncio.gather(*(wait_ready(service, replica, stack) for replica in replicas))


async def kill_and_restart(service: str, down_for: float) -> None:
    """SIGKILL ``service``, leave it dead for ``down_for`` seconds, start it again."""
    replicas = kill_service(service)
    assert replicas, f"{service} was not running"
    await asyncio.sleep(down_for)
    await start_service(service, replicas)


# -- replicas behind the gateway ----------------------------------------------------------


def _route_to_second_replicas(extra: dict[str, int], stack: Stack = TEST_STACK) -> None:
    """Render the gateway as devstack does, add ``extra`` servers to their upstreams, reload."""
    conf = gateway.write_config(stack)
    routes = conf.parent / "gateway.conf"
    text = routes.read_text()
    for service, port in extra.items():
        text, found = re.subn(
            rf"(upstream {service} \{{\n)",
            rf"\g<1>    server 127.0.0.1:{port} max_fails=0;\n",
            text,
        )
        assert found == 1, f"no upstream {service} in {routes}"
    routes.write_text(text)
    prefix = str(gateway.nginx_dir(stack))
    nginx = gateway.nginx_binary()
    subprocess.run([nginx, "-t", "-q", "-p", prefix, "-c", str(conf)], check=True)
    subprocess.run([nginx, "-p", prefix, "-c", str(conf), "-s", "reload"], check=True)


@contextlib.asynccontextmanager
async def two_replicas_of(*services: str) -> AsyncIterator[dict[str, list[int]]]:
    """Run a second replica of each service behind the gateway; yields their ports.

    Replica 1 listens on the port + 100 with the stack's environment;
    internal calls still go to replica 0, the gateway balances between both. Afterwards
    the extra replicas stop and the gateway is routed as devstack left it.
    """
    wider = dataclasses.replace(TEST_STACK, replicas=2)
    started = [s for s in services if 1 not in running_replicas(s)]
    try:
        for service in started:
            processes.start_service(wider, service, 1)
        await asyncio.gather(*(wait_ready(service, 1, wider) for service in services))
        _route_to_second_replicas({s: wider.service_port(s, 1) for s in services})
        await asyncio.sleep(1.0)  # old nginx workers finish, new ones route to both
        yield {s: [wider.service_port(s, r) for r in (0, 1)] for s in services}
    finally:
        gateway.start_or_reload(TEST_STACK)
        for service in started:
            processes.stop_service(wider, service, 1)


class GatewayLog:
    """The gateway's JSON access log from now on: which upstream served what."""

    def __init__(self, stack: Stack = TEST_STACK) -> None:
        self.path = stack.log_dir / "gateway-access.log"
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    async def upstreams(self) -> Counter[str]:
        await asyncio.sleep(1.5)  # the access log is buffered for a second
        with self.path.open("rb") as log:
            log.seek(self.offset)
            lines = log.read().splitlines()
        served: Counter[str] = Counter()
        for line in lines:
            with contextlib.suppress(ValueError):
                for upstream in str(json.loads(line).get("upstream", "")).split(", "):
                    if upstream:
                        served[upstream.rpartition(":")[2]] += 1
        return served


# -- the mail server ----------------------------------------------------------------------


@contextlib.contextmanager
def smtp_down(mailbox: Mailbox) -> Iterator[None]:
    """The test SMTP server answers every message with 421 (try again later)."""
    mailbox.down = True
    try:
        yield
    finally:
        mailbox.down = False


# -- shared infrastructure (full drill set only) ------------------------------------------


async def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, list(command), capture_output=True, text=True, check=check, timeout=180
    )


@contextlib.asynccontextmanager
async def rabbitmq_stopped() -> AsyncIterator[None]:
    """``rabbitmqctl stop_app`` now, ``start_app`` (and await start-up) on the way out."""
    try:
        await _run("rabbitmqctl", "-q", "stop_app")
        yield
    finally:
        await _run("rabbitmqctl", "-q", "start_app")
        await _run("rabbitmqctl", "-q", "await_startup", "--timeout", "120")


def _redis_run_id() -> str:
    return str(redis.Redis(port=6379, socket_timeout=5).info("server")["run_id"])


async def restart_redis_wiped() -> None:
    """Shut Redis down without saving and start it empty, as devstack does (no persistence)."""
    before = _redis_run_id()
    await _run("redis-cli", "-p", "6379", "SHUTDOWN", "NOSAVE", check=False)
    deadline = time.monotonic() + 20
    while infra.port_open(6379):
        assert time.monotonic() < deadline, "Redis did not shut down"
        await asyncio.sleep(0.1)
    try:
        await asyncio.sleep(1.0)
    finally:
        await asyncio.to_thread(infra.ensure_redis)
    assert _redis_run_id() != before, "Redis was not restarted"
    assert not Path("/var/lib/redis/dump.rdb").exists(), "Redis may have reloaded saved data"


def _postgres_cluster() -> str:
    versions = sorted(p.rsplit("/", 1)[-1] for p in glob.glob("/etc/postgresql/*"))
    assert versions, "no PostgreSQL cluster found"
    return versions[-1]


async def restart_postgres(down_for: float) -> None:
    """Stop PostgreSQL (fast: every connection is cut), wait, start it again."""
    version = _postgres_cluster()
    ctl = ("pg_ctlcluster", "--skip-systemctl-redirect", version, "main")
    try:
        await _run(*ctl, "stop", "-m", "fast")
        await asyncio.sleep(down_for)
    finally:
        await _run(*ctl, "start", check=False)
        await asyncio.to_thread(infra.wait_for_port, 5432, "PostgreSQL", 60)


async def wait_stack_ready() -> None:
    """Every service replica of the test stack answers /readyz again."""
    await asyncio.gather(
        *(wait_ready(service, r) for service in SERVICES for r in running_replicas(service))
    )
