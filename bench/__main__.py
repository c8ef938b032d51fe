"""``python -m bench [--quick] [--only ROW] [--output PATH] [--keep-stack]``.

``scripts/bench`` runs it. ``--only bookings`` measures row 2 with its baselines (pgbench,
redis-benchmark) on a fresh stack and prints the figures, for comparing a change before
and after; ``--only flash`` does the same for the flash sale, ``--only queue`` for the
waiting room (row 6, at a fixed admission rate since no flash sale measures one). A subset
run writes its report under ``.run/bench/``, never docs/.

Exit status: 0 when the run measured its rows and nothing was sold twice, lost or
oversold (missed performance targets are reported, not failed); 1 when the run broke
off; 2 when the flash sale's or the waiting room's read-back found a correctness violation.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import traceback
from pathlib import Path

from bench.report import console_table, render, replace_generated_block, scaling_block
from bench.results import RunResults
from bench.run import FULL, QUICK, SUBSETS, run, subset_plan
from devstack.config import ROOT

DEFAULT_OUTPUT = ROOT / "docs" / "BENCHMARKS.md"
QUICK_OUTPUT = ROOT / ".run" / "bench" / "BENCHMARKS-quick.md"
SCALING_DOC = ROOT / "docs" / "SCALING.md"


def update_scaling_doc(results: RunResults, path: Path) -> None:
    """Rewrite the generated block of docs/SCALING.md from this run's figures.

    Only a full run that also rewrote docs/BENCHMARKS.md does this: the block points at
    that file's Scaling section, and quick figures are not the benchmark.
    """
    path.write_text(replace_generated_block(path.read_text(), scaling_block(results)))


def default_output(only: list[str], *, quick: bool) -> Path:
    """docs/BENCHMARKS.md for a full run only; quick and subset reports stay in .run/."""
    if only:
        suffix = "-quick" if quick else ""
        return QUICK_OUTPUT.with_name(f"BENCHMARKS-{'-'.join(only)}{suffix}.md")
    return QUICK_OUTPUT if quick else DEFAULT_OUTPUT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small numbers (~3 min) to check the harness"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"report path (default {DEFAULT_OUTPUT.relative_to(ROOT)}; "
        f"{QUICK_OUTPUT.relative_to(ROOT)} with --quick)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SUBSETS,
        default=[],
        help="measure only this row (repeatable): bookings = row 2 and its baselines "
        "(~2 min; ~1.5 min with --quick), flash = the flash sale, seatmap = the seat map of "
        "a 100,000-seat event, queue = the waiting room (5,000 buyers; ~3 min, ~1 min with "
        "--quick)",
    )
    parser.add_argument(
        "--keep-stack", action="store_true", help="leave the bench stack running afterwards"
    )
    args = parser.parse_args(argv)
    only: list[str] = sorted(set(args.only))
    plan = QUICK if args.quick else FULL
    if only:
        plan = subset_plan(plan, only)
    output: Path = args.output or default_output(only, quick=args.quick)
    command = " ".join(["scripts/bench", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    try:
        results = run(plan, only=only, keep_stack=args.keep_stack, command=command)
    except Exception:
        traceback.print_exc()
        print("benchmark run broke off; no report written", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(results))
    print(console_table(results))
    print(f"\nreport: {output}")
    if not args.quick and not only and output.resolve() == DEFAULT_OUTPUT.resolve():
        try:
            update_scaling_doc(results, SCALING_DOC)
        except ValueError as exc:
            print(f"{SCALING_DOC} not updated: {exc}", file=sys.stderr)
            return 1
        print(f"scaling figures: {SCALING_DOC}")
    queue = results.queue
    if queue is not None and not queue.correct:
        print("WAITING ROOM CORRECTNESS VIOLATION (see the report)", file=sys.stderr)
        return 2
    if only and "flash" not in only:
        return 0
    flash = results.flash
    if flash is None or not flash.correct:
        print("FLASH SALE CORRECTNESS VIOLATION (see the report)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
