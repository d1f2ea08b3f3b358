"""Karpenter: workload nodes on demand, with spot interruption handling."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.helm import ChartSpec, merge, release
from components.iam import clip, document, pod_identity_role, role_with_policies, service_trust
from components.identity import AwsIdentity
from components.karpenter_policy import controller_policy
from components.nodegroups import SYSTEM_LABEL
from components.settle import pod_identity_settled

NAMESPACE, SERVICE_ACCOUNT = "kube-system", "karpenter"
NODE_CLASS = "default"
DISCOVERY_TAG = "karpenter.sh/discovery"
# The stack's identifying tags (stacks/config.py all_tags), which the deploy role's and the
# boundary's EC2 scoping compare (platform/deploy-role.yaml).
STACK_TAG_KEYS = ("platform:stack", "platform:project")

# EventBridge events Karpenter acts on: it drains a node before AWS takes it away. The five rules of
# Karpenter's own template for the pinned version (aws/karpenter-provider-aws v1.14.1, commit
# bde00654, website/content/en/docs/getting-started/getting-started-with-karpenter/cloudformation.yaml:
# ScheduledChangeRule, SpotInterruptionRule, RebalanceRule, InstanceStateChangeRule,
# CapacityReservationInterruptionRule); the controller parses each detail-type
# (pkg/controllers/interruption/messages/*/parser.go at the same tag).
INTERRUPTION_EVENTS = {
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "instance-state-change": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
    },
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    # A capacity reservation (reserved NodePools, `karpenter.sh/capacity-type: reserved`) reclaims
    # its instances with this warning; without the rule Karpenter never drains them first.
    "capacity-reservation-interruption": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"],
    },
}
# Interruption notices are only useful for minutes; keep the queue short.
QUEUE_RETENTION_SECONDS = 300


@dataclass(frozen=True, kw_only=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True, kw_only=True)
class BusinessHours:
    """A window in which Karpenter disrupts no node of the pool: opens at `schedule` (cron, UTC)."""

    schedule: str
    duration: str


@dataclass(frozen=True, kw_only=True)
class NodePoolArgs:
    """One NodePool (the stack's config validates it: stacks/scaling.py `NodePoolConfig`)."""

    name: str
    capacity_types: tuple[str, ...]
    architectures: tuple[str, ...]
    instance_categories: tuple[str, ...]
    min_generation: int
    min_cpu: int
    cpu_limit: int
    memory_limit_gib: int
    expire_after: str
    termination_grace_period: str
    consolidation_policy: str
    consolidate_after: str
    disruption_budget_percent: int
    business_hours: BusinessHours | None
    taints: tuple[Taint, ...]
    weight: int | None


@dataclass(frozen=True, kw_only=True)
class KarpenterArgs:
    identity: AwsIdentity
    # The stack's permissions boundary (arn:<partition>:iam::<account>:policy/<prefix>-boundary), on
    # every role created here: the deploy role may create roles only with it. None: no boundary.
    permissions_boundary: pulumi.Input[str] | None
    # The name as plain text (policies, tags, values: readable in the plan) and as the cluster's
    # Output, which every EKS-scoped resource takes so that it is created after the cluster.
    cluster_name: str
    cluster: pulumi.Input[str]
    cluster_arn: str
    cluster_security_group_id: pulumi.Input[str]
    crd_chart: ChartSpec
    chart: ChartSpec
    base_values: dict[str, Any]
    high_availability: bool
    ami_alias: str
    node_disk_gib: int
    max_pods_per_node: int
    node_pools: tuple[NodePoolArgs, ...]
    tags: dict[str, str]
    # The system nodes the controller runs on.
    system_nodes: pulumi.Resource
    # CoreDNS (the EKS add-on). The controller resolves the EC2, SQS, SSM, pricing and STS endpoints
    # through it (chart 1.14.1: hostNetwork false, dnsPolicy ClusterFirst), at install and, on
    # destroy, while it terminates the nodes of a NodePool being deleted: the release and every
    # NodePool/EC2NodeClass depend on it, so a destroy deletes them before DNS goes
    # (platform/teardown.yaml, analysis/teardown.py).
    dns: pulumi.Resource


class Karpenter(pulumi.ComponentResource):
    """Karpenter's AWS side, its controller, one EC2NodeClass and the configured NodePools.

    Guarantees: the controller's role is assumable only through Pod Identity by
    `kube-system/karpenter` of this cluster, and its policy is Karpenter's own, scoped to the
    cluster's ownership tag (no instance-profile rights: the profile is created here); the
    interruption queue is encrypted (SSE-SQS), keeps messages 5 minutes, and accepts messages
    only from this stack's four EventBridge rules; nodes get a role with only the worker and
    ECR pull policies and an EC2_LINUX access entry, IMDSv2 with hop limit 1, encrypted gp3
    volumes, private subnets and the cluster security group by discovery tag. The controller
    runs on the system nodes (2 replicas and a PDB in prod). NodePools and the EC2NodeClass depend
    on the controller and on everything it needs while it terminates their nodes (CoreDNS, its Pod
    Identity association and role policy, the interruption queue, node access), so on destroy they
    go first and Karpenter terminates its nodes while it still runs and can reach AWS.
    It does not install cluster-autoscaler (the two conflict).
    """

    queue_name: pulumi.Output[str]
    controller_role_arn: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:karpenter:Karpenter", name, None, opts)
        ident = args.identity
        child = pulumi.ResourceOptions(parent=self)

        # -- nodes ---------------------------------------------------------------------------
        node_role, node_policies = role_with_policies(
            f"{name}-node",
            service_trust("ec2.amazonaws.com"),
            ident.partition,
            ["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly"],
            parent=self,
            permissions_boundary=args.permissions_boundary,
        )
        profile = aws.iam.InstanceProfile(
            f"{name}-node", name=clip(f"{name}-node", 128), role=node_role.name, opts=child
        )
        access = aws.eks.AccessEntry(
            f"{name}-node",
            cluster_name=args.cluster,
            principal_arn=node_role.arn,
            type="EC2_LINUX",
            opts=child,
        )
        sg_tag = aws.ec2.Tag(
            f"{name}-cluster-sg-discovery",
            resource_id=args.cluster_security_group_id,
            key=DISCOVERY_TAG,
            value=args.cluster_name,
            opts=child,
        )
        # The stack's own tags on EKS's cluster security group (which EKS creates, so the provider's
        # default tags never reach it): the permissions boundary lets the stack's roles launch only
        # into subnets and groups that carry the stack's tag or the cluster's
        # `kubernetes.io/cluster/<cluster>` (platform/deploy-role.yaml ForeignNetworks), and this
        # is the group Karpenter's nodes get. With it, the launch does not rest on which tags EKS
        # itself puts on the group (not verified at the pinned EKS version).
        for key in STACK_TAG_KEYS:
            if key in args.tags:
                aws.ec2.Tag(
                    f"{name}-cluster-sg-{key.replace(':', '-')}",
                    resource_id=args.cluster_security_group_id,
                    key=key,
                    value=args.tags[key],
                    opts=child,
                )

        # -- interruption handling -------------------------------------------------------------
        queue = aws.sqs.Queue(
            f"{name}-interruptions",
            name=clip(f"{name}-interruptions", 80),
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        rules = []
        for event, pattern in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{event}",
                name=clip(f"{name}-{event}"),
                description=f"Karpenter ({args.cluster_name}): {pattern['detail-type'][0]}",
                event_pattern=json.dumps(pattern),
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{event}", rule=rule.name, target_id="karpenter-queue", arn=queue.arn, opts=child
            )
            rules.append(rule)
        aws.sqs.QueuePolicy(
            f"{name}-interruptions",
            queue_url=queue.url,
            policy=pulumi.Output.all(queue.arn, *[r.arn for r in rules]).apply(
                lambda arns: document(
                    {
                        "Sid": "OnlyThisStacksEventBridgeRules",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": arns[0],
                        "Condition": {"ArnEquals": {"aws:SourceArn": arns[1:]}},
                    },
                    {
                        "Sid": "DenyPlainHttp",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "sqs:*",
                        "Resource": arns[0],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                )
            ),
            opts=child,
        )

        # -- controller identity ---------------------------------------------------------------
        controller_role, association = pod_identity_role(
            f"{name}-controller",
            account_id=ident.account_id,
            cluster_name=args.cluster,
            cluster_arn=args.cluster_arn,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            policy=pulumi.Output.all(queue.arn, node_role.arn).apply(
                lambda a: controller_policy(ident, args.cluster_name, a[0], a[1])
            ),
            parent=self,
            permissions_boundary=args.permissions_boundary,
        )

        # -- Kubernetes side -------------------------------------------------------------------
        settled = pod_identity_settled(
            f"{name}-pod-identity-settle",
            "karpenter-pod-identity-settle",
            association,
            association.association_id,
            parent=self,
            after=[args.system_nodes],
        )
        crds = release(
            f"{name}-crd",
            release_name="karpenter-crd",
            namespace=NAMESPACE,
            spec=args.crd_chart,
            values={},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.system_nodes]),
        )
        controller = release(
            f"{name}-controller",
            release_name="karpenter",
            namespace=NAMESPACE,
            spec=args.chart,
            skip_crds=True,  # the karpenter-crd release owns and upgrades them
            values=merge(
                args.base_values,
                {
                    "replicas": 2 if args.high_availability else 1,
                    "settings": {"clusterName": args.cluster_name, "interruptionQueue": queue.name},
                    # Explicit, so the controller never asks instance metadata (hop limit 1 blocks it).
                    "controller": {"env": [{"name": "AWS_REGION", "value": ident.region}]},
                },
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                # Working credentials (the association, settled), node access, DNS and CRDs first.
                depends_on=[crds, settled, access, *node_policies, args.system_nodes, args.dns],
            ),
        )

        # Deleting a NodePool (foreground, awaited) or the EC2NodeClass (its finalizer waits for the
        # NodeClaims) lasts as long as Karpenter needs to terminate the instances: everything it calls
        # AWS with is named here, not only reached through the release, so none goes first.
        after_controller = pulumi.ResourceOptions(
            parent=self, depends_on=[controller, sg_tag, args.dns, association, queue, access]
        )
        k8s.apiextensions.CustomResource(
            f"{name}-nodeclass-{NODE_CLASS}",
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata={"name": NODE_CLASS},
            spec=node_class_spec(args, profile.name),
            opts=after_controller,
        )
        for pool in args.node_pools:
            k8s.apiextensions.CustomResource(
                f"{name}-nodepool-{pool.name}",
                api_version="karpenter.sh/v1",
                kind="NodePool",
                metadata={"name": pool.name},
                spec=node_pool_spec(pool),
                opts=after_controller,
            )

        self.queue_name = queue.name
        self.controller_role_arn = controller_role.arn
        self.node_role_arn = node_role.arn
        self.register_outputs(
            {
                "queue_name": self.queue_name,
                "controller_role_arn": self.controller_role_arn,
                "node_role_arn": self.node_role_arn,
            }
        )


