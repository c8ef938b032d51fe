"""Running the launcher again is harmless: nothing is started twice."""

from __future__ import annotations

import subprocess
import sys

from devstack import processes
from devstack.config import ROOT, SERVICES, stack_named


def test_second_up_keeps_the_same_processes():
    stack = stack_named("test")
    before = {s: processes.running_pid(stack, s, 0) for s in SERVICES}
    assert all(before.values()), before
    subprocess.run(
        [sys.executable, "-m", "devstack", "up", "--stack", "test"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=180,
    )
    after = {s: processes.running_pid(stack, s, 0) for s in SERVICES}
    assert after == before
