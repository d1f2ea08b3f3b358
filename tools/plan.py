"""Offline plan: show what a stack would create, without the Pulumi CLI or an AWS account.

    python -m tools.plan --stack prod [--json plan.json]

Runs the real `__main__.py` under the mock engine (tools/mocks.py) with the config of
`Pulumi.<stack>.yaml` and prints the resource tree with each resource's key settings, then the
stack outputs. The policy pack (policy/) is evaluated on the planned resources and its findings are
printed after the tree; they do not change the exit code (the tests decide what must pass).
`--json` writes the plan document (contract: tests/fixtures/plan.schema.json), `findings` included. A
config error prints every problem and exits 2 without writing JSON.

Every Helm release is rendered with Helm's engine from the chart cache (`make charts`) and its
objects validated (analysis/render.py, analysis/validate.py): the text plan shows each release's
object count by kind (`--objects` prints the objects), the document gets `rendered`, `notRendered`
and `validation`. A release Helm refuses to render makes the plan exit 1 (the JSON is still written).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from analysis import fit
from analysis.cost import CostReport, estimate
from analysis.netpol import section as netpol_section
from analysis.rehearsal import section as rehearsal_section
from analysis.render import RenderReport, memo_dir, render_plan
from analysis.validate import ValidationReport, validate_rendered
from stacks import placeholders
from tools.mocks import ROOT, PlanResult, Registration, StackFileError, run_stack, stack_config, stack_names
from tools.policy_check import Finding, evaluate, evaluate_rendered, sort_findings
from tools.rehearsal_view import render_rehearsal

if TYPE_CHECKING:
    from stacks.config import PlatformConfig

# What a reviewer wants to see first for each type: engine input paths.
KEY_SETTINGS: dict[str, tuple[str, ...]] = {
    "pulumi:providers:aws": ("region", "defaultTags"),
    "aws:kms/key:Key": ("enableKeyRotation", "rotationPeriodInDays", "deletionWindowInDays"),
    "aws:kms/alias:Alias": ("name",),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "retentionInDays", "kmsKeyId"),
    "awsx:ec2:Vpc": (
        "cidrBlock",
        "availabilityZoneNames",
        "natGateways.strategy",
        "subnetSpecs.0.cidrBlocks",
        "subnetSpecs.1.cidrBlocks",
    ),
    "aws:ec2/flowLog:FlowLog": ("trafficType", "logDestinationType", "maxAggregationInterval"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("serviceName", "vpcEndpointType", "privateDnsEnabled"),
    "aws:ec2/securityGroup:SecurityGroup": ("description", "ingress"),
    "aws:iam/role:Role": ("name",),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("policyArn",),
    "eks:index:Cluster": (
        "name",
        "version",
        "upgradePolicy.supportType",
        "endpointPrivateAccess",
        "endpointPublicAccess",
        "publicAccessCidrs",
        "authenticationMode",
        "enabledClusterLogTypes",
        "deletionProtection",
        "createOidcProvider",
    ),
    "eks:index:ManagedNodeGroup": (
        "amiType",
        "capacityType",
        "instanceTypes",
        "scalingConfig",
        "labels",
        "taints",
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": (
        "metadataOptions.httpTokens",
        "metadataOptions.httpPutResponseHopLimit",
        "blockDeviceMappings",
    ),
    "aws:eks/addon:Addon": ("addonName", "addonVersion", "configurationValues"),
    "kubernetes:yaml/v2:ConfigGroup": ("objs",),
    "aws:secretsmanager/secret:Secret": ("name", "kmsKeyId", "recoveryWindowInDays"),
    "aws:secretsmanager/secretVersion:SecretVersion": ("secretString",),
    "kubernetes:external-secrets.io/v1:ExternalSecret": ("metadata", "spec.dataFrom", "spec.target.name"),
    "kubernetes:external-secrets.io/v1:ClusterSecretStore": ("spec.provider",),
    "kubernetes:argoproj.io/v1alpha1:AppProject": (
        "spec.sourceRepos",
        "spec.destinations",
        "spec.clusterResourceWhitelist",
    ),
    "kubernetes:argoproj.io/v1alpha1:Application": ("spec.source", "spec.syncPolicy.automated"),
    "aws:ecr/repository:Repository": (
        "name",
        "imageTagMutability",
        "imageScanningConfiguration",
        "encryptionConfigurations",
    ),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ("url", "clientIdLists"),
    "aws:sqs/queue:Queue": ("name", "messageRetentionSeconds", "sqsManagedSseEnabled", "kmsMasterKeyId"),
    "aws:cloudwatch/eventRule:EventRule": ("eventPattern",),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": ("namespace", "serviceAccount"),
    "aws:eks/accessEntry:AccessEntry": ("type",),
    "kubernetes:helm.sh/v3:Release": ("name", "namespace", "chart", "version", "values"),
    "kubernetes:karpenter.sh/v1:NodePool": (
        "spec.limits",
        "spec.disruption.budgets",
        "spec.template.spec.requirements",
    ),
    "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass": ("spec.amiSelectorTerms", "spec.metadataOptions"),
    "kubernetes:autoscaling.k8s.io/v1:VerticalPodAutoscaler": ("spec.targetRef", "spec.updatePolicy"),
}


def _short(value: Any, limit: int = 110) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(r: Registration) -> str:
    flags = " [bold red]protect[/]" if r.protect else ""
    flags += " [yellow]retain[/]" if r.retain_on_delete else ""
    kind = "[cyan]" if r.custom else "[magenta]"
    head = f"{kind}{r.type}[/] [bold]{r.name}[/]{flags}"
    settings = []
    for path in KEY_SETTINGS.get(r.type, ()):
        value = r.get(path)
        if value not in (None, "", [], {}):
            settings.append(f"[dim]{path}[/]={escape(_short(_masked(r, path, value)))}")
    return head + ("\n" + "\n".join(settings) if settings else "")


def _masked(r: Registration, path: str, value: Any) -> Any:
    """Show "[secret]" where the engine holds a secret, never the value."""
    node: Any = r.inputs
    for part in path.split("."):
        if node == "[secret]":
            return node
        node = (
            node.get(part)
            if isinstance(node, dict)
            else (node[int(part)] if isinstance(node, list) and part.isdigit() else None)
        )
    return "[secret]" if node == "[secret]" else value


def render_findings(findings: list[Finding], console: Console) -> None:
    mandatory = sum(1 for f in findings if f.level == "mandatory")
    if findings:
        table = Table(title="Policy findings (policy/)")
        for column in ("level", "rule", "resource", "message"):
            table.add_column(column, overflow="fold")
        for f in findings:
            style = "bold red" if f.level == "mandatory" else "yellow"
            resource = f.urn.rsplit("::", 1)[-1] if f.urn else "(stack)"
            table.add_row(f"[{style}]{f.level}[/]", f.rule, escape(resource), escape(f.message))
        console.print(table)
    console.print(
        f"{len(findings)} policy finding(s): {mandatory} mandatory, {len(findings) - mandatory} advisory."
    )


def render_helm(
    report: RenderReport, validation: ValidationReport | None, console: Console, objects: bool = False
) -> None:
    """Each release's object count by kind (or its objects), what could not render and why."""
    if report.rendered:
        console.print(f"[bold]Helm releases rendered by Helm's engine[/] (Kubernetes {report.kube_version})")
    for r in report.rendered:
        q = r.request
        kinds = ", ".join(f"{kind} {n}" for kind, n in r.kinds().items())
        console.print(
            f"  [green]{escape(q.namespace)}/{escape(q.release)}[/] ({escape(q.chart)} {q.version}): "
            f"{kinds or 'no objects'}",
            soft_wrap=True,
        )
    for n in report.not_rendered:
        style = "bold red" if n.error else "yellow"
        label = "render error" if n.error else "not rendered"
        console.print(
            f"[{style}]{label}[/] {escape(n.request.release)} ({escape(n.request.chart)} "
            f"{n.request.version}): {escape(n.reason)}",
            soft_wrap=True,
        )
    if objects:
        for r in report.rendered:
            console.rule(f"{r.request.release}: {len(r.objects)} objects")
            console.print(escape(yaml.safe_dump_all(r.objects, sort_keys=True)), highlight=False)
    if validation is not None:
        for p in validation.problems:
            console.print(
                f"[red]invalid[/] {escape(p.release)}: {escape(p.object)} {escape(p.path)}: "
                f"{escape(p.message)} [dim]({p.source})[/]",
                soft_wrap=True,
            )
        for kind, releases in validation.unknown_kinds.items():
            console.print(f"[yellow]no schema[/] for {escape(kind)} (in {', '.join(releases)})")
        console.print(
            f"{validation.checked} rendered object(s) validated against Kubernetes {validation.kube_version}"
            f" and CRD schemas: {len(validation.problems)} problem(s), "
            f"{len(validation.unknown_kinds)} kind(s) without a schema."
        )


