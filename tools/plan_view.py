"""The text of `make plan`: a one-screen summary first, then one section per analysis.

Everything here reads the plan document (the dict `--json` writes), never the program or the
config, so the text and the JSON cannot disagree and every view is testable on a hand-made
document. The views fit 80 columns: a long value is elided with `…` (the JSON keeps it whole),
a resource is named by its type and name rather than its URN, and table columns that hold tokens
never fold them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from analysis.cost import CostReport
    from analysis.render import RenderReport
    from analysis.validate import ValidationReport

SUMMARY_COMPONENTS = "(providers and other top-level resources)"
PACKAGE = re.compile(r"\S+\.tgz")
LISTED = 5  # mandatory findings, not-rendered releases and placeholders named in the summary


def short_urn(urn: str | None) -> str:
    """`type name` from a URN (`urn:pulumi:s::p::parent$type::name`); `(stack)` for none."""
    if not urn:
        return "(stack)"
    head, _, name = urn.rpartition("::")
    return f"{head.rsplit('$', 1)[-1].rsplit('::', 1)[-1]} {name}"


def _line(console: Console, text: str, *, style: str | None = None) -> None:
    """One line, never wrapped: what does not fit is elided with `…`."""
    console.print(text, no_wrap=True, overflow="ellipsis", highlight=False, style=style)


def _wrapped(console: Console, text: str, indent: int = 4) -> None:
    """Prose wrapped at spaces under an indent (a token is only folded if wider than the screen)."""
    for line in Text.from_markup(text).wrap(console, max(console.width - indent, 20)):
        line.rstrip()
        console.print(Text(" " * indent) + line, no_wrap=True, overflow="ellipsis", highlight=False)


def _top_level(resources: list[Mapping[str, Any]]) -> dict[str, str | None]:
    """Each resource's top-level ancestor (its own URN at the top); the Stack is not recorded."""
    parents = {r["urn"]: r["parent"] for r in resources}
    top: dict[str, str | None] = {}
    for urn in parents:
        node = urn
        while parents.get(node) in parents:
            node = parents[node]
        top[urn] = node
    return top


