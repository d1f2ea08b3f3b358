"""Compare two offline plans: added, removed and changed resources, findings, and the cost change.

    python -m tools.diff --stack prod --base main        the stack at a git revision vs this checkout
    python -m tools.diff --stack dev --other prod        two stacks of this checkout
    python -m tools.diff --a old.json --b new.json       two saved plan documents
    ... --project identity                               the stack's deploy identity (identity/)
    ... [--json diff.json] [--markdown summary.md]

`--base` plans the revision in a temporary `git worktree` with this checkout's Python, then removes
the worktree; a stack without its stack file at the revision is new: every resource is added.
Findings (deleting a protected resource, replacing a stateful one) are printed and written; they do
not change the exit code. Usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from analysis.diff import DiffReport, diff_plans
from tools.mocks import ROOT
from tools.plan_view import short_urn

LIMIT = 60  # characters of a value in the text and Markdown; the JSON keeps the whole value


class UsageError(Exception):
    pass


def _plan_in(checkout: Path, stack: str, out: Path, project: str = "platform") -> dict[str, Any]:
    """Run `tools.plan` of `checkout` for one stack (of the platform, or its identity project: it
    reads the same stack file) with this interpreter and read its JSON."""
    if not (checkout / f"Pulumi.{stack}.yaml").exists():
        raise UsageError(f"no stack file Pulumi.{stack}.yaml in {checkout}")
    command = [sys.executable, "-m", "tools.plan", "--stack", stack, "--json", str(out), "--quiet"]
    command += ["--project", project] if project != "platform" else []
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True, check=False)  # noqa: S603 (our interpreter)
    if done.returncode != 0:
        raise UsageError(f"planning {stack} in {checkout} failed:\n{done.stderr or done.stdout}")
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def _plan_at_revision(
    revision: str, stack: str, work: Path, project: str = "platform"
) -> dict[str, Any] | None:
    """The stack's plan at `revision`; None when the stack has no stack file there (it is new)."""
    if revision.startswith("-"):
        raise UsageError(f"{revision!r} is not a git revision")
    tree = work / "base"
    add = ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), revision]
    done = subprocess.run(add, capture_output=True, text=True, check=False)  # noqa: S603 (fixed argv, no shell)
    if done.returncode != 0:
        raise UsageError(f"cannot check out {revision!r}: {done.stderr.strip()}")
    try:
        if not (tree / f"Pulumi.{stack}.yaml").exists():
            return None
        return _plan_in(tree, stack, work / "base.json", project)
    finally:
        remove = ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)]
        subprocess.run(remove, capture_output=True, check=False)  # noqa: S603


def _short(value: Any) -> str:
    """A value on one line, elided; `(none)` where an input or list item is absent on one side."""
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= LIMIT else text[: LIMIT - 1] + "…"


SEGMENT = re.compile(r"\[[^\]]*\]|[^.\[]+")


def segments(path: str) -> list[str]:
    """`values.tolerations[key=a.b/c].effect` -> `values`, `tolerations`, `[key=a.b/c]`, `effect`."""
    return SEGMENT.findall(path)


def _join(parts: list[str]) -> str:
    return "".join(p if i == 0 or p.startswith(("[", "…")) else "." + p for i, p in enumerate(parts))


def fit_path(path: str, room: int) -> str:
    """`path` in at most `room` characters where it can be: whole parent segments are elided with
    `…`, never the last one (the key that changed), which is kept whole even when longer. Kept
    first: the end (the key and its nearest parents), then the start (the input it is under)."""
    if len(path) <= room:
        return path
    parts = segments(path)
    if len(parts) == 1:
        return path
    head: list[str] = []
    tail = [parts[-1]]
    middle = parts[:-1]
    if len(_join([middle[0], "…", *tail])) <= room:
        head, middle = [middle[0]], middle[1:]
    while middle and len(_join([*head, "…", middle[-1], *tail])) <= room:  # nearest parents
        tail.insert(0, middle.pop())
    while middle and len(_join([*head, middle[0], "…", *tail])) <= room:  # then the start
        head.append(middle.pop(0))
    return _join([*head, "…", *tail]) if middle else _join([*head, *tail])


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def component(urn: str) -> str:
    """The top-level ComponentResource type a URN sits under (the first type of its parent chain,
    after the Stack); `(stack)` for a top-level resource such as a provider."""
    chain = urn.split("::")[2].split("$")
    inner = [t for t in chain if t != "pulumi:pulumi:Stack"]
    return inner[0] if len(inner) > 1 else "(stack)"


