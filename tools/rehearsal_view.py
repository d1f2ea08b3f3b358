"""The deploy rehearsal in `make plan`'s text output: critical path, totals, destroy order, appliers.

Fits 80 columns: steps are named by type and name (tools/plan_view.short_urn), elided with `…`
when longer than the screen, and the appliers are short paragraphs wrapped at spaces rather than a
table whose narrow columns would cut ARNs in pieces.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

from tools.plan_view import _wrapped, short_urn


def render_rehearsal(section: dict[str, Any], console: Console) -> None:
    create, destroy = section["create"], section["destroy"]
    console.print("Critical path of a first `pulumi up` (analysis/rehearsal.py):")
    console.print("[dim]done at    min  step[/]")
    for step in create["steps"]:
        line = f"{step['finish']:>7g} {step['minutes']:>6g}  {escape(step['type'])} {escape(step['name'])}"
        console.print(line, no_wrap=True, overflow="ellipsis", highlight=False)
    console.print(
        f"create: {len(create['waves'])} waves, about {create['minutes']:g} min (worst case within "
        f"provider timeouts {create['worstCaseMinutes']:g} min); destroy: {len(destroy['waves'])} waves, "
        f"about {destroy['minutes']:g} min.",
        highlight=False,
    )
    for label, wave in (("destroyed first", 0), ("destroyed last", -1)):
        if destroy["waves"]:
            console.print(f"{label}:", highlight=False)
            for urn in destroy["waves"][wave][:3]:
                console.print(
                    f"  {escape(short_urn(urn))}", no_wrap=True, overflow="ellipsis", highlight=False
                )
    console.print("Who applies this stack:")
    mark = {True: "[green]yes[/]", False: "[bold red]no[/]"}
    for a in section["appliers"]:
        console.print(f"  [bold]{escape(a['path'])}[/]", highlight=False)
        text = (
            f"runs on {escape(a['runsOn'])}\nas {escape(a['principal'])}\n"
            f"reaches the endpoint: {mark[a['reachesEndpoint']]}, {escape(a['reach'])}\n"
            f"cluster admin: {mark[a['clusterAdmin']]}, {escape(a['admin'])}"
        )
        for line in text.splitlines():
            _wrapped(console, line)
    # Every resource's applier (analysis/appliers.py applied_by), grouped: the JSON lists each one.
    groups: dict[tuple[str, str, str], int] = {}
    for row in section.get("appliedBy", []):
        key = (row["appliedBy"], row["from"], row["firstApply"])
        groups[key] = groups.get(key, 0) + 1
    if groups:
        console.print("Who applies each resource (rehearsal.appliedBy in the JSON):")
        for (by, where, first), count in sorted(groups.items()):
            _wrapped(
                console, f"{count} resources: {escape(by)}, on {escape(where)}; first up: {escape(first)}"
            )
