"""What AWS still holds for an integration stack, how to delete it, and what blocked a destroy.

Every AWS resource an `it-*` stack creates, directly or through a controller, belongs to one *kind*
below, found by the stack's name or tags and deletable by the same code:
- by the provider's default tags `platform:stack=<stack>` (stacks/config.py `all_tags`, on every
  resource of the aws provider, remote components' children included) or by the name prefix
  `<project>-<stack>` every physical name starts with;
- by the tags controllers write: EBS volumes of PersistentVolumeClaims
  (`kubernetes.io/cluster/<cluster>=owned`, aws-ebs-csi-driver `docs/tagging.md`, since the add-on
  sets `k8sTagClusterId`), Karpenter's instances and launch templates (`kubernetes.io/cluster/<cluster>`
  and `karpenter.k8s.aws/cluster`, karpenter-provider-aws `controller-policy.json` 1.14, in the
  shared reference set), the VPC CNI's ENIs (`cluster.k8s.amazonaws.com/name`, the request tag
  its IAM policy requires), load balancers of Services (`kubernetes.io/cluster/<cluster>`).

`TYPE_KINDS` maps every resource type the plan registers (and the children of the remote
components) to its kinds, or to `PART` for what goes with its parent (a route with its table, an
add-on with its cluster); tests/unit/test_integration_helpers.py fails when a plan registers a type
this table does not know, so the search cannot drift from what the stack creates.

An AWS error is an `unchecked` finding (nothing proven), never "clean". Uses boto3 only, so moto
serves it in the unit tests. Deletion lives in tools/leak_delete.py.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

LIVE_INSTANCE_STATES = ("pending", "running", "stopping", "stopped")
STACK_TAG = "platform:stack"
KARPENTER_POOL_TAG = "karpenter.sh/nodepool"
EKS_CLUSTER_TAG = "aws:eks:cluster-name"  # EKS tags its cluster security group with it
PART = "part of its parent"  # TYPE_KINDS value: deleted with the resource that holds it


@dataclass(frozen=True, order=True)
class Leak:
    kind: str
    id: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.id}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Scope:
    """One stack's names: the prefix every physical name starts with, and the cluster's name."""

    project: str
    stack: str

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stack}"  # stacks.config: `<project>-<stack>`

    @property
    def cluster(self) -> str:
        return self.prefix  # the EKS cluster is named after the prefix

    def owns_name(self, name: str) -> bool:
        """`name` is the prefix, or starts with it and a separator (`it-1` never owns `it-10-x`)."""
        return re.search(rf"(^|/){re.escape(self.prefix)}([-/_]|$)", name) is not None


def tags_of(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags") or item.get("TagSet") or []}


def pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    found: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        found += page.get(key, [])
    return found


class Clients:
    """One boto3 client per service, made on first use. `Clients.of(session)` keeps them for as long
    as the session lives, so a search, its deletions and the search after them share them: building
    a client costs about 10 to 25 ms (its class and event hooks), and each search asks for a dozen."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._made: dict[str, Any] = {}

    @classmethod
    def of(cls, session: Any) -> Clients:
        if session not in _KEPT:
            _KEPT[session] = cls(session)
        return _KEPT[session]

    def __call__(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = self.session.client(service)
        return self._made[service]


_KEPT: weakref.WeakKeyDictionary[Any, Clients] = weakref.WeakKeyDictionary()


def _missing(err: ClientError) -> bool:
    code = err.response.get("Error", {}).get("Code", "")
    return "NotFound" in code or code in {"NoSuchEntity", "ResourceNotFoundException"}


####################################################################################################
# EC2: by the stack's tag, or a controller's cluster tag


def _ec2(
    aws: Clients,
    operation: str,
    key: str,
    id_key: str,
    tag_filters: Iterable[dict[str, Any]],
    *,
    extra: list[Any] | None = None,
) -> list[dict[str, Any]]:
    """Items of one describe call matching any of `tag_filters`, once each."""
    found: dict[str, dict[str, Any]] = {}
    for tag_filter in tag_filters:
        for item in pages(aws("ec2"), operation, key, Filters=[tag_filter, *(extra or [])]):
            found[item[id_key]] = item
    return list(found.values())


def _by_stack(scope: Scope) -> list[dict[str, Any]]:
    return [{"Name": f"tag:{STACK_TAG}", "Values": [scope.stack]}]


def _by_stack_or_cluster(scope: Scope, cluster_tag: str = "kubernetes.io/cluster/{}") -> list[dict[str, Any]]:
    return [
        *_by_stack(scope),
        {"Name": f"tag:{cluster_tag.format(scope.cluster)}", "Values": ["owned", "shared"]},
    ]


def _instances(aws: Clients, scope: Scope) -> list[Leak]:
    live = [{"Name": "instance-state-name", "Values": list(LIVE_INSTANCE_STATES)}]
    leaks = []
    for reservation in _ec2(
        aws, "describe_instances", "Reservations", "ReservationId", _by_stack_or_cluster(scope), extra=live
    ):
        for instance in reservation["Instances"]:
            pool = tags_of(instance).get(KARPENTER_POOL_TAG)
            detail = instance["State"]["Name"] + (f", Karpenter NodePool {pool}" if pool else "")
            leaks.append(Leak("instance", instance["InstanceId"], detail))
    return leaks


def _volumes(aws: Clients, scope: Scope) -> list[Leak]:
    leaks = []
    for volume in _ec2(aws, "describe_volumes", "Volumes", "VolumeId", _by_stack_or_cluster(scope)):
        claim = tags_of(volume).get("kubernetes.io/created-for/pvc/name", "")
        detail = f"{volume['Size']} GiB, {volume['State']}" + (f", PVC {claim}" if claim else "")
        leaks.append(Leak("volume", volume["VolumeId"], detail))
    return leaks


def _network_interfaces(aws: Clients, scope: Scope) -> list[Leak]:
    filters = [*_by_stack(scope), {"Name": "tag:cluster.k8s.amazonaws.com/name", "Values": [scope.cluster]}]
    return [
        Leak(
            "network interface",
            eni["NetworkInterfaceId"],
            f"{eni['Status']}: {eni.get('Description') or '-'}",
        )
        for eni in _ec2(
            aws, "describe_network_interfaces", "NetworkInterfaces", "NetworkInterfaceId", filters
        )
    ]


def eks_cluster_group(group: dict[str, Any], scope: Scope) -> bool:
    """EKS's own cluster security group: EKS creates it with the cluster, names it
    `eks-cluster-sg-<cluster>-<uniqueID>`, tags it `aws:eks:cluster-name=<cluster>` (and
    `kubernetes.io/cluster/<cluster>=owned`), and deletes it with the cluster (EKS User Guide, "View
    Amazon EKS security group requirements for clusters", Default cluster security group)."""
    return tags_of(group).get(EKS_CLUSTER_TAG) == scope.cluster or group["GroupName"].startswith(
        f"eks-cluster-sg-{scope.cluster}-"
    )


def _security_groups(aws: Clients, scope: Scope) -> list[Leak]:
    """The stack's groups. EKS's cluster group belongs to a live cluster while there is one (the
    control-plane ENIs and the managed nodes use it; its delete fails with DependencyViolation and
    stops every later cleanup): it is a leak only once its cluster is gone."""
    groups = _ec2(aws, "describe_security_groups", "SecurityGroups", "GroupId", _by_stack_or_cluster(scope))
    leaks, cluster_live = [], None
    for g in groups:
        if g["GroupName"] == "default":
            continue
        detail = g["GroupName"]
        if eks_cluster_group(g, scope):
            if cluster_live is None:
                cluster_live = _cluster(aws, scope) is not None
            if cluster_live:
                continue  # EKS deletes it with the cluster
            detail += ", EKS's cluster security group, its cluster gone"
        leaks.append(Leak("security group", g["GroupId"], detail))
    return leaks


def _launch_templates(aws: Clients, scope: Scope) -> list[Leak]:
    filters = [*_by_stack(scope), {"Name": "tag:karpenter.k8s.aws/cluster", "Values": [scope.cluster]}]
    templates = _ec2(aws, "describe_launch_templates", "LaunchTemplates", "LaunchTemplateId", filters)
    return [Leak("launch template", t["LaunchTemplateId"], t["LaunchTemplateName"]) for t in templates]


def _nat_gateways(aws: Clients, scope: Scope) -> list[Leak]:
    live = [{"Name": "state", "Values": ["pending", "available"]}]
    gateways = _ec2(aws, "describe_nat_gateways", "NatGateways", "NatGatewayId", _by_stack(scope), extra=live)
    return [Leak("NAT gateway", g["NatGatewayId"], f"{g['State']}, {g.get('VpcId', '-')}") for g in gateways]


def _addresses(aws: Clients, scope: Scope) -> list[Leak]:
    found = aws("ec2").describe_addresses(Filters=_by_stack(scope))["Addresses"]
    return [Leak("EIP", a["AllocationId"], a.get("PublicIp", "")) for a in found]


def _internet_gateways(aws: Clients, scope: Scope) -> list[Leak]:
    gateways = _ec2(
        aws, "describe_internet_gateways", "InternetGateways", "InternetGatewayId", _by_stack(scope)
    )
    return [
        Leak(
            "internet gateway",
            g["InternetGatewayId"],
            ", ".join(a["VpcId"] for a in g.get("Attachments", [])),
        )
        for g in gateways
    ]


def _vpc_endpoints(aws: Clients, scope: Scope) -> list[Leak]:
    live = [{"Name": "vpc-endpoint-state", "Values": ["pendingAcceptance", "pending", "available", "failed"]}]
    by_stack = _by_stack(scope)
    endpoints = _ec2(aws, "describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointId", by_stack, extra=live)
    return [Leak("VPC endpoint", e["VpcEndpointId"], e["ServiceName"]) for e in endpoints]


def _route_tables(aws: Clients, scope: Scope) -> list[Leak]:
    """The stack's route tables, not a VPC's main one (it goes with its VPC)."""
    tables = _ec2(aws, "describe_route_tables", "RouteTables", "RouteTableId", _by_stack(scope))
    return [
        Leak("route table", t["RouteTableId"], t.get("VpcId", "-"))
        for t in tables
        if not any(a.get("Main") for a in t.get("Associations", []))
    ]


def _subnets(aws: Clients, scope: Scope) -> list[Leak]:
    subnets = _ec2(aws, "describe_subnets", "Subnets", "SubnetId", _by_stack(scope))
    return [Leak("subnet", n["SubnetId"], f"{n.get('VpcId', '-')}, {n['CidrBlock']}") for n in subnets]


def _vpcs(aws: Clients, scope: Scope) -> list[Leak]:
    vpcs = _ec2(aws, "describe_vpcs", "Vpcs", "VpcId", _by_stack(scope))
    return [Leak("VPC", v["VpcId"], v["CidrBlock"]) for v in vpcs]


####################################################################################################
# EKS, load balancers, Auto Scaling


def _cluster(aws: Clients, scope: Scope) -> dict[str, Any] | None:
    try:
        return dict(aws("eks").describe_cluster(name=scope.cluster)["cluster"])
    except ClientError as err:
        if _missing(err):
            return None
        raise


def _clusters(aws: Clients, scope: Scope) -> list[Leak]:
    cluster = _cluster(aws, scope)
    return [Leak("EKS cluster", scope.cluster, cluster["status"])] if cluster else []


def _node_groups(aws: Clients, scope: Scope) -> list[Leak]:
    if _cluster(aws, scope) is None:
        return []
    names = pages(aws("eks"), "list_nodegroups", "nodegroups", clusterName=scope.cluster)
    return [Leak("EKS node group", f"{scope.cluster}:{n}") for n in names]  # the provider's id


def _load_balancers(aws: Clients, scope: Scope) -> list[Leak]:
    wanted = {STACK_TAG: scope.stack, f"kubernetes.io/cluster/{scope.cluster}": "owned"}
    elbv2, elb = aws("elbv2"), aws("elb")
    leaks = []
    arns = [lb["LoadBalancerArn"] for lb in pages(elbv2, "describe_load_balancers", "LoadBalancers")]
    for start in range(0, len(arns), 20):
        for desc in elbv2.describe_tags(ResourceArns=arns[start : start + 20])["TagDescriptions"]:
            if wanted.items() & tags_of(desc).items():
                leaks.append(Leak("load balancer", desc["ResourceArn"]))
    names = [
        lb["LoadBalancerName"] for lb in pages(elb, "describe_load_balancers", "LoadBalancerDescriptions")
    ]
    for start in range(0, len(names), 20):
        for desc in elb.describe_tags(LoadBalancerNames=names[start : start + 20])["TagDescriptions"]:
            if wanted.items() & tags_of(desc).items():
                leaks.append(Leak("classic load balancer", desc["LoadBalancerName"]))
    return leaks


def _auto_scaling_groups(aws: Clients, scope: Scope) -> list[Leak]:
    groups = pages(aws("autoscaling"), "describe_auto_scaling_groups", "AutoScalingGroups")
    wanted = {STACK_TAG: scope.stack, "eks:cluster-name": scope.cluster}
    return [
        Leak("Auto Scaling group", g["AutoScalingGroupName"])
        for g in groups
        if wanted.items() & {(t["Key"], t["Value"]) for t in g.get("Tags", [])}
    ]


####################################################################################################
# Everything else: by name prefix or tag


def _log_groups(aws: Clients, scope: Scope) -> list[Leak]:
    groups = pages(aws("logs"), "describe_log_groups", "logGroups")
    return [Leak("log group", g["logGroupName"]) for g in groups if scope.owns_name(g["logGroupName"])]


def _repositories(aws: Clients, scope: Scope) -> list[Leak]:
    ecr, leaks = aws("ecr"), []
    for repo in pages(ecr, "describe_repositories", "repositories"):
        name = repo["repositoryName"]
        if name.startswith(f"{scope.prefix}/"):
            images = pages(ecr, "list_images", "imageIds", repositoryName=name)
            leaks.append(Leak("ECR repository", name, f"{len(images)} image(s)"))
    return leaks


def _queues(aws: Clients, scope: Scope) -> list[Leak]:
    urls = aws("sqs").list_queues(QueueNamePrefix=scope.prefix).get("QueueUrls", [])
    return [Leak("SQS queue", url) for url in urls if scope.owns_name(url.rsplit("/", 1)[-1])]


def _rules(aws: Clients, scope: Scope) -> list[Leak]:
    rules = aws("events").list_rules(NamePrefix=scope.prefix).get("Rules", [])
    return [Leak("EventBridge rule", r["Name"]) for r in rules if scope.owns_name(r["Name"])]


def _secrets(aws: Clients, scope: Scope) -> list[Leak]:
    found = pages(aws("secretsmanager"), "list_secrets", "SecretList")
    return [
        Leak("secret", s["ARN"], s["Name"])
        for s in found
        if scope.owns_name(s["Name"]) or tags_of(s).get(STACK_TAG) == scope.stack
    ]


def _keys(aws: Clients, scope: Scope) -> list[Leak]:
    kms, leaks = aws("kms"), []
    for key in pages(kms, "list_keys", "Keys"):
        meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
        if meta.get("KeyManager") != "CUSTOMER" or meta["KeyState"] in (
            "PendingDeletion",
            "PendingReplicaDeletion",
        ):
            continue  # a key scheduled for deletion is going, not leaked
        tags = {
            t["TagKey"]: t["TagValue"] for t in pages(kms, "list_resource_tags", "Tags", KeyId=key["KeyId"])
        }
        if tags.get(STACK_TAG) == scope.stack:
            leaks.append(Leak("KMS key", key["KeyId"], meta["KeyState"]))
    return leaks


def _roles(aws: Clients, scope: Scope) -> list[Leak]:
    roles = pages(aws("iam"), "list_roles", "Roles")
    return [Leak("IAM role", r["RoleName"]) for r in roles if scope.owns_name(r["RoleName"])]


def _policies(aws: Clients, scope: Scope) -> list[Leak]:
    # The stack's own managed policies, e.g. the roles' permissions boundary `<prefix>-boundary`.
    policies = pages(aws("iam"), "list_policies", "Policies", Scope="Local")
    return [
        Leak("IAM policy", p["Arn"], p["PolicyName"]) for p in policies if scope.owns_name(p["PolicyName"])
    ]


def _instance_profiles(aws: Clients, scope: Scope) -> list[Leak]:
    # Karpenter names the profiles it creates for an EC2NodeClass `<cluster>_<hash>`.
    profiles = pages(aws("iam"), "list_instance_profiles", "InstanceProfiles")
    return [
        Leak("instance profile", p["InstanceProfileName"])
        for p in profiles
        if scope.owns_name(p["InstanceProfileName"])
    ]


def _oidc_providers(aws: Clients, scope: Scope) -> list[Leak]:
    iam, leaks = aws("iam"), []
    for provider in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]:
        arn = provider["Arn"]
        tags = iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=arn).get("Tags", [])
        if {t["Key"]: t["Value"] for t in tags}.get(STACK_TAG) == scope.stack:
            leaks.append(Leak("OIDC provider", arn))
    return leaks


