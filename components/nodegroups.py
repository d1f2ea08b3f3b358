"""The managed node group that runs the platform's own controllers (never workloads)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from components.iam import role_with_policies, service_trust
from components.identity import AwsIdentity

# The taint every critical add-on (CoreDNS, EBS CSI, Karpenter, metrics-server) tolerates by default.
SYSTEM_TAINT = {"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}
SYSTEM_LABEL = ("eks-platform.io/node-pool", "system")

_AMI_TYPES = {
    ("AL2023", "arm64"): eks.AmiType.AL2023_ARM64_STANDARD,
    ("AL2023", "x86_64"): eks.AmiType.AL2023_X86_64_STANDARD,
    ("Bottlerocket", "arm64"): eks.AmiType.BOTTLEROCKET_ARM64,
    ("Bottlerocket", "x86_64"): eks.AmiType.BOTTLEROCKET_X86_64,
}


@dataclass(frozen=True, kw_only=True)
class SystemNodeGroupArgs:
    identity: AwsIdentity
    # The stack's permissions boundary (arn:<partition>:iam::<account>:policy/<prefix>-boundary), on
    # every role created here: the deploy role may create roles only with it. None: no boundary.
    permissions_boundary: pulumi.Input[str] | None
    cluster: eks.Cluster
    private_subnet_ids: pulumi.Input[list[str]]
    instance_types: tuple[str, ...]
    architecture: Literal["arm64", "x86_64"]
    ami_family: Literal["AL2023", "Bottlerocket"]
    min_size: int
    desired_size: int
    max_size: int
    disk_size_gib: int
    # The EKS AMI release the nodes run (`1.35.6-20260714`); None follows the latest release for
    # the cluster's version whenever EKS replaces a node.
    ami_release_version: str | None
    tags: dict[str, str]
    # Resources the nodes need before they can join (the CNI, the Pod Identity agent).
    prerequisites: list[pulumi.Resource]


class SystemNodeGroup(pulumi.ComponentResource):
    """An on-demand EKS managed node group for critical add-ons, across every private subnet.

    Guarantees: nodes only in private subnets, no SSH and no public IPs; IMDSv2 required with a
    hop limit of 1 (pods cannot borrow the node's credentials); encrypted gp3 root volumes; a
    node role with only the worker and ECR pull-only policies (the CNI has its own role);
    labelled and tainted `CriticalAddonsOnly` so only platform controllers schedule here; the AMI
    release pinned when config gives one (production does), so a replaced node runs the tested
    image. The
    launch template is owned here because the node group component has no metadata options.
    It does not autoscale workloads: Karpenter does.
    """

    node_role_arn: pulumi.Output[str]
    node_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: SystemNodeGroupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:nodegroups:SystemNodeGroup", name, None, opts)
        ident = args.identity
        child = pulumi.ResourceOptions(parent=self)

        role, attachments = role_with_policies(
            f"{name}-node",
            service_trust("ec2.amazonaws.com"),
            ident.partition,
            ["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly"],
            parent=self,
            permissions_boundary=args.permissions_boundary,
        )

        # Bottlerocket boots from a small OS volume and keeps images and pods on a data volume.
        volumes = (
            [("/dev/xvda", args.disk_size_gib)]
            if args.ami_family == "AL2023"
            else [("/dev/xvda", 4), ("/dev/xvdb", args.disk_size_gib)]
        )
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"System nodes of {name}: IMDSv2 only, encrypted gp3, no SSH",
            update_default_version=True,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=device,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=size, volume_type="gp3", encrypted="true", delete_on_termination="true"
                    ),
                )
                for device, size in volumes
            ],
            monitoring=aws.ec2.LaunchTemplateMonitoringArgs(enabled=True),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=args.tags)
                for kind in ("instance", "volume", "network-interface")
            ],
            opts=child,
        )

        node_group = eks.ManagedNodeGroup(
            f"{name}-mng",
            cluster=args.cluster,
            node_role=role,
            ami_type=_AMI_TYPES[(args.ami_family, args.architecture)].value,
            # With a launch template EKS does not follow the control plane's version by itself:
            # the cluster's version (an Output, so the nodes upgrade after the control plane)
            # makes an upgrade roll the system nodes.
            version=args.cluster.eks_cluster.version,
            # The pinned AMI release; config validation keeps its Kubernetes minor equal to
            # `version`, so an upgrade changes both in one UpdateNodegroupVersion after the
            # control plane. pulumi-eks passes it to aws.eks.NodeGroup unchanged unless the launch
            # template sets an AMI id or user data, which this one does not (pulumi/pulumi-eks
            # nodejs/eks/nodes/nodegroup.ts, createManagedNodeGroupInternal). Scaling is untouched:
            # desiredSize stays managed (no ignoreScalingChanges), and a release bump is an
            # in-place node group update that drains and replaces the nodes, never a new group.
            release_version=args.ami_release_version,
            capacity_type="ON_DEMAND",
            instance_types=list(args.instance_types),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=args.min_size, desired_size=args.desired_size, max_size=args.max_size
            ),
            subnet_ids=args.private_subnet_ids,
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id,
                version=launch_template.latest_version.apply(str),
            ),
            labels={SYSTEM_LABEL[0]: SYSTEM_LABEL[1]},
            taints=[aws.eks.NodeGroupTaintArgs(**SYSTEM_TAINT)],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*attachments, *args.prerequisites]),
        )

        self.node_group = node_group
        self.node_role_arn = role.arn
        self.node_group_name = node_group.node_group.node_group_name
        self.register_outputs({"node_role_arn": self.node_role_arn, "node_group_name": self.node_group_name})