def node_class_spec(args: KarpenterArgs, instance_profile: pulumi.Input[str]) -> dict[str, Any]:
    """The EC2NodeClass: AMI alias, discovery selectors, IMDSv2 hop 1, encrypted gp3, kubelet."""
    family = args.ami_alias.split("@", 1)[0]
    volume = {
        "volumeSize": f"{args.node_disk_gib}Gi",
        "volumeType": "gp3",
        "encrypted": True,
        "deleteOnTermination": True,
    }
    # Bottlerocket boots from a small OS volume and keeps images and pods on a data volume.
    devices = (
        [{"deviceName": "/dev/xvda", "ebs": volume}]
        if family == "al2023"
        else [
            {"deviceName": "/dev/xvda", "ebs": {**volume, "volumeSize": "4Gi"}},
            {"deviceName": "/dev/xvdb", "ebs": volume},
        ]
    )
    selector = [{"tags": {DISCOVERY_TAG: args.cluster_name}}]
    return {
        "amiSelectorTerms": [{"alias": args.ami_alias}],
        "instanceProfile": instance_profile,
        "subnetSelectorTerms": selector,
        "securityGroupSelectorTerms": selector,
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "blockDeviceMappings": devices,
        "kubelet": {"maxPods": args.max_pods_per_node},
        # Default tags of the AWS provider do not reach instances Karpenter launches.
        "tags": args.tags,
    }


