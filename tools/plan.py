"""Offline plan: show what a stack would create, without the Pulumi CLI or an AWS account.

    python -m tools.plan --stack prod [--json plan.json] [--tree] [--objects]

Runs the real `__main__.py` under the mock engine (tools/mocks.py) with the config of
`Pulumi.<stack>.yaml`, runs every analysis of the recorded plan into one document, and prints it
summary first (tools/plan_view.py: one screen of counts, findings, capacity, cost, rehearsal, Helm,
placeholders and the program's warnings), then the findings, placeholders, cost table, rehearsal,
Helm releases, capacity and stack outputs, each under a heading; `--tree` adds the resource tree
with each resource's key settings; `--summary` prints the summary only. The last line is the
verdict (plan_view.verdict): findings by level, deploy path, monthly cost, first `up`. Findings do
not change the exit code (the tests decide what must pass), except with `--gate`: it prints only the
mandatory findings and the verdict, and exits 1 when there is one (the pre-run gate of every Pulumi
Deployments run, components/deployments.py gate_command). `--json` writes the plan document
(contract: tests/fixtures/plan.schema.json). A config error prints every problem and exits 2
without writing JSON.

Every Helm release is rendered with Helm's engine from the chart cache (`make charts`) and its
objects validated (analysis/render.py, analysis/validate.py): the text shows each release's object
count by kind (`--objects` prints the objects), the document gets `rendered`, `notRendered` and
`validation`. A release Helm refuses to render makes the plan exit 1 (the JSON is still written).
"""

from __future__ import annotations

import gc

if __name__ == "__main__":  # the command itself: no cyclic GC from its first import (tools/process.py)
    gc.disable()

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from analysis import addon_config, fit
from analysis.cost import CostReport, estimate
from analysis.netpol import section as netpol_section
from analysis.rehearsal import section as rehearsal_section
from analysis.render import RenderReport, memo_dir, render_plan
from analysis.validate import ValidationReport, validate_rendered
from model.findings import Finding, sort_findings
from model.records import PlanResult, Registration
from stacks import placeholders
from stacks.config import OFFLINE_KEY
from stacks.delivery import REPO_ROOT, values_placeholders
from stacks.identity import IDENTITY_PROJECT
from tools.destroy_path import run_bootstrap
from tools.mocks import (
    ROOT,
    StackFileError,
    run_program,
    run_stack,
    stack_config,
    stack_names,
)
from tools.plan_view import (
    render_capacity,
    render_cost,
    render_findings,
    render_helm,
    render_outputs,
    render_placeholders,
    render_summary,
    render_verdict,
)
from tools.policy_check import evaluate, evaluate_rendered
from tools.process import exit_now, gc_paused
from tools.rehearsal_view import render_rehearsal

if TYPE_CHECKING:
    from stacks.config import ConfigError, PlatformConfig

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


# The identity project (identity/, stacks/identity.py): the deploy identity of each platform stack.
IDENTITY_ENTRY = ROOT / "identity" / "__main__.py"


def run_identity(stack: str) -> PlanResult:
    """Run the identity project's program for `stack` under the same mock engine as the platform.

    Its own stack file (identity/Pulumi.<stack>.yaml) sets nothing: the program reads and validates
    the platform's Pulumi.<stack>.yaml itself.
    """
    config = {f"{IDENTITY_PROJECT}:{OFFLINE_KEY}": "true"}
    # The program's AWS provider is in the platform's region (cfg.region), which getRegion returns
    # for it in a real run; the mocks answer getRegion from the engine's config, so set it there.
    platform, _ = stack_config(stack)
    if "aws:region" in platform:
        config["aws:region"] = platform["aws:region"]
    return run_program(stack, config, project=IDENTITY_PROJECT, entry=IDENTITY_ENTRY)


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


def render_tree(result: PlanResult, console: Console) -> None:
    tree = Tree(f"[bold]{result.project}[/] / stack [bold green]{result.stack}[/]")
    nodes: dict[str | None, Tree] = {}
    for r in result.records:
        parent = nodes.get(r.parent, tree)
        nodes[r.urn] = parent.add(_label(r))
    console.print(tree)


def _unwritable(path: Path) -> str | None:
    """Why the plan JSON cannot be written to `path`, or None."""
    if path.is_dir():
        return "it is a folder"
    if not path.parent.is_dir():
        return f"the folder {path.parent} does not exist"
    if not os.access(path.parent, os.W_OK):
        return f"the folder {path.parent} is not writable"
    return None