Search = Callable[[Clients, Scope], list[Leak]]

# Kind -> its search, in the order tools/leak_delete.py deletes them (users before what they use).
KINDS: dict[str, Search] = {
    "instance": _instances,
    "Auto Scaling group": _auto_scaling_groups,
    "EKS node group": _node_groups,
    "load balancer": _load_balancers,
    "NAT gateway": _nat_gateways,
    "EKS cluster": _clusters,
    "launch template": _launch_templates,
    "VPC endpoint": _vpc_endpoints,
    "network interface": _network_interfaces,
    "volume": _volumes,
    "EIP": _addresses,
    "security group": _security_groups,
    "internet gateway": _internet_gateways,
    # A subnet or route table the state does not know (a killed run's pending create) keeps its
    # VPC from being deleted (DependencyViolation): each is a kind of its own, deleted before it.
    "route table": _route_tables,
    "subnet": _subnets,
    "VPC": _vpcs,
    "log group": _log_groups,
    "ECR repository": _repositories,
    "SQS queue": _queues,
    "EventBridge rule": _rules,
    "secret": _secrets,
    "KMS key": _keys,
    "instance profile": _instance_profiles,
    "IAM role": _roles,
    "IAM policy": _policies,  # after the roles it bounds or is attached to
    "OIDC provider": _oidc_providers,
}
# Found by the load-balancer search, deleted by its own API.
ALIASES = {"classic load balancer": "load balancer"}

