"""Nodes: managed node groups, their launch template, Karpenter's EC2NodeClass and NodePools, and
the hosts of plain Auto Scaling groups (the Deployments agents).

Missing settings are judged by each API's own default: a launch template without metadata options
gets IMDSv1 and (on AL2023 AMIs) a hop limit of 2, so it must be explicit; an EC2NodeClass defaults
to IMDSv2 with hop limit 1, so only an explicit weaker value is a violation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policy.model import Context, Level, RuleSet, Source, bpg, checkov, cis
from policy.props import get, is_map, items, truthy
from policy.resource_types import (
    AUTOSCALING_GROUP,
    AWS_NODE_GROUP,
    EKS_CLUSTER,
    EKS_MNG,
    HELM,
    LAUNCH_TEMPLATE,
    NODE_CLASS,
    NODE_POOL,
)

rules = RuleSet()
M, A = Level.MANDATORY, Level.ADVISORY
NODE_GROUPS = (EKS_MNG, AWS_NODE_GROUP)
IMDS = bpg("Security > Identity and access: restrict access to the instance profile (IMDS)")
KARPENTER = bpg("Karpenter")


def _metadata(typ: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    found = get(props, "metadataOptions" if typ == LAUNCH_TEMPLATE else "spec.metadataOptions")
    return found if is_map(found) else {}


@rules.resource(
    "node-imdsv2-required",
    types=(LAUNCH_TEMPLATE, NODE_CLASS),
    description="Nodes require IMDSv2 session tokens (httpTokens: required).",
    sources=(*checkov("CKV_AWS_79"), *IMDS),
    prod=M,
    dev=M,
)
def imdsv2(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    meta = _metadata(typ, props)
    if meta.get("httpEndpoint") == "disabled":
        return
    default = "required" if typ == NODE_CLASS else "optional"
    if (tokens := meta.get("httpTokens", default)) != "required":
        yield f"metadataOptions.httpTokens is {tokens}: pods can use IMDSv1 to steal the node role"


@rules.resource(
    "node-imds-hop-limit",
    types=(LAUNCH_TEMPLATE, NODE_CLASS),
    description="The IMDS response hop limit is 1, so pods cannot reach the node's credentials.",
    sources=(*checkov("CKV_AWS_341"), *IMDS),
    prod=M,
    dev=M,
)
def hop_limit(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    meta = _metadata(typ, props)
    if meta.get("httpEndpoint") == "disabled":
        return
    limit = meta.get("httpPutResponseHopLimit", 1 if typ == NODE_CLASS else None)
    if limit != 1:
        yield f"metadataOptions.httpPutResponseHopLimit is {limit if limit is not None else 'unset'}, not 1"


@rules.resource(
    "node-volumes-encrypted",
    types=(LAUNCH_TEMPLATE, NODE_CLASS),
    description="Node volumes are declared and encrypted (not left to the account default).",
    sources=bpg("Security > Data encryption and secrets management (encryption at rest)"),
    prod=M,
    dev=M,
)
def volumes_encrypted(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    mappings = items(
        get(props, "blockDeviceMappings" if typ == LAUNCH_TEMPLATE else "spec.blockDeviceMappings")
    )
    if not mappings:
        yield "no blockDeviceMappings: the root volume's encryption is left to the account default"
    for mapping in mappings:
        if not truthy(get(mapping, "ebs.encrypted")):
            yield f"volume {get(mapping, 'deviceName')} is not encrypted"


@rules.resource(
    "node-no-public-ip",
    types=(LAUNCH_TEMPLATE, NODE_CLASS, EKS_CLUSTER),
    description="Nodes get no public IP address (private nodes).",
    sources=(*cis("5.4.3"), *bpg("Security > Infrastructure security: deploy workers onto private subnets")),
    prod=M,
    dev=M,
)
def no_public_ip(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if typ == EKS_CLUSTER:
        if get(props, "nodeAssociatePublicIpAddress") is not False:
            yield "nodeAssociatePublicIpAddress is not false (the eks component defaults to public IPs)"
    elif typ == NODE_CLASS:
        if truthy(get(props, "spec.associatePublicIPAddress")):
            yield "spec.associatePublicIPAddress is true"
    else:
        for nic in items(get(props, "networkInterfaces")):
            if truthy(get(nic, "associatePublicIpAddress")):
                yield "a network interface sets associatePublicIpAddress"


@rules.resource(
    "node-no-ssh-access",
    types=(*NODE_GROUPS, LAUNCH_TEMPLATE),
    description="Nodes have no SSH key or remote access; use SSM Session Manager when needed.",
    sources=(
        *checkov("CKV_AWS_100"),
        *bpg("Security > Infrastructure security: minimize access to worker nodes"),
    ),
    prod=M,
    dev=M,
)
def no_ssh(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if typ == LAUNCH_TEMPLATE:
        if get(props, "keyName"):
            yield f"keyName {get(props, 'keyName')} installs an SSH key on every node"
    elif get(props, "remoteAccess"):
        yield "remoteAccess is set: the node group opens SSH"


@rules.resource(
    "nodegroup-launch-template",
    types=NODE_GROUPS,
    description="Managed node groups use the platform's launch template (IMDS, volumes, no SSH).",
    sources=IMDS,
    prod=M,
    dev=M,
)
def launch_template(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if not get(props, "launchTemplate"):
        yield "no launchTemplate: EKS's default template allows IMDSv1 with a hop limit of 2"


@rules.resource(
    "nodegroup-min-size",
    types=NODE_GROUPS,
    description="The system node group keeps one node per AZ in prod (3), two elsewhere.",
    sources=bpg("Reliability > Data plane: spread nodes across Availability Zones"),
    prod=M,
    dev=A,
)
def min_size(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    wanted = 3 if ctx.production else 2
    size = get(props, "scalingConfig.minSize")
    if not isinstance(size, int | float) or size < wanted:
        yield f"scalingConfig.minSize is {size}, below {wanted}"


@rules.resource(
    "nodegroup-ami-release-pinned",
    types=NODE_GROUPS,
    description="Prod managed node groups pin their EKS AMI release (releaseVersion), never the latest.",
    sources=(
        Source("aws-docs", "EKS API: UpdateNodegroupVersion releaseVersion (default: latest; no rollback)"),
        Source("karpenter", "Managing AMIs (pin AMIs in production, roll newer ones out staged)"),
    ),
    prod=M,
    dev=None,
)
def ami_release_pinned(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if not get(props, "releaseVersion"):
        yield "no releaseVersion: every replaced node boots whatever AMI release is newest"


@rules.resource(
    "karpenter-ami-pinned",
    types=(NODE_CLASS,),
    description="EC2NodeClasses select a pinned AMI (alias `family@vYYYYMMDD` or an id), never @latest.",
    sources=(Source("karpenter", "Managing AMIs (pin AMIs in production)"), *KARPENTER),
    prod=M,
    dev=A,
)
def ami_pinned(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    terms = items(get(props, "spec.amiSelectorTerms"))
    if not terms:
        yield "no amiSelectorTerms"
    for term in terms:
        alias = get(term, "alias")
        if alias is not None:
            if not re.fullmatch(r"[a-z0-9]+@v\d{8}", str(alias)):
                yield f"AMI alias {alias} is not pinned to a release (family@vYYYYMMDD)"
        elif not get(term, "id"):
            yield "an amiSelectorTerm selects by tags or name: every new matching AMI replaces nodes"


@rules.resource(
    "karpenter-selectors-scoped",
    types=(NODE_CLASS,),
    description="EC2NodeClass subnet and security-group selectors name ids or exact tag values.",
    sources=(*cis("5.4.3"), *KARPENTER),
    prod=M,
    dev=M,
)
def selectors_scoped(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for field in ("subnetSelectorTerms", "securityGroupSelectorTerms"):
        terms = items(get(props, f"spec.{field}"))
        if not terms:
            yield f"spec.{field} is empty"
        for term in terms:
            tags = get(term, "tags") or {}
            if not (get(term, "id") or get(term, "name") or tags):
                yield f"a {field} entry selects nothing specific"
            for key in tags:
                if tags[key] in ("*", ""):
                    yield f"{field} matches any value of tag {key}: public subnets or other groups may match"


@rules.resource(
    "karpenter-nodepool-limits",
    types=(NODE_POOL,),
    description="Every NodePool caps its CPU and memory, bounding cost and blast radius.",
    sources=KARPENTER,
    prod=M,
    dev=M,
)
def nodepool_limits(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for resource in ("cpu", "memory"):
        if get(props, f"spec.limits.{resource}") in (None, ""):
            yield f"spec.limits.{resource} is not set"


@rules.resource(
    "karpenter-nodepool-termination-grace",
    types=(NODE_POOL,),
    description="A NodePool whose nodes expire bounds how long a node may drain (terminationGracePeriod).",
    sources=(Source("karpenter", "NodePools: spec.template.spec.terminationGracePeriod"), *KARPENTER),
    prod=M,
    dev=A,
)
def nodepool_termination_grace(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    expire = get(props, "spec.template.spec.expireAfter", "720h")  # Karpenter v1's default
    if expire != "Never" and not get(props, "spec.template.spec.terminationGracePeriod"):
        yield (
            f"nodes expire after {expire} but no terminationGracePeriod is set: a PDB that never "
            "allows eviction keeps an expired node forever"
        )


@rules.resource(
    "karpenter-disruption-budgets",
    types=(NODE_POOL,),
    description="NodePools declare disruption budgets; the always-on budget disrupts at most 20% of nodes.",
    sources=(Source("karpenter", "Disruption: budgets"), *KARPENTER),
    prod=M,
    dev=A,
)
def disruption_budgets(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    budgets = items(get(props, "spec.disruption.budgets"))
    if not budgets:
        yield "spec.disruption.budgets is not set"
    for budget in budgets:
        nodes = str(get(budget, "nodes", ""))
        share = re.fullmatch(r"(\d+)%", nodes)
        if get(budget, "schedule") is None and share and int(share.group(1)) > 20:
            yield f"an always-on budget allows {nodes} of the nodes to be disrupted at once"


@rules.resource(
    "karpenter-node-expiry",
    types=(NODE_POOL,),
    description="Nodes expire (expireAfter), so they are replaced with patched AMIs regularly.",
    sources=bpg("Karpenter: use timers (TTL) to automatically delete nodes"),
    prod=A,
    dev=A,
)
def node_expiry(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if get(props, "spec.template.spec.expireAfter") in (None, "", "Never"):
        yield "spec.template.spec.expireAfter is not set: nodes live until disrupted"


@rules.resource(
    "karpenter-interruption-handling",
    types=HELM,
    description="Karpenter drains nodes ahead of Spot interruptions and maintenance (interruption queue).",
    sources=bpg("Karpenter: enable interruption handling when using Spot"),
    prod=M,
    dev=M,
)
def interruption_handling(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if str(get(props, "chart", "")).rstrip("/").rsplit("/", 1)[-1] != "karpenter":
        return
    if not get(props, "values.settings.interruptionQueue"):
        yield "values.settings.interruptionQueue is empty: interruption handling is off"


def _replacement_gaps(where: str, settings: Any) -> Iterator[str]:
    if not is_map(settings):
        settings = {}
    low, high = settings.get("minHealthyPercentage"), settings.get("maxHealthyPercentage")
    # CrossGuard hands numbers over as floats (protobuf Struct).
    if low != 100 or not isinstance(high, int | float) or high <= 100:
        yield (
            f"{where} minHealthyPercentage={low}, maxHealthyPercentage={high}: a replacement may "
            "terminate a host before its successor runs (set 100 and above 100: launch before terminate)"
        )


@rules.resource(
    "asg-replaces-launch-first",
    types=(AUTOSCALING_GROUP,),
    description=(
        "An Auto Scaling group replaces hosts launch-first (instance refresh and maintenance policy "
        "keep 100 % healthy), so a refresh never takes down the host running the change."
    ),
    sources=(
        Source("aws-docs", "EC2 Auto Scaling User Guide: Instance maintenance policies"),
        Source(
            "aws-docs",
            "EC2 Auto Scaling User Guide: instance refresh (minimum and maximum healthy percentage)",
        ),
    ),
    prod=M,
    dev=A,
)
def replaces_launch_first(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if get(props, "instanceRefresh") is not None:
        yield from _replacement_gaps("instanceRefresh.preferences", get(props, "instanceRefresh.preferences"))
    yield from _replacement_gaps("instanceMaintenancePolicy", get(props, "instanceMaintenancePolicy"))
