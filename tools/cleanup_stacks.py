"""Destroy ephemeral integration stacks left behind by crashed, timed-out or cancelled runs.

    python -m tools.cleanup_stacks [--older-than HOURS] [--dry-run] [--region REGION]

Needs the Pulumi CLI (logged in to the backend the tests used) and AWS credentials. Only stacks
named `it-*` of this project are touched. Each stale stack gets, in order:

1. `pulumi cancel` when the backend reports an update in progress, or when the refresh hits the
   lock ("409 Another update is currently in progress" on Pulumi Cloud, "the stack is currently
   locked" on a self-managed backend): a killed `up`/`destroy` leaves the stack locked, and
   Pulumi's troubleshooting guide says to cancel (`pulumi cancel` works on self-managed
   backends too since pulumi/pulumi#9100).
2. `pulumi refresh --clear-pending-creates`: the state learns what the killed run really did.
3. `pulumi destroy`, then `pulumi stack rm`.
4. the leak check (tools/leak_check.py) on what AWS still holds; after a failed destroy, what is
   left in the stack's VPCs.

One stack's failure never stops the others from being tried; the exit code is 1 if any failed or
leaked. Pulumi's output is printed verbatim (no rich markup: it would swallow `[...]`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rich.console import Console

from tools.leak_check import Leak, destroy_blockers, error_lines, find_leaks
from tools.mocks import ROOT

STACK_PREFIX = "it-"
PROJECT = "eks-platform"


class Summary(Protocol):
    """What `LocalWorkspace.list_stacks()` returns per stack (pulumi.automation.StackSummary)."""

    name: str
    update_in_progress: bool | None
    last_update: dt.datetime | None


class StackOps(Protocol):
    """The part of `pulumi.automation.Stack` the cleanup uses."""

    def cancel(self) -> None: ...
    def refresh(
        self,
        *,
        clear_pending_creates: bool | None = None,
        color: str | None = None,
        on_output: Callable[[str], Any] | None = None,
    ) -> Any: ...
    def destroy(self, *, color: str | None = None, on_output: Callable[[str], Any] | None = None) -> Any: ...


def as_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """An aware UTC datetime. The Automation API parses the CLI's `lastUpdate` ("...Z", UTC) into
    a naive datetime (pulumi/automation/_stack.py `_DATETIME_FORMAT`): naive means UTC here, never
    local time, or a colleague's live run would look hours older on a non-UTC machine."""
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def stale(summaries: Iterable[Summary], now: dt.datetime, older_than_hours: float) -> list[Summary]:
    """The `it-*` stacks last updated before the cutoff (or never), by name."""
    cutoff = now.astimezone(dt.UTC) - dt.timedelta(hours=older_than_hours)
    picked = []
    for summary in summaries:
        updated = as_utc(summary.last_update)
        if summary.name.startswith(STACK_PREFIX) and (updated is None or updated <= cutoff):
            picked.append(summary)
    return sorted(picked, key=lambda s: s.name)


def _locked(err: Exception) -> bool:
    from pulumi.automation.errors import ConcurrentUpdateError

    return isinstance(err, ConcurrentUpdateError)


@dataclass(frozen=True)
class Outcome:
    stack: str
    steps: tuple[str, ...]
    error: tuple[str, ...] = ()  # what blocked the step that failed
    leaks: tuple[Leak, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.error and not self.leaks


def clean_stack(
    summary: Summary, stack: StackOps, remove: Callable[[str], None], out: Callable[[str], None]
) -> Outcome:
    """Cancel (if locked), refresh, destroy and remove one stack; never raises."""
    steps: list[str] = []
    try:
        if summary.update_in_progress:
            steps.append("cancel")
            stack.cancel()
        steps.append("refresh")
        try:
            stack.refresh(clear_pending_creates=True, color="never", on_output=out)
        except Exception as err:
            if not _locked(err) or "cancel" in steps:
                raise
            steps += ["cancel", "refresh"]
            stack.cancel()
            stack.refresh(clear_pending_creates=True, color="never", on_output=out)
        steps.append("destroy")
        stack.destroy(color="never", on_output=out)
        steps.append("remove")
        remove(summary.name)
    except Exception as err:
        text = str(err)
        return Outcome(summary.name, tuple(steps), tuple(error_lines(text)) or (text.strip()[-500:],))
    return Outcome(summary.name, tuple(steps))


def clean_all(
    summaries: Sequence[Summary],
    select: Callable[[str], StackOps],
    remove: Callable[[str], None],
    check: Callable[[str, bool], list[Leak]],
    out: Callable[[str], None],
) -> list[Outcome]:
    """Clean every stack in turn; a failure (even in `select` or the leak check) stays its own."""
    outcomes = []
    for summary in summaries:
        try:
            outcome = clean_stack(summary, select(summary.name), remove, out)
        except Exception as err:  # selecting the stack failed: nothing ran
            outcome = Outcome(summary.name, (), (str(err).strip()[-500:],))
        destroyed = "remove" in outcome.steps  # reached only once the destroy succeeded
        try:
            leaks = check(summary.name, destroyed)
        except Exception as err:
            leaks = [Leak("unchecked", "leak check", str(err))]
        outcomes.append(Outcome(outcome.stack, outcome.steps, outcome.error, tuple(leaks)))
    return outcomes


def plain_console(**kwargs: Any) -> Console:
    """A console that prints text as given: Pulumi's `[...]` is output, not rich markup."""
    return Console(markup=False, highlight=False, soft_wrap=True, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make it-cleanup", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--older-than", type=float, default=6.0, help="hours since the last update (UTC)")
    parser.add_argument("--dry-run", action="store_true", help="list the stale stacks, touch nothing")
    parser.add_argument("--region", default="eu-west-1", help="the region the stacks were created in")
    args = parser.parse_args(argv)
    console = plain_console()
    if shutil.which("pulumi") is None:
        console.print("The Pulumi CLI is not installed; nothing to clean from here.")
        return 2
    import boto3  # type: ignore[import-untyped]
    from pulumi import automation as auto

    workspace = auto.LocalWorkspace(work_dir=str(ROOT))
    picked = stale(workspace.list_stacks(), dt.datetime.now(dt.UTC), args.older_than)
    if not picked:
        console.print("No stale ephemeral stacks.")
        return 0
    for summary in picked:
        busy = " (update in progress)" if summary.update_in_progress else ""
        console.print(f"Stale stack {summary.name}: last update {as_utc(summary.last_update)}{busy}")
    if args.dry_run:
        return 0
    session = boto3.Session(region_name=args.region)

    def check(stack: str, destroyed: bool) -> list[Leak]:
        return find_leaks(session, PROJECT, stack) if destroyed else destroy_blockers(session, stack)

    outcomes = clean_all(
        picked,
        lambda name: auto.select_stack(stack_name=name, work_dir=str(ROOT)),
        workspace.remove_stack,
        check,
        lambda line: console.print(line, end=""),
    )
    for outcome in outcomes:
        status = "cleaned" if outcome.ok else "NOT clean"
        console.print(f"{outcome.stack}: {status} ({' -> '.join(outcome.steps) or 'nothing ran'})")
        for line in outcome.error:
            console.print(f"  blocked: {line}")
        for leak in outcome.leaks:
            console.print(f"  left behind: {leak}")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