# Every type an integration stack registers, and the children of its remote components (they are
# real resources in the state, and can be pending creates): the kinds it leaves when it leaks.
TYPE_KINDS: dict[str, tuple[str, ...] | str] = {
    "awsx:ec2:Vpc": ("VPC", "NAT gateway", "EIP", "internet gateway", "route table", "subnet"),
    "aws:ec2/vpc:Vpc": ("VPC",),
    "aws:ec2/natGateway:NatGateway": ("NAT gateway",),
    "aws:ec2/eip:Eip": ("EIP",),
    "aws:ec2/internetGateway:InternetGateway": ("internet gateway",),
    "aws:ec2/subnet:Subnet": ("subnet",),
    "aws:ec2/routeTable:RouteTable": ("route table",),
    "aws:ec2/route:Route": PART,
    "aws:ec2/routeTableAssociation:RouteTableAssociation": PART,
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": PART,
    "aws:ec2/flowLog:FlowLog": PART,  # deleted with the VPC it logs
    "aws:ec2/tag:Tag": PART,
    "aws:ec2/securityGroup:SecurityGroup": ("security group",),
    "aws:ec2/securityGroupRule:SecurityGroupRule": PART,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": PART,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": PART,
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("VPC endpoint",),
    "aws:ec2/launchTemplate:LaunchTemplate": ("launch template",),
    "aws:autoscaling/group:Group": ("Auto Scaling group", "instance"),
    "aws:autoscaling/lifecycleHook:LifecycleHook": PART,
    "eks:index:Cluster": ("EKS cluster", "security group", "IAM role", "OIDC provider"),
    "aws:eks/cluster:Cluster": ("EKS cluster",),
    "eks:index:ManagedNodeGroup": ("EKS node group", "Auto Scaling group", "instance"),
    "aws:eks/nodeGroup:NodeGroup": ("EKS node group",),
    "aws:eks/addon:Addon": PART,
    "aws:eks/accessEntry:AccessEntry": PART,
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": PART,
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": PART,
    "aws:iam/role:Role": ("IAM role",),
    "aws:iam/policy:Policy": ("IAM policy",),
    "aws:iam/rolePolicy:RolePolicy": PART,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": PART,
    "aws:iam/instanceProfile:InstanceProfile": ("instance profile",),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ("OIDC provider",),
    "aws:kms/key:Key": ("KMS key",),
    "aws:kms/alias:Alias": PART,
    "aws:cloudwatch/logGroup:LogGroup": ("log group",),
    "aws:cloudwatch/eventRule:EventRule": ("EventBridge rule",),
    "aws:cloudwatch/eventTarget:EventTarget": PART,
    "aws:sqs/queue:Queue": ("SQS queue",),
    "aws:sqs/queuePolicy:QueuePolicy": PART,
    "aws:ecr/repository:Repository": ("ECR repository",),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": PART,
    "aws:secretsmanager/secret:Secret": ("secret",),
    "aws:secretsmanager/secretVersion:SecretVersion": PART,
}
# What controllers create outside the state (see the module docstring).
CONTROLLER_KINDS = (
    "volume",
    "instance",
    "launch template",
    "network interface",
    "load balancer",
    "log group",
)
# Types that are not AWS resources: Kubernetes objects go with the cluster, the rest holds nothing.
NOT_AWS = ("kubernetes:", "pulumi:", "platform:", "random:", "pulumiservice:")


