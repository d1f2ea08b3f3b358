"""Summarise offline plan documents (`make plan STACK=<stack> JSON=<file>`) as Markdown.

    python .github/scripts/plan_summary.py plan-dev.json [plan-prod.json ...] >> "$GITHUB_STEP_SUMMARY"

Per plan: the resource total with custom/component split, protected resources, the IP capacity
line and subnets, policy findings by level when the document has a `findings` list (rule, level,
urn, message), and the resource count by type. Standard library only: CI runs it without the
project's virtualenv. Exit status 2 when a file is missing or is not a plan document.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

LEVELS = ("mandatory", "advisory")
MAX_FINDINGS_LISTED = 25


def cell(value: object) -> str:
    """One Markdown table cell: no line breaks, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def urn_name(urn: str | None) -> str:
    """`urn:pulumi:stack::project::type$type::name` -> `name` (the logical name)."""
    return urn.rsplit("::", 1)[-1] if urn else "(stack)"


def headline(plan: dict[str, Any]) -> list[str]:
    resources = plan["resources"]
    custom = sum(1 for r in resources if r.get("custom"))
    protected = sum(1 for r in resources if r.get("protect"))
    return [
        f"## Offline plan: `{plan['project']}` / `{plan['stack']}`",
        "",
        f"**{len(resources)} resources** ({custom} custom, {len(resources) - custom} components)"
        f" · **{protected} protected** · {len(plan.get('outputs', {}))} stack outputs",
        "",
    ]


def capacity(plan: dict[str, Any]) -> list[str]:
    cap = plan.get("capacity")
    if not cap:
        return ["**IP capacity:** not in this plan document.", ""]
    used = cap["requiredIps"] / cap["usableIps"] if cap["usableIps"] else 1.0
    lines = [
        f"**IP capacity:** max nodes {cap['maxNodes']:,} · max pods {cap['maxPods']:,} · "
        f"planned pods {cap['plannedPods']:,} · pod IPs needed {cap['requiredIps']:,} of "
        f"{cap['usableIps']:,} usable ({used:.1%})",
        "",
    ]
    subnets, free = cap.get("privateSubnets", {}), cap.get("freeIpsPerAz", {})
    if subnets:
        lines += ["| AZ | private subnet | free IPs |", "|---|---|---:|"]
        lines += [f"| {zone} | `{cidr}` | {free.get(zone, 0):,} |" for zone, cidr in subnets.items()]
        lines.append("")
    return lines


def findings(plan: dict[str, Any]) -> list[str]:
    items = plan.get("findings")
    if not isinstance(items, list):
        return []  # no policy pack evaluated this plan
    counts = Counter(str(f.get("level", "unknown")) for f in items)
    parts = [f"{counts.get(level, 0)} {level}" for level in LEVELS]
    parts += [f"{n} {level}" for level, n in sorted(counts.items()) if level not in LEVELS]
    mark = "❌" if counts.get("mandatory") else "✅"
    lines = [f"**Policy findings:** {mark} " + " · ".join(parts), ""]
    ordered = sorted(items, key=lambda f: (f.get("level") != "mandatory", str(f.get("rule"))))
    if ordered:
        summary = f"{len(items)} finding(s)" + (
            f", first {MAX_FINDINGS_LISTED}" if len(items) > MAX_FINDINGS_LISTED else ""
        )
        lines += [f"<details><summary>{summary}</summary>", "", "| level | rule | resource | message |"]
        lines.append("|---|---|---|---|")
        for f in ordered[:MAX_FINDINGS_LISTED]:
            lines.append(
                f"| {cell(f.get('level'))} | `{cell(f.get('rule'))}` | `{cell(urn_name(f.get('urn')))}` "
                f"| {cell(f.get('message', ''))} |"
            )
        lines += ["", "</details>", ""]
    return lines


def by_type(plan: dict[str, Any]) -> list[str]:
    resources = plan["resources"]
    counts = Counter(r["type"] for r in resources)
    protected = Counter(r["type"] for r in resources if r.get("protect"))
    lines = [
        f"<details><summary>Resources by type ({len(counts)} types)</summary>",
        "",
        "| type | count | protected |",
        "|---|---:|---:|",
    ]
    for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"| `{cell(kind)}` | {n} | {protected.get(kind, 0) or ''} |")
    lines += ["", "</details>", ""]
    names = [f"`{cell(r['type'])}` {cell(r['name'])}" for r in resources if r.get("protect")]
    if names:
        lines += [f"<details><summary>Protected resources ({len(names)})</summary>", ""]
        lines += [f"- {name}" for name in names]
        lines += ["", "</details>", ""]
    return lines


def summarise(plan: dict[str, Any]) -> str:
    return "\n".join(headline(plan) + capacity(plan) + findings(plan) + by_type(plan))


def load(path: Path) -> dict[str, Any]:
    plan = json.loads(path.read_text())
    if not isinstance(plan, dict):
        raise ValueError("not a plan document (not a JSON object)")
    missing = [key for key in ("project", "stack", "resources") if key not in plan]
    if missing:
        raise ValueError(f"not a plan document (missing {', '.join(missing)})")
    return plan


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    status = 0
    for name in argv:
        try:
            print(summarise(load(Path(name))))
        except (OSError, ValueError, KeyError, TypeError) as err:
            print(f"plan_summary: {name}: {err}", file=sys.stderr)
            print(f"## Offline plan: `{name}`\n\n**No plan document** ({cell(err)}).\n")
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
