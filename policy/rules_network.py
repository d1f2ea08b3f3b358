"""Network: VPC layout (AZs, NAT, subnet roles), flow logs and security groups."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from policy.model import Context, Level, Resource, RuleSet, Source, bpg, checkov, cis
from policy.props import get, items, truthy
from policy.resource_types import (
    AWS_VPC,
    AWSX_VPC,
    DEFAULT_SECURITY_GROUP,
    FLOW_LOG,
    SECURITY_GROUP,
    SG_INGRESS_RULE,
    SG_RULE,
    SUBNET,
)

rules = RuleSet()
M, A = Level.MANDATORY, Level.ADVISORY
OPEN = {"0.0.0.0/0", "::/0"}
DISCOVERY_TAG = "karpenter.sh/discovery"


@rules.stack(
    "vpc-flow-logs-enabled",
    description="Every VPC has a flow log.",
    sources=checkov("CKV2_AWS_11"),
    prod=M,
    dev=M,
)
def flow_logs(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[str | None, str]]:
    vpcs = [r for r in resources if r.type in (AWSX_VPC, AWS_VPC)]
    logs = [r for r in resources if r.type == FLOW_LOG and (get(r.props, "vpcId") or get(r.props, "vpcIds"))]
    if len(logs) < len(vpcs):
        for vpc in vpcs:
            yield vpc.urn, f"{len(vpcs)} VPC(s) but {len(logs)} VPC flow log(s)"


@rules.stack(
    "vpc-default-sg-no-rules",
    description="Every VPC's default security group is adopted with no ingress and no egress rule.",
    sources=(Source("cis-aws", "5.4"), *checkov("CKV2_AWS_12")),
    prod=M,
    dev=M,
)
def default_sg(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[str | None, str]]:
    vpcs = [r for r in resources if r.type in (AWSX_VPC, AWS_VPC)]
    adopted = [r for r in resources if r.type == DEFAULT_SECURITY_GROUP]
    for sg in adopted:
        for direction in ("ingress", "egress"):
            if items(get(sg.props, direction)):
                yield sg.urn, f"the default security group keeps {direction} rules"
    if len(adopted) < len(vpcs):
        for vpc in vpcs:
            yield (
                vpc.urn,
                (
                    f"{len(vpcs)} VPC(s) but {len(adopted)} adopted default security group(s): the default "
                    "group keeps AWS's allow-all rules"
                ),
            )


@rules.resource(
    "vpc-flow-log-all-traffic",
    types=(FLOW_LOG,),
    description="Flow logs record accepted and rejected traffic (trafficType ALL).",
    sources=checkov("CKV2_AWS_11"),
    prod=M,
    dev=M,
)
def flow_log_all(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if get(props, "trafficType") != "ALL":
        yield f"trafficType is {get(props, 'trafficType')}, not ALL"


@rules.resource(
    "vpc-nat-per-az",
    types=(AWSX_VPC,),
    description="One NAT gateway per AZ, so an AZ outage does not cut the other AZs' egress.",
    sources=(Source("aws-docs", "VPC User Guide: NAT gateways (one per Availability Zone)"),),
    prod=M,
    dev=A,
)
def nat_per_az(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    strategy = get(props, "natGateways.strategy", "OnePerAz")  # awsx's default
    if strategy == "Single":
        yield "natGateways.strategy is Single: one AZ's outage cuts every private subnet's egress"


@rules.resource(
    "vpc-multi-az",
    types=(AWSX_VPC,),
    description="The VPC spans three AZs in prod (two elsewhere).",
    sources=bpg("Reliability > Data plane: spread nodes across Availability Zones"),
    prod=M,
    dev=A,
)
def multi_az(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    wanted = 3 if ctx.production else 2
    zones = items(get(props, "availabilityZoneNames"))
    count = len(zones) if zones else get(props, "numberOfAvailabilityZones", 3)  # awsx's default
    if count < wanted:
        yield f"the VPC spans {count} AZ(s), below {wanted}"


@rules.resource(
    "vpc-public-subnets-not-for-nodes",
    types=(AWSX_VPC, SUBNET),
    description=f"Only private subnets carry the {DISCOVERY_TAG} tag Karpenter uses to place nodes.",
    sources=(*cis("5.4.3"), *bpg("Security > Infrastructure security: deploy workers onto private subnets")),
    prod=M,
    dev=M,
)
def public_subnets(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if typ == SUBNET:
        if truthy(get(props, "mapPublicIpOnLaunch")) and DISCOVERY_TAG in (get(props, "tags") or {}):
            yield f"a public subnet carries {DISCOVERY_TAG}: Karpenter may launch nodes in it"
        return
    for spec in items(get(props, "subnetSpecs")):
        if get(spec, "type") == "Public" and DISCOVERY_TAG in (get(spec, "tags") or {}):
            yield f"public subnet spec {get(spec, 'name')} carries {DISCOVERY_TAG}"


def _ingress(typ: str, props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Ingress rules as (cidrs, ports, description) maps, from all three ways of writing them."""
    if typ == SECURITY_GROUP:
        return list(items(get(props, "ingress")))
    if typ == SG_RULE:
        return [props] if get(props, "type") == "ingress" else []
    return [
        {
            "cidrBlocks": items(get(props, "cidrIpv4")),
            "ipv6CidrBlocks": items(get(props, "cidrIpv6")),
            "fromPort": get(props, "fromPort"),
            "toPort": get(props, "toPort"),
            "description": get(props, "description"),
        }
    ]


@rules.resource(
    "sg-no-public-ingress",
    types=(SECURITY_GROUP, SG_RULE, SG_INGRESS_RULE),
    description="No security group the platform owns accepts traffic from 0.0.0.0/0 or ::/0.",
    sources=checkov("CKV_AWS_24", "CKV_AWS_25", "CKV_AWS_260", "CKV_AWS_277"),
    prod=M,
    dev=M,
)
def public_ingress(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for rule in _ingress(typ, props):
        cidrs = {*items(get(rule, "cidrBlocks")), *items(get(rule, "ipv6CidrBlocks"))}
        for cidr in sorted(cidrs & OPEN):
            yield f"ingress from {cidr} to ports {get(rule, 'fromPort')}-{get(rule, 'toPort')}"


@rules.resource(
    "sg-rule-descriptions",
    types=(SECURITY_GROUP, SG_RULE, SG_INGRESS_RULE),
    description="Every ingress rule says why it exists.",
    sources=checkov("CKV_AWS_23"),
    prod=A,
    dev=A,
)
def rule_descriptions(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for rule in _ingress(typ, props):
        if not get(rule, "description"):
            yield f"ingress rule for ports {get(rule, 'fromPort')}-{get(rule, 'toPort')} has no description"