def kinds_of(types: Iterable[str]) -> tuple[set[str], list[str]]:
    """The kinds `types` can leave behind, and the types this table does not know (AWS or not)."""
    kinds: set[str] = set(CONTROLLER_KINDS)
    unknown = []
    for typ in types:
        found = TYPE_KINDS.get(typ)
        if found is None:
            if not typ.startswith(NOT_AWS):
                unknown.append(typ)
        elif found != PART:
            kinds.update(found)
    return kinds, sorted(set(unknown))


def _checked(kind: str, search: Callable[[], list[Leak]]) -> list[Leak]:
    """One search; an AWS error becomes an `unchecked` finding (nothing proven), never a crash."""
    try:
        return search()
    except (ClientError, BotoCoreError) as err:
        return [Leak("unchecked", kind, str(err))]


def find_leaks(session: Any, project: str, stack: str, kinds: Iterable[str] | None = None) -> list[Leak]:
    """Everything AWS holds for `<project>-<stack>` (each kind, or only `kinds`), sorted."""
    aws, scope = Clients.of(session), Scope(project, stack)
    wanted = set(KINDS) if kinds is None else set(kinds)
    leaks: list[Leak] = []
    for kind, search in KINDS.items():
        if kind in wanted:
            leaks += _checked(kind, partial(search, aws, scope))
    return sorted(set(leaks))


