"""Offline plan: show what a stack would create, without the Pulumi CLI or an AWS account.

    python -m tools.plan --stack prod [--json plan.json]

Runs the real `__main__.py` under the mock engine (tools/mocks.py) with the config of
`Pulumi.<stack>.yaml` and prints the resource tree with each resource's key settings, then the
stack outputs. The policy pack (policy/) is evaluated on the planned resources and its findings are
printed after the tree; they do not change the exit code (the tests decide what must pass).
`--json` writes the plan document (DESIGN.md, shared plan.schema.json), `findings` included. A
config error prints every problem and exits 2 without writing JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from analysis import fit
from tools.mocks import ROOT, PlanResult, Registration, run_stack, stack_config
from tools.policy_check import Finding, evaluate, evaluate_rendered, sort_findings

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make plan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack name (reads Pulumi.<stack>.yaml)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the plan document")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    args = parser.parse_args(argv)
    console = Console(stderr=False)
    errors = Console(stderr=True)

    if not (ROOT / f"Pulumi.{args.stack}.yaml").exists():
        stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
        errors.print(f"[red]No stack file Pulumi.{args.stack}.yaml[/]; stacks: {', '.join(stacks)}")
        return 2

    from stacks.config import ConfigError, validate  # the same modules the program imports

    try:
        result = run_stack(args.stack)
        raw, _ = stack_config(args.stack, result.project)
        cfg = validate(raw, result.project, args.stack, f"Pulumi.{args.stack}.yaml")
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

    document = result.document()
    findings = evaluate(result, production=cfg.production)
    document["capacity"] = cfg.capacity_report().document()
    # Scheduling fit of the system nodes (analysis/fit.py), from the rendered pods when present.
    system_nodes = fit.system_nodes(result.records, document.get("rendered"))
    document["capacity"]["systemNodes"] = system_nodes
    findings = [*findings, *fit.findings(system_nodes, cfg.production)]
    if document.get("rendered"):
        findings += evaluate_rendered(document["rendered"], cfg.production)
    findings = sort_findings(findings)
    document["findings"] = [f.document() for f in findings]
    # Name each private subnet's AZ, in the order the VPC received them.
    zones = next(r.get("availabilityZoneNames") for r in result.records if r.type == "awsx:ec2:Vpc")
    free = document["capacity"].pop("freeIpsPerAz")
    document["capacity"]["privateSubnets"] = dict(zip(zones, free, strict=True))
    document["capacity"]["freeIpsPerAz"] = dict(zip(zones, free.values(), strict=True))
    if not args.quiet:
        render(result, document["capacity"], console, findings)
    if args.json:
        args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
        if not args.quiet:
            console.print(f"Wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
