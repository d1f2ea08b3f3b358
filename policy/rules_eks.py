"""EKS control plane: endpoint, logs, encryption, authentication, lifecycle, add-ons.

Both shapes of a cluster are read: the `eks:index:Cluster` component (flat inputs) and a bare
`aws:eks/cluster:Cluster` (`vpcConfig`, `accessConfig`, `encryptionConfig`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policy.model import Context, Level, RuleSet, Source, bpg, checkov, cis
from policy.props import document, falsy, get, items, truthy
from policy.resource_types import AWS_EKS_CLUSTER, EKS_ADDON, EKS_CLUSTER

ZONE = "topology.kubernetes.io/zone"

rules = RuleSet()
M, A = Level.MANDATORY, Level.ADVISORY
CLUSTERS = (EKS_CLUSTER, AWS_EKS_CLUSTER)
AUDIT_LOGS = ("api", "audit", "authenticator")
ALL_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")
OPEN_CIDRS = {"0.0.0.0/0", "::/0"}


def _setting(typ: str, props: Mapping[str, Any], flat: str, nested: str) -> Any:
    return get(props, flat if typ == EKS_CLUSTER else nested)


def _public(typ: str, props: Mapping[str, Any]) -> bool:
    # Both the component and the bare resource default to a public endpoint.
    return not falsy(_setting(typ, props, "endpointPublicAccess", "vpcConfig.endpointPublicAccess"))


@rules.resource(
    "eks-endpoint-private-access",
    types=CLUSTERS,
    description="The EKS API endpoint is reachable privately from the VPC (nodes never leave it).",
    sources=(*cis("5.4.2"), *bpg("Security > Cluster access management")),
    prod=M,
    dev=M,
)
def endpoint_private(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if not truthy(_setting(typ, props, "endpointPrivateAccess", "vpcConfig.endpointPrivateAccess")):
        yield "endpointPrivateAccess is not true: nodes reach the API server over the internet"


@rules.resource(
    "eks-public-endpoint-restricted",
    types=CLUSTERS,
    description="A public EKS endpoint lists the CIDRs allowed to reach it, and none is 0.0.0.0/0.",
    sources=(*checkov("CKV_AWS_38"), *cis("5.4.1")),
    prod=M,
    dev=M,
)
def public_endpoint_restricted(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if not _public(typ, props):
        return
    cidrs = items(_setting(typ, props, "publicAccessCidrs", "vpcConfig.publicAccessCidrs"))
    if not cidrs:
        yield "the public endpoint is on with no publicAccessCidrs, which AWS treats as 0.0.0.0/0"
    for cidr in cidrs:
        if cidr in OPEN_CIDRS:
            yield f"publicAccessCidrs contains {cidr}: the API server is open to the internet"


@rules.resource(
    "eks-public-endpoint-disabled",
    types=CLUSTERS,
    description="The EKS API endpoint is private only (public access is an exception to justify).",
    sources=(*checkov("CKV_AWS_39"), *cis("5.4.2")),
    prod=A,
    dev=A,
)
def public_endpoint_disabled(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if _public(typ, props):
        cidrs = items(_setting(typ, props, "publicAccessCidrs", "vpcConfig.publicAccessCidrs"))
        yield f"the public endpoint is enabled (allowed CIDRs: {', '.join(map(str, cidrs)) or 'all'})"


def _missing_logs(props: Mapping[str, Any], wanted: tuple[str, ...]) -> list[str]:
    enabled = set(items(get(props, "enabledClusterLogTypes")))
    return [log for log in wanted if log not in enabled]


@rules.resource(
    "eks-audit-logging",
    types=CLUSTERS,
    description="The control plane ships api, audit and authenticator logs to CloudWatch.",
    sources=(*cis("2.1.1"), *bpg("Security > Detective controls")),
    prod=M,
    dev=M,
)
def audit_logging(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if missing := _missing_logs(props, AUDIT_LOGS):
        yield f"enabledClusterLogTypes lacks {', '.join(missing)}"


@rules.resource(
    "eks-control-plane-logs-all",
    types=CLUSTERS,
    description="Every control-plane log type is enabled (scheduler and controllerManager too).",
    sources=checkov("CKV_AWS_37"),
    prod=M,
    dev=A,
)
def all_logs(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if missing := _missing_logs(props, ALL_LOGS):
        yield f"enabledClusterLogTypes lacks {', '.join(missing)}"


@rules.resource(
    "eks-secrets-encryption",
    types=CLUSTERS,
    description="Kubernetes Secrets are envelope-encrypted with a customer-managed KMS key.",
    sources=(
        *checkov("CKV_AWS_58"),
        *cis("5.3.1"),
        *bpg("Security > Data encryption and secrets management"),
    ),
    prod=M,
    dev=M,
)
def secrets_encryption(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if typ == EKS_CLUSTER:
        if not get(props, "encryptionConfigKeyArn"):
            yield "encryptionConfigKeyArn is not set: Secrets are stored without envelope encryption"
        return
    config = get(props, "encryptionConfig")
    if not get(config, "provider.keyArn") or "secrets" not in items(get(config, "resources")):
        yield "encryptionConfig does not encrypt `secrets` with a KMS key"


@rules.resource(
    "eks-authentication-mode-api",
    types=CLUSTERS,
    description="Cluster access is granted through EKS access entries only (authenticationMode API).",
    sources=bpg("Security > Cluster access management (access entries)"),
    prod=M,
    dev=A,
)
def authentication_mode(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    mode = _setting(typ, props, "authenticationMode", "accessConfig.authenticationMode")
    if mode != "API":
        yield f"authenticationMode is {mode or 'unset (CONFIG_MAP)'}: the aws-auth ConfigMap grants access"


@rules.resource(
    "eks-deletion-protection",
    types=CLUSTERS,
    description="A production cluster cannot be deleted until deletion protection is turned off.",
    sources=(
        Source("aws-docs", "EKS User Guide: deletion protection"),
        Source("platform", "DESIGN.md Environments"),
    ),
    prod=M,
    dev=None,
)
def deletion_protection(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if not truthy(get(props, "deletionProtection")):
        yield "deletionProtection is not true on a production cluster"


@rules.resource(
    "eks-upgrade-policy-standard",
    types=CLUSTERS,
    description="The cluster stays on standard support; extended support (the EKS default) costs extra.",
    sources=bpg("Cluster upgrades"),
    prod=M,
    dev=A,
)
def upgrade_policy(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    support = get(props, "upgradePolicy.supportType")
    if support != "STANDARD":
        yield f"upgradePolicy.supportType is {support or 'unset (EXTENDED)'}, not STANDARD"


@rules.resource(
    "eks-version-pinned",
    types=CLUSTERS,
    description="The Kubernetes version is pinned (`1.35`), so upgrades are deliberate.",
    sources=bpg("Cluster upgrades"),
    prod=M,
    dev=M,
)
def version_pinned(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    version = get(props, "version")
    if not isinstance(version, str) or not re.fullmatch(r"1\.\d+", version):
        yield f"version is {version!r}: pin a Kubernetes minor version such as '1.35'"


@rules.resource(
    "eks-default-node-group-disabled",
    types=(EKS_CLUSTER,),
    description="The eks component builds no default node group; nodes come from hardened groups only.",
    sources=(Source("platform", "STYLE.md 5 (nodes: IMDSv2, private subnets)"),),
    prod=M,
    dev=M,
)
def default_node_group(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if not truthy(get(props, "skipDefaultNodeGroup")):
        yield "skipDefaultNodeGroup is not true: a default node group bypasses the node hardening"


@rules.resource(
    "eks-addon-version-pinned",
    types=(EKS_ADDON,),
    description="Every EKS managed add-on has a pinned version (no silent upgrade on re-create).",
    sources=bpg("Cluster upgrades"),
    prod=M,
    dev=M,
)
def addon_version(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if not get(props, "addonVersion"):
        yield f"add-on {get(props, 'addonName')} has no addonVersion"


@rules.resource(
    "eks-vpc-cni-network-policy",
    types=(EKS_ADDON,),
    description="The VPC CNI enforces Kubernetes NetworkPolicies (enableNetworkPolicy).",
    sources=cis("5.4.4", "4.3.1"),
    prod=M,
    dev=A,
)
def vpc_cni_network_policy(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if get(props, "addonName") != "vpc-cni":
        return
    config = document(get(props, "configurationValues")) or {}
    if not truthy(get(config, "enableNetworkPolicy")):
        yield "vpc-cni configurationValues do not set enableNetworkPolicy: NetworkPolicies are ignored"


@rules.resource(
    "eks-coredns-scales-and-survives",
    types=(EKS_ADDON,),
    description="CoreDNS autoscales with the cluster; in prod it also has a PDB and a zone spread.",
    sources=(
        Source("aws-docs", "EKS User Guide: Scale CoreDNS Pods for high DNS traffic"),
        *bpg("Reliability > CoreDNS: scale and spread"),
    ),
    prod=M,
    dev=A,
)
def coredns_scaling(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if get(props, "addonName") != "coredns":
        return
    config = document(get(props, "configurationValues")) or {}
    if not truthy(get(config, "autoScaling.enabled")):
        yield "coredns has a fixed replica count: autoScaling.enabled is not true"
    if ctx.production:
        if not truthy(get(config, "podDisruptionBudget.enabled")):
            yield "coredns has no PodDisruptionBudget"
        zones = [c for c in items(get(config, "topologySpreadConstraints")) if get(c, "topologyKey") == ZONE]
        if not zones:
            yield "coredns has no topology spread over zones"