def _vpc_contents(ec2: Any, vpc_id: str) -> list[Leak]:
    in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    leaks = [
        Leak(
            "network interface",
            eni["NetworkInterfaceId"],
            f"{vpc_id}, {eni.get('InterfaceType', 'interface')}: {eni.get('Description') or '-'}",
        )
        for eni in pages(ec2, "describe_network_interfaces", "NetworkInterfaces", Filters=in_vpc)
    ]
    leaks += [
        Leak("security group", sg["GroupId"], f"{vpc_id}, {sg['GroupName']}")
        for sg in pages(ec2, "describe_security_groups", "SecurityGroups", Filters=in_vpc)
        if sg["GroupName"] != "default"
    ]
    return leaks


def destroy_blockers(session: Any, stack: str) -> list[Leak]:
    """After a failed destroy: the stack's VPCs still standing and what is left inside them."""
    ec2 = session.client("ec2")

    def search() -> list[Leak]:
        vpcs = pages(ec2, "describe_vpcs", "Vpcs", Filters=[{"Name": f"tag:{STACK_TAG}", "Values": [stack]}])
        leaks = [Leak("VPC", v["VpcId"], "still exists") for v in vpcs]
        for vpc in vpcs:
            leaks += _vpc_contents(ec2, vpc["VpcId"])
        return leaks

    return sorted(set(_checked("the stack's VPCs", search)))


def error_lines(output: str) -> list[str]:
    """The `error:` lines of Pulumi's output (what blocked an operation), in order, once each."""
    seen: dict[str, None] = {}
    for line in output.splitlines():
        text = line.strip()
        if "error:" in text:
            seen.setdefault(text[text.index("error:") :], None)
    return list(seen)