def component_counts(document: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(`type name` of each top-level ComponentResource, resources under it, itself included),
    sorted; top-level custom resources (the providers) are counted on one last line."""
    resources = document["resources"]
    by_urn = {r["urn"]: r for r in resources}
    counts = Counter(_top_level(resources).values())
    rows = sorted(
        (short_urn(urn), n) for urn, n in counts.items() if urn is not None and not by_urn[urn]["custom"]
    )
    loose = sum(n for urn, n in counts.items() if urn is not None and by_urn[urn]["custom"])
    return rows + ([(SUMMARY_COMPONENTS, loose)] if loose else [])


def _region(document: Mapping[str, Any]) -> str:
    for r in document["resources"]:
        if r["type"] == "pulumi:providers:aws" and r["inputs"].get("region"):
            return str(r["inputs"]["region"])
    return str(document.get("cost", {}).get("region", "?"))


def _yes(value: Any) -> str:
    return "[green]yes[/]" if value else "[bold red]NO[/]"


def _summary_findings(document: Mapping[str, Any], console: Console) -> None:
    findings = document.get("findings", [])
    mandatory = [f for f in findings if f["level"] == "mandatory"]
    _line(
        console,
        f"[bold]Findings[/]    {len(findings)}: [bold red]{len(mandatory)} mandatory[/], "
        f"{len(findings) - len(mandatory)} advisory",
    )
    for f in mandatory[:LISTED]:
        _line(console, f"  [red]✗[/] {escape(f['rule'])}: {escape(f['message'])}")
    if len(mandatory) > LISTED:
        _line(console, f"  … {len(mandatory) - LISTED} more under Findings below")


def _summary_capacity(document: Mapping[str, Any], console: Console) -> None:
    capacity = document.get("capacity")
    if not capacity:
        return
    zones = " · ".join(f"{z} {n:,}" for z, n in capacity["freeIpsPerAz"].items())
    _line(console, f"[bold]Free IPs[/]    {zones}")
    _line(
        console,
        f"            planned pods {capacity['plannedPods']:,} · pod IPs needed "
        f"{capacity['requiredIps']:,} of {capacity['usableIps']:,} usable",
    )
    system = capacity.get("systemNodes")
    if system:
        requests, allocatable = system["requests"], system["allocatable"]
        _line(
            console,
            f"[bold]System[/]      {system['nodes']} x {system['instanceType']} ({system['basis']} basis): "
            f"fits {_yes(system['fits'])} · with one node lost {_yes(system['fitsWithOneNodeLost'])}",
        )
        _line(
            console,
            f"            requests/allocatable {requests['cpu']:g}/{allocatable['cpu']:g} CPU · "
            f"{requests['memoryGiB']:g}/{allocatable['memoryGiB']:g} GiB",
        )


def _summary_cost_and_rehearsal(document: Mapping[str, Any], console: Console) -> None:
    cost = document.get("cost")
    if cost:
        budget = f" (budget {cost['budget']:,.2f})" if cost.get("budget") is not None else " (no budget set)"
        _line(
            console,
            f"[bold]Cost[/]        {cost['currency']} {cost['fixedMonthly']:,.2f} a month fixed{budget}; "
            "table under Monthly cost",
        )
    rehearsal = document.get("rehearsal")
    if rehearsal:
        create, destroy = rehearsal["create"], rehearsal["destroy"]
        _line(
            console,
            f"[bold]Rehearsal[/]   create ~{create['minutes']:g} min (critical path "
            f"{len(create['criticalPath'])} steps), destroy ~{destroy['minutes']:g} min",
        )


def _summary_helm(document: Mapping[str, Any], console: Console) -> None:
    rendered, missing = document.get("rendered", []), document.get("notRendered", [])
    if not rendered and not missing:
        return
    errors = sum(1 for n in missing if n["error"])
    _line(
        console,
        f"[bold]Helm[/]        {len(rendered)} of {len(rendered) + len(missing)} releases rendered, "
        f"{len(missing)} not rendered ({errors} render errors)",
    )
    groups: dict[tuple[bool, str], list[str]] = {}
    for n in missing:  # one group per reason, the release's own package file named generically
        groups.setdefault((not n["error"], PACKAGE.sub("<chart>.tgz", n["reason"])), []).append(n["release"])
    for (not_error, reason), releases in sorted(groups.items())[:LISTED]:
        mark = "[yellow]-[/]" if not_error else "[bold red]✗[/]"
        _wrapped(console, f"{mark} {escape(', '.join(releases))}", indent=2)
        _wrapped(console, escape(reason))
    validation = document.get("validation")
    if validation:
        _line(
            console,
            f"[bold]Validation[/]  {validation['checked']} objects checked: {len(validation['problems'])} "
            f"problems, {len(validation.get('unknownKinds', {}))} kinds without a schema",
        )


def _deploy_paths(rehearsal: Mapping[str, Any]) -> list[str]:
    """The rehearsal's deploy paths that both reach the API endpoint and act as cluster admin."""
    return [a["path"] for a in rehearsal.get("appliers", []) if a["reachesEndpoint"] and a["clusterAdmin"]]


def verdict(document: Mapping[str, Any]) -> str:
    """The plan in one line (the last one `make plan` prints): findings by level (and Helm render
    errors), whether a deploy path exists, the fixed monthly cost and the rehearsal's first
    `up`. Plain text, no markup."""
    findings = document.get("findings", [])
    mandatory = sum(1 for f in findings if f["level"] == "mandatory")
    errors = sum(1 for n in document.get("notRendered", []) if n["error"])
    head = f"{mandatory} mandatory, {len(findings) - mandatory} advisory"
    parts = [head + (f", {errors} Helm render error(s)" if errors else "")]
    rehearsal = document.get("rehearsal")
    if rehearsal and "appliers" in rehearsal:
        parts.append("deployable" if _deploy_paths(rehearsal) else "NO deploy path")
    cost = document.get("cost")
    if cost:
        parts.append(f"{cost['currency']} {cost['fixedMonthly']:,.0f}/mo")
    if rehearsal:
        parts.append(f"first up ~{rehearsal['create']['minutes']:g} min")
    return "Verdict: " + " · ".join(parts)


def render_verdict(document: Mapping[str, Any], console: Console) -> None:
    """The verdict line, red when a mandatory finding, a Helm render error or a missing deploy path
    blocks a deploy."""
    rehearsal = document.get("rehearsal") or {}
    blocked = (
        any(f["level"] == "mandatory" for f in document.get("findings", []))
        or any(n["error"] for n in document.get("notRendered", []))
        or ("appliers" in rehearsal and not _deploy_paths(rehearsal))
    )
    _line(console, escape(verdict(document)), style="bold red" if blocked else "bold green")


def _summary_offline(document: Mapping[str, Any], console: Console) -> None:
    """What offline mode degrades: releases not rendered for want of their chart package, and so
    judged on their values only (`values` basis)."""
    missing = [n["release"] for n in document.get("notRendered", []) if not n["error"]]
    if not missing:
        return
    total = len(document.get("rendered", [])) + len(document.get("notRendered", []))
    system = document.get("capacity", {}).get("systemNodes") or {}
    basis = f"{system['basis']} basis: " if system.get("basis") else ""
    _line(
        console,
        f"[bold yellow]Offline[/]     {basis}{len(missing)} of {total} releases not rendered, judged on "
        "values only",
    )
    _wrapped(
        console,
        "No rendered-object rules, object validation or chart NetworkPolicies for them: the findings "
        "may miss what those would report.",
    )


def render_summary(document: Mapping[str, Any], console: Console) -> None:
    """The one screen a reviewer reads first (about 40 lines at most)."""
    console.rule(f"[bold]{escape(document['project'])}[/] / stack [bold green]{escape(document['stack'])}[/]")
    resources = document["resources"]
    custom = sum(1 for r in resources if r["custom"])
    protected = sum(1 for r in resources if r["protect"])
    retained = sum(1 for r in resources if r["retainOnDelete"])
    _line(console, f"[bold]Region[/]      {escape(_region(document))}")
    _line(
        console,
        f"[bold]Resources[/]   {len(resources)} ({custom} custom) · {protected} protected · "
        f"{retained} retained on delete",
    )
    for label, n in component_counts(document):
        _line(console, f"  {n:>4}  {escape(label)}")
    _summary_findings(document, console)
    _summary_capacity(document, console)
    _summary_cost_and_rehearsal(document, console)
    _summary_helm(document, console)
    _summary_offline(document, console)
    found = document.get("placeholders", [])
    if found:
        keys = ", ".join(escape(p["key"].split(":", 1)[-1]) for p in found[:3])
        _line(
            console, f"[bold]Placeholders[/] [yellow]{len(found)}[/] to replace before a real deploy, first:"
        )
        _line(console, f"  {keys}{', …' if len(found) > 3 else ''}")
    warnings = document.get("warnings", [])
    if warnings:
        _line(
            console,
            f"[bold yellow]Warnings[/]    {len(warnings)} from the program (`pulumi up` shows them too):",
        )
    for warning in warnings:
        _wrapped(console, f"[yellow]![/] {escape(warning)}", indent=2)


def render_findings(findings: list[Mapping[str, Any]], console: Console) -> None:
    """Every finding: level, rule and resource on one line, the message wrapped under it."""
    mandatory = sum(1 for f in findings if f["level"] == "mandatory")
    for f in findings:
        style = "bold red" if f["level"] == "mandatory" else "yellow"
        _line(console, f"[{style}]{f['level']}[/] {escape(f['rule'])} · {escape(short_urn(f.get('urn')))}")
        _wrapped(console, escape(f["message"]))
    console.print(f"{len(findings)} finding(s): {mandatory} mandatory, {len(findings) - mandatory} advisory.")


def render_placeholders(placeholders: list[Mapping[str, str]], console: Console) -> None:
    console.print(
        f"[yellow]{len(placeholders)} documentation placeholder(s)[/] to replace before a real deploy "
        "(a production stack refuses those of its stack file; a service's example registry leaves "
        "its pods without an image):"
    )
    for p in placeholders:
        _line(console, f"  {escape(p['key'])}")
        _wrapped(console, f"= {escape(p['value'])}: {escape(p['reason'])}")


def render_outputs(outputs: Mapping[str, Any], console: Console) -> None:
    # A no_wrap column wider than the console is cropped by the console, not elided: the value
    # column gets the width left after the keys (and the table's padding), so `…` marks the cut.
    key_width = max(map(len, outputs), default=6)
    table = Table(show_header=True, box=None)
    table.add_column("output", no_wrap=True, min_width=key_width)
    table.add_column(
        "value", no_wrap=True, overflow="ellipsis", max_width=max(console.width - key_width - 4, 8)
    )
    for key, value in outputs.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
        table.add_row(escape(key), escape(text))
    console.print(table)


def render_capacity(capacity: Mapping[str, Any], console: Console) -> None:
    table = Table(title="IP capacity (private subnets, VPC-CNI prefix delegation)", box=None)
    for column in ("AZ", "private subnet", "free IPs"):
        table.add_column(column, no_wrap=True)
    for zone, free in capacity["freeIpsPerAz"].items():
        table.add_row(zone, capacity["privateSubnets"][zone], f"{free:,}")
    console.print(table)
    console.print(
        f"max nodes {capacity['maxNodes']:,} · max pods {capacity['maxPods']:,} · planned pods "
        f"{capacity['plannedPods']:,} · pod IPs needed {capacity['requiredIps']:,} of "
        f"{capacity['usableIps']:,} usable",
        highlight=False,
    )


def render_helm(
    report: RenderReport, validation: ValidationReport | None, console: Console, objects: bool = False
) -> None:
    """Each release's object count by kind (or its objects), what could not render and why."""
    if report.rendered:
        console.print(f"Rendered by Helm's engine (Kubernetes {report.kube_version}):", highlight=False)
    for r in report.rendered:
        q = r.request
        _line(
            console, f"  [green]{escape(q.namespace)}/{escape(q.release)}[/] ({escape(q.chart)} {q.version})"
        )
        _wrapped(console, ", ".join(f"{kind} {n}" for kind, n in r.kinds().items()) or "no objects")
    for n in report.not_rendered:
        style, label = ("bold red", "render error") if n.error else ("yellow", "not rendered")
        _line(
            console,
            f"[{style}]{label}[/] {escape(n.request.release)} "
            f"({escape(n.request.chart)} {n.request.version})",
        )
        _wrapped(console, escape(n.reason))
    if objects:
        for r in report.rendered:
            console.rule(f"{r.request.release}: {len(r.objects)} objects")
            console.print(escape(yaml.safe_dump_all(r.objects, sort_keys=True)), highlight=False)
    if validation is None:
        return
    for p in validation.problems:
        _line(console, f"[red]invalid[/] {escape(p.release)}: {escape(p.object)} {escape(p.path)}")
        _wrapped(console, f"{escape(p.message)} [dim]({p.source})[/]")
    for kind, releases in validation.unknown_kinds.items():
        _wrapped(console, f"[yellow]no schema[/] for {escape(kind)} (in {', '.join(releases)})", indent=0)
    console.print(
        f"{validation.checked} rendered object(s) validated against Kubernetes {validation.kube_version}"
        f" and CRD schemas: {len(validation.problems)} problem(s), "
        f"{len(validation.unknown_kinds)} kind(s) without a schema.",
        highlight=False,
    )


def render_cost(cost: CostReport, console: Console) -> None:
    """The cost table (analysis/cost.py): fixed items, usage prices, Karpenter ranges, budget."""
    money = cost.currency
    table = Table(title=f"At list price ({cost.region}, prices of {cost.prices_as_of})")
    for column in ("what", "qty", "unit", "unit price", "monthly"):
        table.add_column(column, overflow="ellipsis", justify="right" if column != "what" else "left")
    for item in cost.items:
        table.add_row(
            escape(item.what), f"{item.quantity:g}", item.unit, f"{item.unit_price:g}", f"{item.monthly:,.2f}"
        )
    console.print(table)
    for what, unit, price in cost.usage:
        _wrapped(console, f"usage: {escape(what)}: {money} {price:g} per {unit}", indent=2)
    for pool in cost.pools:
        span = (
            f"{money} {pool.min_per_node_hour:g}-{pool.max_per_node_hour:g} per node-hour"
            if pool.min_per_node_hour is not None
            else "not priced"
        )
        if pool.per_vcpu_hour:
            span += f", {money} {pool.per_vcpu_hour[0]:g}-{pool.per_vcpu_hour[1]:g} per vCPU-hour"
        _wrapped(console, f"Karpenter pool {pool.pool}: {span} ({escape(pool.note)})", indent=2)
    for line in cost.missing:
        _wrapped(console, f"[yellow]{escape(line)}[/]", indent=2)
    budget = f" (budget {cost.budget:,.2f})" if cost.budget is not None else ""
    console.print(f"Fixed monthly cost: {money} {cost.fixed_monthly:,.2f}{budget}", highlight=False)
    for finding in cost.findings():
        _wrapped(
            console,
            f"[yellow]{finding['level']}[/] {finding['rule']}: {escape(finding['message'])}",
            indent=2,
        )
