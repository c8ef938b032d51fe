"""Memory and CPU of the processes that make up the system, sampled while a row runs.

Read from ``/proc``: resident memory (peak over the window) and CPU time, in seconds and
as a share of one core, per service process and per group of helpers (the gateway's nginx workers,
PostgreSQL backends, Redis, RabbitMQ, k6), plus the whole machine's busy share, so a
report can say which process was the bottleneck on these two cores.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# Helper processes, by the command name the kernel reports (/proc/<pid>/comm).
HELPER_GROUPS = {
    "postgres": "postgresql (all databases)",
    "redis-server": "redis",
    "beam.smp": "rabbitmq",
    "k6": "k6 (load generator)",
}


def _read_stat(pid: int) -> tuple[int, int] | None:
    """(cpu ticks, resident bytes) of a process, None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks, int(statm.split()[1]) * PAGE_BYTES


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU time (user + system) the processes have used so far; gone ones count 0."""
    ticks = sum(stat[0] for pid in pids if (stat := _read_stat(pid)) is not None)
    return ticks / CLOCK_TICKS


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _all_pids() -> Iterable[int]:
    return (int(entry) for entry in os.listdir("/proc") if entry.isdigit())


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the machine since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def children_of(pid: int) -> list[int]:
    found = []
    for candidate in _all_pids():
        try:
            stat = Path(f"/proc/{candidate}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.append(candidate)
    return found


def _percent(ticks: int, seconds: float) -> float:
    return 100.0 * ticks / CLOCK_TICKS / seconds if seconds > 0 else 0.0


@dataclass
class ProcessFigures:
    name: str
    peak_rss_mb: float = 0.0
    cpu_ticks: int = 0
    #: CPU ticks per process of the group, so replicas of one service can be told apart.
    pid_ticks: dict[int, int] = field(default_factory=dict)
    _last: dict[int, int] = field(default_factory=dict, repr=False)

    @property
    def cpu_seconds(self) -> float:
        """CPU time (user + system) the group used over the window."""
        return self.cpu_ticks / CLOCK_TICKS

    def cpu_percent(self, seconds: float) -> float:
        """CPU used over the window, in % of one core (200 % = both cores)."""
        return _percent(self.cpu_ticks, seconds)

    def sample(self, pids: Iterable[int], first: bool) -> None:
        rss = 0
        for pid in pids:
            found = _read_stat(pid)
            if found is None:
                continue
            ticks, resident = found
            rss += resident
            # A process born inside the window counts from zero; others from the start.
            previous = self._last.get(pid, ticks if first else 0)
            used = max(0, ticks - previous)
            self.cpu_ticks += used
            self.pid_ticks[pid] = self.pid_ticks.get(pid, 0) + used
            self._last[pid] = ticks
        self.peak_rss_mb = max(self.peak_rss_mb, rss / 1024 / 1024)


class ProcessSampler:
    """``with ProcessSampler(services=..., gateway=...) as sampler: ...``; then read it.

    ``services`` maps a service to its process, or to the processes of its replicas (their
    figures are summed, so a service's CPU can exceed one core when it runs twice).
    """

    def __init__(
        self,
        services: Mapping[str, int | Sequence[int]],
        gateway: Callable[[], list[int]] | None = None,
        interval: float = 0.25,
    ) -> None:
        self._services = {
            name: [pids] if isinstance(pids, int) else list(pids) for name, pids in services.items()
        }
        self._gateway = gateway
        self._interval = interval
        self.figures: dict[str, ProcessFigures] = {
            name: ProcessFigures(name)
            for name in [*services, "nginx gateway", *HELPER_GROUPS.values()]
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="process-sampler", daemon=True)
        self._started = 0.0
        self.seconds = 0.0
        self._machine_start = (0, 0)
        self.machine_busy_percent = 0.0

    def _groups(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {name: list(pids) for name, pids in self._services.items()}
        groups["nginx gateway"] = self._gateway() if self._gateway else []
        by_comm: dict[str, list[int]] = {label: [] for label in HELPER_GROUPS.values()}
        for pid in _all_pids():
            label = HELPER_GROUPS.get(_comm(pid))
            if label is not None:
                by_comm[label].append(pid)
        groups.update(by_comm)
        return groups

    def _sample(self, first: bool) -> None:
        for name, pids in self._groups().items():
            self.figures[name].sample(pids, first)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample(first=False)

    def __enter__(self) -> ProcessSampler:
        self._started = time.monotonic()
        self._machine_start = _machine_ticks()
        self._sample(first=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(first=False)
        self.seconds = time.monotonic() - self._started
        busy_end, total_end = _machine_ticks()
        busy = busy_end - self._machine_start[0]
        total = total_end - self._machine_start[1]
        self.machine_busy_percent = 100.0 * busy / total if total else 0.0

    def peak_rss_mb(self, name: str) -> float:
        figures = self.figures.get(name)
        return figures.peak_rss_mb if figures else 0.0

    def cpu_percent(self, name: str) -> float:
        figures = self.figures.get(name)
        return figures.cpu_percent(self.seconds) if figures else 0.0

    def cpu_seconds(self, name: str) -> float:
        """CPU seconds ``name`` used over the window (0 for a group never sampled)."""
        figures = self.figures.get(name)
        return figures.cpu_seconds if figures else 0.0

    def processes_of(self, name: str) -> list[int]:
        """The pids a service was sampled as (one per replica)."""
        return list(self._services.get(name, []))

    def cpu_percent_by_process(self, name: str) -> list[float]:
        """Each replica's CPU in % of one core, in the order the pids were given."""
        figures = self.figures.get(name)
        if figures is None:
            return []
        return [
            _percent(figures.pid_ticks.get(pid, 0), self.seconds) for pid in self.processes_of(name)
        ]
