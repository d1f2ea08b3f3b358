"""Benchmark the offline plan: median wall time of whole `python -m tools.plan` runs.

    python -m tools.bench [--stack prod] [--runs 7] [--budget 2.0]

Each run is a fresh interpreter (imports count: they are most of the cost), after one warm-up
run that fills the bytecode cache (and the render memo, when charts are cached). Prints median,
min and max; exits 1 if the median exceeds the budget (2 s), so CI can gate on it when wanted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from rich.console import Console

from tools.mocks import ROOT


def time_plan(stack: str) -> float:
    start = time.perf_counter()
    subprocess.run(  # noqa: S603 (our own interpreter and module)
        # The whole plan as a user runs it, rendering included (to /dev/null).
        [sys.executable, "-m", "tools.plan", "--stack", stack],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds the median may not exceed")
    args = parser.parse_args(argv)
    console = Console()
    time_plan(args.stack)  # warm-up: bytecode cache, page cache
    times = [time_plan(args.stack) for _ in range(args.runs)]
    median = statistics.median(times)
    console.print(
        f"offline plan of stack [bold]{args.stack}[/]: median [bold]{median:.2f} s[/] "
        f"(min {min(times):.2f}, max {max(times):.2f}, {args.runs} runs after a warm-up)"
    )
    # The budget is on the median (a run on a shared machine can stall; the median says what a
    # user waits); the slowest run is printed beside it.
    if median > args.budget:
        console.print(f"[red]median {median:.2f} s is above the {args.budget:.1f} s budget[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