def render(
    result: PlanResult, capacity: dict[str, Any], console: Console, findings: list[Finding] | None = None
) -> None:
    tree = Tree(f"[bold]{result.project}[/] / stack [bold green]{result.stack}[/]")
    nodes: dict[str | None, Tree] = {}
    for r in result.records:
        parent = nodes.get(r.parent, tree)
        nodes[r.urn] = parent.add(_label(r))
    console.print(tree)
    if findings is not None:
        render_findings(findings, console)

    table = Table(title="Stack outputs", show_lines=False)
    table.add_column("output")
    table.add_column("value")
    for key, value in result.document()["outputs"].items():
        table.add_row(key, escape(_short(value, 90)))
    console.print(table)

    cap = Table(title="IP capacity (private subnets, VPC-CNI prefix delegation)")
    for column in ("AZ", "private subnet", "free IPs"):
        cap.add_column(column)
    for zone, free in capacity["freeIpsPerAz"].items():
        cap.add_row(zone, capacity["privateSubnets"][zone], f"{free:,}")
    console.print(cap)
    console.print(
        f"max nodes {capacity['maxNodes']:,} · max pods {capacity['maxPods']:,} · planned pods "
        f"{capacity['plannedPods']:,} · pod IPs needed {capacity['requiredIps']:,} of "
        f"{capacity['usableIps']:,} usable"
    )
    system = capacity.get("systemNodes")
    if system:
        console.print(
            f"system nodes ({system['basis']} basis): {system['nodes']} x {system['instanceType']}, requests "
            f"{system['requests']['cpu']} of {system['allocatable']['cpu']} CPU, "
            f"{system['requests']['memoryGiB']} of {system['allocatable']['memoryGiB']} GiB · "
            f"fits {system['fits']} · with one node lost {system['fitsWithOneNodeLost']}"
        )
    custom = sum(1 for r in result.records if r.custom)
    protected = sum(1 for r in result.records if r.protect)
    console.print(
        f"{len(result.records)} resources ({custom} custom, "
        f"{len(result.records) - custom} components), {protected} protected."
    )