@dataclass(frozen=True)
class Analysis:
    """The plan document with every analysis section, and what the text view prints from it."""

    document: dict[str, Any]
    findings: list[Finding]
    cost: CostReport
    helm: RenderReport
    validation: ValidationReport | None


def analyse(result: PlanResult, cfg: PlatformConfig, identity: PlanResult | None = None) -> Analysis:
    """Every analysis of the recorded plan, each adding its own section to one document.

    `identity`: the stack's identity plan (run here when not given): the Deployments settings that
    say who applies this stack live there.
    """
    document = result.document()
    findings = evaluate(result, production=cfg.production)
    identity = identity or run_identity(cfg.stack)
    # The deploy rehearsal (analysis/rehearsal.py): its own section, its findings among the others;
    # a private endpoint's destroy path runs the bootstrap program (analysis/destroy_path.py).
    bootstrap = None if cfg.cluster.endpoint_public_access else run_bootstrap(cfg.stack).records
    document["rehearsal"], rehearsal_findings = rehearsal_section(
        result.records, result.lookups, identity.records, bootstrap
    )
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
    # A bootstrap program (deployments.bootstrap: the first `up`, and step 2 of a private stack's
    # destroy, which removes every Kubernetes object) declares no Kubernetes object: no pod, no
    # policy, so no flow to judge. Judging the table's pods there failed the destroy's own
    # deployment on its pre-run gate (review 19, round 3).
    if cfg.deployments.bootstrap:
        document["networkPolicies"] = {
            "policies": 0,
            "flows": [],
            "notJudged": "deployments.bootstrap: the program declares no Kubernetes object",
        }
    else:
        netpol = netpol_section(document, cfg.stack, helm.kube_version)
        document["networkPolicies"] = netpol.document()
        document["findings"] += netpol.findings(cfg.production)
    # Each add-on's configuration values against its version's recorded schema (analysis/addon_config.py).
    document["findings"] += addon_config.findings(document["resources"])
    cost = estimate(document, budget=cfg.monthly_budget)
    document["cost"] = cost.document()
    document["findings"] += cost.findings()
    return Analysis(document, findings, cost, helm, validation)


def render_text(
    plan: Analysis, result: PlanResult, console: Console, *, tree: bool, objects: bool, summary: bool = False
) -> None:
    """The summary screen, then each section under a heading (not with `summary`); the resource
    tree with `tree`. The verdict line comes last, after the JSON is written (`main`)."""
    document = plan.document
    render_summary(document, console)
    if summary:
        return
    console.rule("Findings")
    render_findings(document["findings"], console)
    if document["placeholders"]:
        console.rule("Placeholders")
        render_placeholders(document["placeholders"], console)
    console.rule("Monthly cost")
    render_cost(plan.cost, console)
    console.rule("Deploy rehearsal")
    render_rehearsal(document["rehearsal"], console)
    console.rule("Helm releases")
    render_helm(plan.helm, plan.validation, console, objects=objects)
    console.rule("Capacity")
    render_capacity(document["capacity"], console)
    console.rule("Stack outputs")
    render_outputs(document["outputs"], console)
    if tree:
        console.rule("Resource tree")
        render_tree(result, console)


def main(argv: list[str] | None = None) -> int:
    """`make plan`: the plan of one stack, printed and optionally written (see the module docstring).

    The cyclic garbage collector is off while it runs (tools/process.py gc_paused): its passes over
    the SDKs' heap took about a quarter of a prod plan. It is restored after.
    """
    with gc_paused():
        return _plan(argv)