def node_pool_spec(pool: NodePoolArgs) -> dict[str, Any]:
    """A NodePool: requirements, limits, expiry and disruption budgets."""
    requirements = [
        {"key": "kubernetes.io/arch", "operator": "In", "values": list(pool.architectures)},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(pool.capacity_types)},
        {
            "key": "karpenter.k8s.aws/instance-category",
            "operator": "In",
            "values": list(pool.instance_categories),
        },
        {
            "key": "karpenter.k8s.aws/instance-generation",
            "operator": "Gt",
            "values": [str(pool.min_generation - 1)],
        },
        {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt", "values": [str(pool.min_cpu - 1)]},
    ]
    budgets: list[dict[str, str]] = [{"nodes": f"{pool.disruption_budget_percent}%"}]
    if pool.business_hours is not None:
        budgets.append(
            {"nodes": "0", "schedule": pool.business_hours.schedule, "duration": pool.business_hours.duration}
        )
    template_spec: dict[str, Any] = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": NODE_CLASS},
        "requirements": requirements,
        "expireAfter": pool.expire_after,
        # Without it a pod whose PDB never allows eviction keeps an expired node forever (NodePool
        # CRD v1, spec.template.spec.terminationGracePeriod: "If left undefined, the controller will
        # wait indefinitely for pods to be drained").
        "terminationGracePeriod": pool.termination_grace_period,
    }
    if pool.taints:
        template_spec["taints"] = [{"key": t.key, "value": t.value, "effect": t.effect} for t in pool.taints]
    spec: dict[str, Any] = {
        "template": {"metadata": {"labels": {SYSTEM_LABEL[0]: pool.name}}, "spec": template_spec},
        "limits": {"cpu": str(pool.cpu_limit), "memory": f"{pool.memory_limit_gib}Gi"},
        "disruption": {
            "consolidationPolicy": pool.consolidation_policy,
            "consolidateAfter": pool.consolidate_after,
            "budgets": budgets,
        },
    }
    if pool.weight is not None:
        spec["weight"] = pool.weight
    return spec