def _unwritable(path: Path) -> str | None:
    """Why the plan JSON cannot be written to `path`, or None."""
    if path.is_dir():
        return "it is a folder"
    if not path.parent.is_dir():
        return f"the folder {path.parent} does not exist"
    if not os.access(path.parent, os.W_OK):
        return f"the folder {path.parent} is not writable"
    return None


def render_cost(cost: CostReport, console: Console) -> None:
    """The cost table (analysis/cost.py): fixed items, usage prices, Karpenter ranges, budget."""
    money = cost.currency
    table = Table(title=f"Monthly cost at list price ({cost.region}, prices of {cost.prices_as_of})")
    for column in ("what", "qty", "unit", "unit price", "monthly"):
        table.add_column(column, overflow="fold", justify="right" if column != "what" else "left")
    for item in cost.items:
        table.add_row(
            escape(item.what), f"{item.quantity:g}", item.unit, f"{item.unit_price:g}", f"{item.monthly:,.2f}"
        )
    console.print(table)
    for what, unit, price in cost.usage:
        console.print(f"  usage: {escape(what)}: {money} {price:g} per {unit}", highlight=False)
    for pool in cost.pools:
        span = (
            f"{money} {pool.min_per_node_hour:g}-{pool.max_per_node_hour:g} per node-hour"
            if pool.min_per_node_hour is not None
            else "not priced"
        )
        if pool.per_vcpu_hour:
            span += f", {money} {pool.per_vcpu_hour[0]:g}-{pool.per_vcpu_hour[1]:g} per vCPU-hour"
        console.print(f"  Karpenter pool {pool.pool}: {span} ({escape(pool.note)})", highlight=False)
    for line in cost.missing:
        console.print(f"  [yellow]{escape(line)}[/]")
    budget = f" (budget {cost.budget:,.2f})" if cost.budget is not None else ""
    console.print(f"Fixed monthly cost: {money} {cost.fixed_monthly:,.2f}{budget}", highlight=False)
    for finding in cost.findings():
        console.print(f"  [yellow]{finding['level']}[/] {finding['rule']}: {escape(finding['message'])}")


@dataclass(frozen=True)
class Analysis:
    """The plan document with every analysis section, and what the text view prints from it."""

    document: dict[str, Any]
    findings: list[Finding]
    cost: CostReport
    helm: RenderReport
    validation: ValidationReport | None