def _plan(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="make plan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack name (reads Pulumi.<stack>.yaml)")
    parser.add_argument(
        "--project",
        choices=("platform", "identity"),
        default="platform",
        help="the platform stack, or its deploy identity (identity/, applied by admins)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the plan document")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("--objects", action="store_true", help="print every rendered Helm object")
    parser.add_argument("--tree", action="store_true", help="also print the resource tree with key settings")
    parser.add_argument("--summary", action="store_true", help="print the summary and the verdict only")
    parser.add_argument(
        "--gate",
        action="store_true",
        help="print the mandatory findings and the verdict only; exit 1 when there is one",
    )
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
        if args.project == "identity":
            return _plan_identity(args.stack, args.json, None if args.quiet else console)
        result = run_stack(args.stack)
        # With its secret keys, as the program validates it (tools/stackcli.py validated).
        raw, secret_keys = stack_config(args.stack, result.project)
        cfg = validate(raw, result.project, args.stack, f"Pulumi.{args.stack}.yaml", frozenset(secret_keys))
    except StackFileError as err:
        errors.print(f"[bold red]{escape(str(err))}[/]", highlight=False, soft_wrap=True)
        errors.print("Nothing was planned; fix the file and run again.")
        return 2
    except ConfigError as err:
        print_config_error(err, errors)
        return 2

    plan = analyse(result, cfg)
    document = plan.document
    services = [s.name for s in cfg.delivery.services]
    document["placeholders"] = [
        {"key": key, "value": value, "reason": reason}
        for key, value, reason in [
            *placeholders.find(raw),
            *values_placeholders(REPO_ROOT, args.stack, services),
        ]
    ]
    if not (args.quiet or args.gate):
        render_text(plan, result, console, tree=args.tree, objects=args.objects, summary=args.summary)
    for n in plan.helm.errors:
        errors.print(
            f"[bold red]Helm cannot render release {escape(n.request.release)}[/] (chart "
            f"{escape(n.request.chart)} {n.request.version}): {escape(n.reason)}",
            soft_wrap=True,
        )
    if args.json:
        args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
        if not args.quiet:
            console.print(f"Wrote {args.json}")
    return _finish(document, console, gate=args.gate, quiet=args.quiet, failed=bool(plan.helm.errors))


def _finish(document: dict[str, Any], console: Console, *, gate: bool, quiet: bool, failed: bool) -> int:
    """The verdict line and the exit code; with `gate`, the mandatory findings first, and exit 1
    when there is one (the Deployments pre-run gate)."""
    blocking = [f for f in document["findings"] if f["level"] == "mandatory"] if gate else []
    if blocking:
        render_findings(blocking, console)
    if gate or not quiet:
        render_verdict(document, console)
    return 1 if failed or blocking else 0


def identity_document(result: PlanResult, production: bool) -> dict[str, Any]:
    """The identity project's plan document: its resources, the pack's findings, the rehearsal with
    who applies each resource (admins, from a workstation) and its findings."""
    from analysis.appliers import admin_applied
    from analysis.rehearsal import rehearse

    document = result.document()
    rehearsal = rehearse(result.records, result.lookups)
    rows, applier_findings = admin_applied(rehearsal.graph)
    document["rehearsal"] = rehearsal.document() | {"appliers": [], "appliedBy": rows}
    findings = sort_findings([*evaluate(result, production=production), *applier_findings])
    document["findings"] = [f.document() for f in findings]
    document["placeholders"] = []
    return document


def _plan_identity(stack: str, json_path: Path | None, console: Console | None) -> int:
    """`make plan PROJECT=identity`: the identity project of `stack` (a config error propagates)."""
    from stacks.identity import platform_config

    production = platform_config(stack, offline=True).production
    document = identity_document(run_identity(stack), production)
    if console is not None:
        console.rule(f"[bold]{escape(document['project'])}[/] / stack [bold green]{escape(stack)}[/]")
        console.rule("Findings")
        render_findings(document["findings"], console)
        console.rule("Who applies each resource")
        groups: dict[tuple[str, str], list[str]] = {}
        for row in document["rehearsal"]["appliedBy"]:
            typ, name = row["urn"].split("::")[-2:]
            groups.setdefault((row["appliedBy"], row["from"]), []).append(f"{typ.split('$')[-1]} {name}")
        for (by, where), names in groups.items():
            console.print(f"[bold]{escape(by)}[/]\nfrom {escape(where)}:", highlight=False)
            for name in names:
                console.print(f"  {escape(name)}", highlight=False)
        console.rule("Stack outputs")
        render_outputs(document["outputs"], console)
    if json_path:
        json_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return 0


def print_config_error(err: ConfigError, errors: Console) -> None:
    """What `make plan` prints for an invalid stack file (docs quote it; tests/unit/test_doc_errors.py)."""
    errors.print(f"[bold red]Invalid configuration[/] in {err.source}:", highlight=False)
    for issue in err.issues:
        errors.print(
            f"  [red]✗[/] [bold]{escape(issue.key)}[/] = "
            f"{escape(issue.shown_value)}: {escape(issue.message)}",
            highlight=False,
            soft_wrap=True,
        )
    errors.print(f"{len(err.issues)} problem(s); nothing was planned.")


if __name__ == "__main__":
    exit_now(main())
