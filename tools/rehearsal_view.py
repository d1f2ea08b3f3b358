"""The deploy rehearsal in `make plan`'s text output: critical path, totals, destroy order, appliers."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def _short(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def render_rehearsal(section: dict[str, Any], console: Console) -> None:
    create, destroy = section["create"], section["destroy"]
    table = Table(title="Deploy rehearsal: critical path of a first `pulumi up` (analysis/rehearsal.py)")
    for column in ("step", "type", "minutes", "done at"):
        table.add_column(column, overflow="fold")
    for step in create["steps"]:
        table.add_row(escape(step["name"]), step["type"], f"{step['minutes']:g}", f"{step['finish']:g}")
    console.print(table)
    console.print(
        f"create: {len(create['waves'])} waves, about {create['minutes']:g} min "
        f"(worst case within provider timeouts {create['worstCaseMinutes']:g} min); "
        f"destroy: {len(destroy['waves'])} waves, about {destroy['minutes']:g} min, first "
        f"{', '.join(_short(u) for u in destroy['waves'][0][:3]) if destroy['waves'] else '-'}, last "
        f"{', '.join(_short(u) for u in destroy['waves'][-1][:3]) if destroy['waves'] else '-'}."
    )
    who = Table(title="Who applies this stack")
    for column in ("path", "runs on", "as", "reaches endpoint", "cluster admin"):
        who.add_column(column, overflow="fold")
    for a in section["appliers"]:
        mark = {True: "[green]yes[/]", False: "[bold red]no[/]"}
        who.add_row(
            a["path"],
            escape(a["runsOn"]),
            escape(a["principal"]),
            f"{mark[a['reachesEndpoint']]}: {escape(a['reach'])}",
            f"{mark[a['clusterAdmin']]}: {escape(a['admin'])}",
        )
    console.print(who)