def analyse(result: PlanResult, cfg: PlatformConfig) -> Analysis:
    """Every analysis of the recorded plan, each adding its own section to one document."""
    document = result.document()
    findings = evaluate(result, production=cfg.production)
    # The deploy rehearsal (analysis/rehearsal.py): its own section, its findings among the others.
    document["rehearsal"], rehearsal_findings = rehearsal_section(result.records)
    findings += rehearsal_findings
    # Every Helm release rendered by Helm's engine (analysis/render.py), its objects validated.
    helm = render_plan(document["resources"])
    document.update(helm.document())
    validation = (
        validate_rendered(document["rendered"], helm.kube_version, memo=memo_dir()) if helm.rendered else None
    )
    if validation is not None:
        document["validation"] = validation.document()
    if document.get("rendered"):
        findings += evaluate_rendered(document["rendered"], cfg.production)
    document["capacity"] = cfg.capacity_report().document()
    # Scheduling fit of the system nodes (analysis/fit.py), from the rendered pods when present.
    system_nodes = fit.system_nodes(result.records, document.get("rendered"))
    document["capacity"]["systemNodes"] = system_nodes
    findings = sort_findings([*findings, *fit.findings(system_nodes, cfg.production)])
    document["findings"] = [f.document() for f in findings]
    # Name each private subnet's AZ, in the order the VPC received them.
    zones = next(r.get("availabilityZoneNames") for r in result.records if r.type == "awsx:ec2:Vpc")
    free = document["capacity"].pop("freeIpsPerAz")
    document["capacity"]["privateSubnets"] = dict(zip(zones, free, strict=True))
    document["capacity"]["freeIpsPerAz"] = dict(zip(zones, free.values(), strict=True))
    # The flows the NetworkPolicies must allow and deny (analysis/netpol.py), the services' included.
    netpol = netpol_section(document, cfg.stack, helm.kube_version)
    document["networkPolicies"] = netpol.document()
    document["findings"] += netpol.findings(cfg.production)
    cost = estimate(document, budget=cfg.monthly_budget)
    document["cost"] = cost.document()
    document["findings"] += cost.findings()
    return Analysis(document, findings, cost, helm, validation)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make plan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack name (reads Pulumi.<stack>.yaml)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the plan document")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("--objects", action="store_true", help="print every rendered Helm object")
    args = parser.parse_args(argv)
    console = Console(stderr=False)
    errors = Console(stderr=True)

    if not (ROOT / f"Pulumi.{args.stack}.yaml").exists():
        errors.print(f"[red]No stack file Pulumi.{args.stack}.yaml[/]; stacks: {', '.join(stack_names())}")
        return 2
    if args.json:
        # Checked before planning, so a bad path costs no plan; a stale plan never outlives a failure.
        problem = _unwritable(args.json)
        if problem:
            errors.print(
                f"[red]Cannot write {escape(str(args.json))}[/]: {problem}", highlight=False, soft_wrap=True
            )
            return 2
        args.json.unlink(missing_ok=True)

    from stacks.config import ConfigError, validate  # the same modules the program imports

    try:
        result = run_stack(args.stack)
        raw, _ = stack_config(args.stack, result.project)
        cfg = validate(raw, result.project, args.stack, f"Pulumi.{args.stack}.yaml")
    except StackFileError as err:
        errors.print(f"[bold red]{escape(str(err))}[/]", highlight=False, soft_wrap=True)
        errors.print("Nothing was planned; fix the file and run again.")
        return 2
    except ConfigError as err:
        errors.print(f"[bold red]Invalid configuration[/] in {err.source}:", highlight=False)
        for issue in err.issues:
            errors.print(
                f"  [red]✗[/] [bold]{escape(issue.key)}[/] = "
                f"{escape(issue.shown_value)}: {escape(issue.message)}",
                highlight=False,
                soft_wrap=True,
            )
        errors.print(f"{len(err.issues)} problem(s); nothing was planned.")
        return 2

    plan = analyse(result, cfg)
    document, findings, cost, helm, validation = (
        plan.document,
        plan.findings,
        plan.cost,
        plan.helm,
        plan.validation,
    )
    if not args.quiet:
        render(result, document["capacity"], console, findings)
        render_rehearsal(document["rehearsal"], console)
        render_helm(helm, validation, console, objects=args.objects)
        found = placeholders.find(raw)
        if found:
            console.print(
                f"[yellow]{len(found)} documentation placeholder(s)[/] to replace before a real deploy "
                "(a production stack refuses them):"
            )
        for key, value, reason in found:
            console.print(f"  {escape(key)} = {escape(value)}: {reason}", highlight=False, soft_wrap=True)

        render_cost(cost, console)
    for n in helm.errors:
        errors.print(
            f"[bold red]Helm cannot render release {escape(n.request.release)}[/] (chart "
            f"{escape(n.request.chart)} {n.request.version}): {escape(n.reason)}",
            soft_wrap=True,
        )
    if args.json:
        args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
        if not args.quiet:
            console.print(f"Wrote {args.json}")
    return 1 if helm.errors else 0


if __name__ == "__main__":
    sys.exit(main())
