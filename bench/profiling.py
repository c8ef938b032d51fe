"""Where a service's time goes under load: py-spy samples, summarized for the report.

py-spy attaches to the running service (``--nonblocking``: the process is never paused)
and writes collapsed stacks. Idle threads are left out, so the samples are the time the
process was running Python or waiting in a C call. The summary groups the *self* time of
each sample's innermost frame by package (our services, SQLAlchemy, asyncpg, pydantic,
uvicorn, the event loop...) and lists the heaviest functions, both by self time and, for
the project's own code, by inclusive time. Each package's self time is also a
:class:`Cost`: how many seconds of the window it took, its heaviest function, and the
project function it mostly ran under, so a report can name what a missed target costs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_PACKAGES = (
    "auth_service",
    "booking_service",
    "event_service",
    "payment_service",
    "notification_service",
    "ticketing_common",
)


def py_spy_binary() -> str:
    beside_python = Path(sys.executable).parent / "py-spy"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: pip install -e '.[dev]' brings it")
    return found


def start_recording(
    pid: int, seconds: int, output: Path, rate: int = 100
) -> subprocess.Popen[bytes]:
    output.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            py_spy_binary(),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            str(rate),
            "--nonblocking",
            "--gil",
            "--nolineno",
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _location(frame: str) -> str:
    """``module/path.py`` of a frame written as ``function (module/path.py)``."""
    start = frame.rfind(" (")
    return frame[start + 2 : -1] if start >= 0 and frame.endswith(")") else frame


def package_of(frame: str) -> str:
    """The package a frame's code belongs to: its first path component, or the stdlib."""
    location = _location(frame)
    if location.startswith("<"):
        return "python internals"
    top = location.split("/", 1)[0]
    if "/" not in location:
        return "stdlib"
    if top == "asyncio":
        return "asyncio (event loop)"
    if top in {"json", "logging", "email", "concurrent", "http", "urllib", "collections"}:
        return f"stdlib {top}"
    return top.removesuffix(".py")


@dataclass(frozen=True)
class Cost:
    """One package's self time in a profile, and where in it and under what it was spent."""

    package: str
    #: share of the profile's samples whose innermost frame is in this package
    share: float
    #: those samples in seconds (samples / rate): time the process spent there
    seconds: float
    #: the package's function with the most self time, and its share of all samples
    heaviest: tuple[str, float]
    #: the innermost project function those samples ran under, and its share (None: none)
    under: tuple[str, float] | None


@dataclass(frozen=True)
class ProfileSummary:
    service: str
    samples: int
    seconds: float
    rate: int
    by_package: list[tuple[str, float]]
    top_self: list[tuple[str, float]]
    top_project: list[tuple[str, float]]
    raw: Path
    load: str = ""
    #: the packages by self time, heaviest first
    costs: list[Cost] = field(default_factory=list)

    @property
    def busy_share(self) -> float:
        """Share of the window the process was running (not idle), 0..1."""
        expected = self.seconds * self.rate
        return min(1.0, self.samples / expected) if expected else 0.0


def _is_wrapper(frame: str) -> bool:
    """Middleware that wraps every request: on every stack, so it says nothing."""
    return "Middleware.__call__" in frame


def _is_project(frame: str) -> bool:
    return _location(frame).split("/", 1)[0] in PROJECT_PACKAGES and not _is_wrapper(frame)


def _costs(
    by_package: Counter[str],
    leaves: dict[str, Counter[str]],
    callers: dict[str, Counter[str]],
    *,
    total: int,
    rate: int,
    top: int,
) -> list[Cost]:
    costs = []
    for package, count in by_package.most_common(top):
        leaf, leaf_count = leaves[package].most_common(1)[0]
        caller = callers[package].most_common(1)
        costs.append(
            Cost(
                package=package,
                share=count / total,
                seconds=count / rate,
                heaviest=(leaf, leaf_count / total),
                under=(caller[0][0], caller[0][1] / total) if caller else None,
            )
        )
    return costs


def summarize(
    service: str, raw: Path, *, seconds: float, rate: int = 100, top: int = 8, load: str = ""
) -> ProfileSummary:
    by_package: Counter[str] = Counter()
    by_self: Counter[str] = Counter()
    by_project: Counter[str] = Counter()
    leaves: dict[str, Counter[str]] = defaultdict(Counter)
    callers: dict[str, Counter[str]] = defaultdict(Counter)
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        leaf = frames[-1]
        package = package_of(leaf)
        by_package[package] += count
        by_self[leaf] += count
        leaves[package][leaf] += count
        innermost = next((frame for frame in reversed(frames) if _is_project(frame)), None)
        if innermost is not None:
            callers[package][innermost] += count
        for frame in set(frames):
            if _is_project(frame):
                by_project[frame] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, count / total) for name, count in counter.most_common(top)] if total else []

    return ProfileSummary(
        service=service,
        samples=total,
        seconds=seconds,
        rate=rate,
        by_package=shares(by_package),
        top_self=shares(by_self),
        top_project=shares(by_project),
        raw=raw,
        load=load,
        costs=_costs(by_package, leaves, callers, total=total, rate=rate, top=top) if total else [],
    )
