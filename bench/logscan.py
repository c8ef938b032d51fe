"""What the bench stack's own logs say about one row: the gateway's view and the errors.

A :class:`LogWindow` remembers where every log file of the stack ended when a row began
and when it finished, so a row's report reads only the lines that row wrote: the
gateway's JSON access log (requests per route and status, durations as nginx saw them)
and the services' JSON logs (warnings and errors, grouped by message).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

ACCESS_LOG = "gateway-access.log"
_NUMBER = re.compile(r"/\d+(?=/|$)")
_TX_REF = re.compile(r"/tkt-[^/]+")
_VARIABLE = re.compile(
    r"tkt-[0-9a-f-]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?<=/)\d+(?=/|\b)"
)


def route_of(uri: str) -> str:
    """``/api/bookings/42/cancel?x=1`` → ``/api/bookings/{id}/cancel``."""
    path = uri.split("?", 1)[0]
    return _TX_REF.sub("/{tx_ref}", _NUMBER.sub("/{id}", path))


@dataclass
class RouteFigures:
    statuses: Counter[int] = field(default_factory=Counter)
    durations: list[float] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def share(self, low: int, high: int) -> int:
        return sum(n for status, n in self.statuses.items() if low <= status < high)

    def percentile_ms(self, fraction: float) -> float:
        if not self.durations:
            return 0.0
        ordered = sorted(self.durations)
        return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


@dataclass(frozen=True)
class LoggedProblem:
    service: str
    level: str
    message: str
    count: int


def _normalized(text: str) -> str:
    """Ids, tx refs and tokens replaced, so one kind of failure counts as one message."""
    return _VARIABLE.sub("…", text)


def _first_line(text: str, limit: int = 140) -> str:
    line = _normalized(text.strip().splitlines()[0]) if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _last_line(text: str, limit: int = 160) -> str:
    line = _normalized(text.strip().splitlines()[-1]) if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


class LogWindow:
    """``with LogWindow(log_dir) as window: run the row``; then ask it what happened."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._start: dict[str, int] = {}
        self._end: dict[str, int] = {}

    def _sizes(self) -> dict[str, int]:
        return {path.name: path.stat().st_size for path in self.log_dir.glob("*.log")}

    def __enter__(self) -> LogWindow:
        self._start = self._sizes()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end = self._sizes()

    def _records(self, name: str) -> list[dict[str, Any]]:
        path = self.log_dir / name
        start, end = self._start.get(name, 0), self._end.get(name, 0)
        if end <= start or not path.exists():
            return []
        with path.open("rb") as handle:
            handle.seek(start)
            chunk = handle.read(end - start)
        records = []
        for line in chunk.decode(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def gateway_routes(self) -> dict[tuple[str, str], RouteFigures]:
        """(method, route) → statuses and durations, as the gateway logged them.

        nginx logs a request answered by an error page (a 504 after a timeout, say) with
        the error page's method, GET; such lines keep their route and status.
        """
        routes: dict[tuple[str, str], RouteFigures] = defaultdict(RouteFigures)
        for record in self._records(ACCESS_LOG):
            uri = str(record.get("uri", ""))
            if not uri.startswith("/api/"):
                continue
            figures = routes[(str(record.get("method", "")), route_of(uri))]
            figures.statuses[int(record.get("status", 0))] += 1
            figures.durations.append(float(record.get("duration", 0.0)))
        return dict(routes)

    def _service_logs(self, services: list[str]) -> list[tuple[str, str]]:
        """(service, log file) of each replica (``booking_service-1.log``), not just the first."""
        return [
            (service, name)
            for service in services
            for name in sorted(self._end)
            if name.removesuffix(".log").removeprefix(f"{service}-").isdigit()
        ]

    def problems(self, services: list[str], top: int = 8) -> list[LoggedProblem]:
        """The most frequent warnings and errors the services logged in the window."""
        counted: Counter[tuple[str, str, str]] = Counter()
        for service, name in self._service_logs(services):
            for record in self._records(name):
                level = str(record.get("level", "")).lower()
                if level not in {"warning", "error", "critical"}:
                    continue
                message = _first_line(str(record.get("msg", "")))
                failure = _last_line(str(record.get("exc", "") or ""))
                text = f"{message} — {failure}" if failure else message
                counted[(service, level, text)] += 1
        return [
            LoggedProblem(service, level, text, count)
            for (service, level, text), count in counted.most_common(top)
        ]
