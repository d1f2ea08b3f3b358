"""Benchmark the offline plan: median wall time of whole `python -m tools.plan` runs.

    python -m tools.bench [--stack prod] [--runs 7] [--budget 2.0]
    python -m tools.bench --suite [--suite-budget 30]   # the unit suite, as `make unit` runs it

Each run is a fresh interpreter (imports count: they are most of the cost), after one warm-up
run that fills the bytecode cache (and the render memo, when charts are cached). Prints median,
min and max; exits 1 if the median exceeds the budget (2 s), so CI can gate on it when wanted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from rich.console import Console

from tools.mocks import ROOT


def _env() -> dict[str, str]:
    """The environment of a default Python: bytecode is cached. A machine that sets
    PYTHONDONTWRITEBYTECODE (this one does) would otherwise compile every changed module of the
    project on every run, and the warm-up could not warm anything."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def time_plan(stack: str) -> float:
    start = time.perf_counter()
    subprocess.run(  # noqa: S603 (our own interpreter and module)
        # The whole plan as a user runs it, rendering included (to /dev/null).
        [sys.executable, "-m", "tools.plan", "--stack", stack],
        cwd=ROOT,
        env=_env(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def time_suite() -> tuple[float, int]:
    """Wall time and exit code of the unit suite as `make unit` runs it (every core)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "auto", "-q"],
        cwd=ROOT,
        env=_env(),
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start, done.returncode


def bench_suite(console: Console, budget: float) -> int:
    seconds, code = time_suite()
    console.print(f"unit suite (pytest -n auto): [bold]{seconds:.1f} s[/], one run")
    if code != 0:
        console.print(f"[red]the suite failed (pytest exit {code}): the time says nothing[/]")
        return 1
    if seconds > budget:
        console.print(f"[red]{seconds:.1f} s is above the {budget:.0f} s budget[/]")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds the median may not exceed")
    parser.add_argument("--suite", action="store_true", help="time the unit suite instead of the plan")
    parser.add_argument("--suite-budget", type=float, default=30.0, help="seconds the unit suite may take")
    args = parser.parse_args(argv)
    console = Console()
    if args.suite:
        return bench_suite(console, args.suite_budget)
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
