"""The launcher (``python -m ticketing_common.serve``): what it does before uvicorn runs."""

from __future__ import annotations

import json
import subprocess
import sys

from ticketing_common import serve

# Runs the launcher in a process of its own (its garbage collector settings are the
# process's), with uvicorn.run replaced by a report of the state it would start from.
_LAUNCH = """
import gc, json, uvicorn
from ticketing_common import serve

def run(app, **options):
    print(json.dumps({
        "threshold": gc.get_threshold(),
        "frozen": gc.get_freeze_count(),
        "app": type(app).__name__,
        "title": app.title,
        "loop": options["loop"],
        "log_config": options["log_config"],
    }))

uvicorn.run = run
serve.main(["booking_service", "--port", "1"])
"""


def test_the_launcher_freezes_the_app_it_built_out_of_the_collectors_view() -> None:
    launched = subprocess.run(
        [sys.executable, "-c", _LAUNCH], capture_output=True, text=True, timeout=120, check=True
    )
    state = json.loads(launched.stdout.strip().splitlines()[-1])

    assert state["app"] == "FastAPI"
    assert state["loop"] == "uvloop"
    assert state["log_config"] is None  # uvicorn keeps the JSON logging the app set up
    assert state["title"] == "booking_service"
    # the modules, classes and routes built before serving: never walked again
    assert state["frozen"] > 50_000
    young, middle, old = state["threshold"]
    assert young == serve.GC_YOUNG_THRESHOLD > 700  # CPython's default
    assert (middle, old) == (10, 10)
