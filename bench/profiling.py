"""Where a service's time goes under load: py-spy samples, summarized for the report.

py-spy attaches to the running service (``--nonblocking``: the process is never paused)
and writes collapsed stacks. Idle threads are left out, so the samples are the time the
process was running Python or waiting in a C call. The summary groups the *self* time of
each sample's innermost frame by package (our services, SQLAlchemy, asyncpg, pydantic,
uvicorn, the event loop...) and lists the heaviest functions, both by self time and, for
the project's own code, by inclusive time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
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

    @property
    def busy_share(self) -> float:
        """Share of the window the process was running (not idle), 0..1."""
        expected = self.seconds * self.rate
        return min(1.0, self.samples / expected) if expected else 0.0


def _is_wrapper(frame: str) -> bool:
    """Middleware that wraps every request: on every stack, so it says nothing."""
    return "Middleware.__call__" in frame


def summarize(
    service: str, raw: Path, *, seconds: float, rate: int = 100, top: int = 8, load: str = ""
) -> ProfileSummary:
    by_package: Counter[str] = Counter()
    by_self: Counter[str] = Counter()
    by_project: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        leaf = frames[-1]
        by_package[package_of(leaf)] += count
        by_self[leaf] += count
        for frame in set(frames):
            if _location(frame).split("/", 1)[0] in PROJECT_PACKAGES and not _is_wrapper(frame):
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
    )
