"""Service processes started in the background, tracked by PID file, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from devstack.config import SERVICES, Stack
from ticketing_common import serve


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def pid_file(stack: Stack, service: str, replica: int) -> Path:
    return stack.run_dir / "pids" / f"{service}-{replica}.pid"


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _runs(service: str, cmdline: str) -> bool:
    """Whether a process's command line is ``service``'s launcher (the pid file may name a
    pid the system has since given to another process)."""
    launched = "ticketing_common.serve" in cmdline and service in cmdline.split()
    return launched or f"{service}.app:create_app" in cmdline  # started before the launcher


def running_pid(stack: Stack, service: str, replica: int) -> int | None:
    pid = read_pid(pid_file(stack, service, replica))
    if pid and pid_alive(pid) and _runs(service, _cmdline(pid)):
        return pid
    return None


def service_command(stack: Stack, service: str, replica: int) -> list[str]:
    """The command line one replica of a service runs with: the one launcher every
    deployment uses (``ticketing_common.serve``), on the replica's own local port."""
    return serve.command(service, host="127.0.0.1", port=stack.service_port(service, replica))


def start_service(stack: Stack, service: str, replica: int) -> int:
    existing = running_pid(stack, service, replica)
    if existing:
        return existing
    (stack.run_dir / "pids").mkdir(parents=True, exist_ok=True)
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **stack.service_env(service, replica)}
    env.pop("PYTHONPATH", None)
    log = open(stack.log_dir / f"{service}-{replica}.log", "ab")  # noqa: SIM115 - handed to child
    cmd = service_command(stack, service, replica)
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    pid_file(stack, service, replica).write_text(str(proc.pid))
    return proc.pid


def stop_pid(pid: int, timeout: float = 15.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_service(stack: Stack, service: str, replica: int) -> bool:
    path = pid_file(stack, service, replica)
    pid = running_pid(stack, service, replica)
    if pid:
        stop_pid(pid)
    path.unlink(missing_ok=True)
    return pid is not None


def wait_ready(stack: Stack, timeout: float = 90.0) -> None:
    """Poll every replica's /readyz until all answer 200; on timeout show the log tail."""
    pending = {(s, r) for s in SERVICES for r in range(stack.replicas_of(s))}
    deadline = time.monotonic() + timeout
    last: dict[tuple[str, int], str] = {}
    with httpx.Client(timeout=3.0) as client:
        while pending:
            for service, replica in sorted(pending):
                if not running_pid(stack, service, replica):
                    tail = _log_tail(stack, service, replica)
                    raise SystemExit(f"{service} (replica {replica}) exited:\n{tail}")
                try:
                    response = client.get(f"{stack.service_url(service, replica)}/readyz")
                except httpx.HTTPError as exc:
                    last[(service, replica)] = str(exc)
                    continue
                if response.status_code == 200:
                    pending.discard((service, replica))
                else:
                    last[(service, replica)] = response.text
            if pending and time.monotonic() > deadline:
                details = "\n".join(f"  {s}[{r}]: {last.get((s, r), '?')}" for s, r in pending)
                raise SystemExit(f"not ready after {timeout:.0f}s:\n{details}")
            if pending:
                time.sleep(0.3)


def _log_tail(stack: Stack, service: str, replica: int, lines: int = 30) -> str:
    try:
        content = (stack.log_dir / f"{service}-{replica}.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(content.splitlines()[-lines:])