def render(report: DiffReport, console: Console) -> None:
    """Counts and cost change first, then the changes grouped by component, each resource shown
    as `type name` and every line kept to the console's width (values elided with `…`)."""
    cost = report.cost
    console.print(f"[bold]Plan diff[/] {escape(report.base)} → {escape(report.head)}", highlight=False)
    console.print(
        f"{len(report.added)} added, {len(report.removed)} removed, {len(report.changed)} changed; "
        f"{len(report.findings)} finding(s). Fixed monthly cost ({cost['currency']}): "
        f"{_money(cost['before'])} → {_money(cost['after'])} (change {_money(cost['change'])})",
        highlight=False,
    )
    for f in report.findings:
        console.print(f"[bold red]{f['level']}[/] {f['rule']}: {escape(f['message'])}", highlight=False)
    groups: dict[str, list[tuple[str, str]]] = {}
    for entry in report.added:
        groups.setdefault(component(entry["urn"]), []).append(("[green]+[/]", entry["urn"]))
    for entry in report.removed:
        flag = " [bold red](protected)[/]" if entry["protect"] else ""
        groups.setdefault(component(entry["urn"]), []).append((f"[red]-[/]{flag}", entry["urn"]))
    changed = {c.urn: c for c in report.changed}
    for urn in changed:
        groups.setdefault(component(urn), []).append(("[yellow]~[/]", urn))
    for name in sorted(groups):
        console.rule(escape(name), align="left")
        for mark, urn in groups[name]:
            sign, _, flag = mark.partition(" ")
            line = f"{sign} {escape(short_urn(urn))}{' ' + flag if flag else ''}"
            console.print(line, no_wrap=True, overflow="ellipsis", highlight=False)
            for c in changed[urn].inputs if urn in changed else ():
                replaces = " [bold red]replaces[/]" if c.replaces else ""
                path = fit_path(c.path, max(24, console.width // 2))
                console.print(
                    f"    {escape(path)}: {escape(_short(c.before))} → {escape(_short(c.after))}{replaces}",
                    no_wrap=True,
                    overflow="ellipsis",
                    highlight=False,
                )


def markdown(report: DiffReport) -> str:
    """The diff for a pull request's job summary (values elided, secrets already masked)."""

    def code(value: Any) -> str:
        return "`" + _short(value).replace("`", "'").replace("|", "\\|") + "`"

    cost = report.cost
    lines = [
        f"### Plan diff: {report.base} → {report.head}",
        "",
        f"{len(report.added)} added, {len(report.removed)} removed, {len(report.changed)} changed. "
        f"Fixed monthly cost ({cost['currency']}): {_money(cost['before'])} → {_money(cost['after'])} "
        f"(change {_money(cost['change'])}).",
        "",
    ]
    lines += [f"- **{f['level']}** `{f['rule']}`: {f['message']}" for f in report.findings]
    if report.added or report.removed or report.changed:
        lines += ["", "| | resource | input | before | after |", "|---|---|---|---|---|"]
        lines += [f"| + | {code(a['urn'].rsplit('::', 1)[-1])} | | | |" for a in report.added]
        lines += [f"| - | {code(r['urn'].rsplit('::', 1)[-1])} | | | |" for r in report.removed]
        for changed in report.changed:
            name = code(changed.urn.rsplit("::", 1)[-1])
            for c in changed.inputs:
                mark = " (replaces)" if c.replaces else ""
                lines.append(f"| ~ | {name} | {code(c.path)}{mark} | {code(c.before)} | {code(c.after)} |")
    return "\n".join(lines) + "\n"


def empty_plan(head: dict[str, Any]) -> dict[str, Any]:
    """The plan of a stack that does not exist yet: no resources, nothing to pay."""
    cost = head.get("cost") or {}
    return {
        "format": head.get("format", 1),
        "project": head.get("project"),
        "stack": head.get("stack"),
        "resources": [],
        "outputs": {},
        "cost": {
            "currency": cost.get("currency", "USD"),
            "fixedMonthly": 0.0,
            "pricesAsOf": cost.get("pricesAsOf", "n/a"),
        },
    }


def compare(args: argparse.Namespace) -> DiffReport:
    if args.a or args.b:
        if not (args.a and args.b):
            raise UsageError("give both --a and --b (two saved plan documents)")
        documents = [json.loads(Path(p).read_text()) for p in (args.a, args.b)]
        return diff_plans(documents[0], documents[1], base_label=str(args.a), head_label=str(args.b))
    if bool(args.base) == bool(args.other):
        raise UsageError("give exactly one of --base REVISION, --other STACK, or --a FILE --b FILE")
    with tempfile.TemporaryDirectory(prefix="plan-diff-") as tmp:
        work = Path(tmp)
        if args.base:
            base = _plan_at_revision(args.base, args.stack, work, args.project)
            head = _plan_in(ROOT, args.stack, work / "head.json", args.project)
            label = f"{args.stack}@{args.base}"
            if base is None:  # a new stack: everything in it is added
                base, label = empty_plan(head), f"{label} (no Pulumi.{args.stack}.yaml: all added)"
            return diff_plans(base, head, base_label=label, head_label=f"{args.stack}@working tree")
        base = _plan_in(ROOT, args.stack, work / "base.json", args.project)
        head = _plan_in(ROOT, args.other, work / "head.json", args.project)
        return diff_plans(base, head)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make diff", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack to plan (with --base or --other)")
    parser.add_argument("--base", metavar="REVISION", help="git revision to compare the working tree with")
    parser.add_argument("--other", metavar="STACK", help="second stack of this checkout")
    parser.add_argument(
        "--project",
        choices=("platform", "identity"),
        default="platform",
        help="the platform stack, or its deploy identity (identity/, applied by admins)",
    )
    parser.add_argument("--a", type=Path, metavar="FILE", help="saved plan document (before)")
    parser.add_argument("--b", type=Path, metavar="FILE", help="saved plan document (after)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the diff document")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="append the diff as Markdown")
    args = parser.parse_args(argv)
    try:
        report = compare(args)
    except (UsageError, OSError, json.JSONDecodeError) as err:
        Console(stderr=True).print(f"[bold red]make diff:[/] {escape(str(err))}", highlight=False)
        return 2
    render(report, Console())
    if args.json:
        args.json.write_text(json.dumps(report.document(), indent=2, sort_keys=True, default=str) + "\n")
    if args.markdown:
        with args.markdown.open("a", encoding="utf-8") as out:
            out.write(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
