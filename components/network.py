"""The platform's VPC: private and public subnets in every AZ, NAT, flow logs, VPC endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx

from components.iam import clip, document, service_trust
from components.identity import AwsIdentity, existing


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    identity: AwsIdentity
    # The stack's permissions boundary (arn:<partition>:iam::<account>:policy/<prefix>-boundary), on
    # every role created here: the deploy role may create roles only with it. None: no boundary.
    permissions_boundary: pulumi.Input[str] | None
    cidr: str
    availability_zones: tuple[str, ...]
    # (private, public) CIDR per AZ, in the order of `availability_zones`.
    subnet_cidrs: tuple[tuple[str, str], ...]
    nat_strategy: Literal["single", "onePerAz"]
    cluster_name: str
    flow_log_retention_days: int
    log_key_arn: pulumi.Input[str]
    interface_endpoints: tuple[str, ...]
    # Production: the VPC (and through it, its subnets, route tables and NAT) and the flow-log group
    # are protected, and the log group is kept in AWS if the stack is ever destroyed and adopted
    # (imported) by the next stack of the same name.
    protect: bool


class Network(pulumi.ComponentResource):
    """A multi-AZ VPC laid out for EKS.

    Guarantees: one private subnet (sized for VPC-CNI pod IPs) and one public subnet in every
    configured AZ, tagged for internal/external load balancers and for Karpenter discovery;
    NAT per the configured strategy; every accepted and rejected flow logged to a KMS-encrypted
    log group with bounded retention; an S3 gateway endpoint (free, keeps image-layer traffic
    off NAT) and the configured interface endpoints, reachable on 443 from inside the VPC only.
    The VPC's default security group is adopted with no rules at all, so nothing that lands in it
    by accident can talk to anything (CIS AWS Foundations 5.4, checkov CKV2_AWS_12). With
    `protect`, the VPC and the flow-log group cannot be deleted by a destroy or a rename, and the
    group a destroy left behind is adopted by the next `up` (components/identity.py `existing`).
    It does not create security groups for workloads or peerings.
    """

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:network:Network", name, None, opts)
        ident = args.identity
        cluster_tag = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}
        vpc = awsx.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            availability_zone_names=list(args.availability_zones),
            enable_dns_hostnames=True,
            enable_dns_support=True,
            subnet_strategy=awsx.ec2.SubnetAllocationStrategy.AUTO,
            subnet_specs=[
                awsx.ec2.SubnetSpecArgs(
                    type=awsx.ec2.SubnetType.PRIVATE,
                    name="private",
                    cidr_blocks=[private for private, _ in args.subnet_cidrs],
                    tags={
                        **cluster_tag,
                        "kubernetes.io/role/internal-elb": "1",
                        "karpenter.sh/discovery": args.cluster_name,
                    },
                ),
                awsx.ec2.SubnetSpecArgs(
                    type=awsx.ec2.SubnetType.PUBLIC,
                    name="public",
                    cidr_blocks=[public for _, public in args.subnet_cidrs],
                    tags={**cluster_tag, "kubernetes.io/role/elb": "1"},
                ),
            ],
            nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(
                strategy=awsx.ec2.NatGatewayStrategy.SINGLE
                if args.nat_strategy == "single"
                else awsx.ec2.NatGatewayStrategy.ONE_PER_AZ,
            ),
            vpc_endpoint_strategy=awsx.ec2.VpcEndpointStrategy.AUTO,
            vpc_endpoint_specs=[
                awsx.ec2.VpcEndpointSpecArgs(
                    service_name=f"com.amazonaws.{ident.region}.s3",
                    vpc_endpoint_type="Gateway",
                )
            ],
            # Children inherit `protect` from their parent (pulumi/resource.py: "Infer protection
            # from parent"), so the subnets, route tables and NAT gateways awsx creates are covered.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        # Adopting the default security group strips its rules: pulumi_aws 7.51 DefaultSecurityGroup
        # ("immediately removes all ingress and egress rules ... then creates any rules specified");
        # none are specified. Deleting it only forgets it: AWS keeps a VPC's default group.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.vpc_id,
            tags={"Name": f"{name}-default (no rules)"},
            opts=pulumi.ResourceOptions(parent=self),
        )

        log_group_name = f"/aws/vpc/{name}/flow-logs"
        # Prod retains the group (its flow records) when the stack is destroyed; the next stack of the
        # same name would then fail to create it (ResourceAlreadyExistsException), so it adopts it.
        held = (
            existing("aws:cloudwatch/logGroup:LogGroup", log_group_name, pulumi.InvokeOptions(parent=self))
            if args.protect
            else None
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=log_group_name,
            retention_in_days=args.flow_log_retention_days,
            kms_key_id=args.log_key_arn,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                retain_on_delete=args.protect,
                import_=held.import_id if held else None,
            ),
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            name=clip(f"{name}-flow-logs"),
            assume_role_policy=service_trust("vpc-flow-logs.amazonaws.com", ident.account_id),
            permissions_boundary=args.permissions_boundary,
            opts=pulumi.ResourceOptions(parent=self),
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=log_group.arn.apply(
                lambda arn: document(
                    {
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                        "Resource": [arn, f"{arn}:*"],
                    }
                )
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.vpc_id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            # After the role's policy: the service publishes with the role's permissions, and a flow
            # log that starts before the policy exists reports deliverLogsStatus FAILED, "Access
            # error ... the IAM role associated with the flow log does not have sufficient
            # permissions" (EC2 API reference, FlowLog.deliverLogsErrorMessage). Its inputs alone
            # order it after the role, the group and the VPC, not the policy.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )

        if args.interface_endpoints:
            endpoint_sg = aws.ec2.SecurityGroup(
                f"{name}-endpoints",
                description="HTTPS from inside the VPC to the AWS interface endpoints",
                vpc_id=vpc.vpc_id,
                ingress=[
                    aws.ec2.SecurityGroupIngressArgs(
                        description="HTTPS from the VPC",
                        protocol="tcp",
                        from_port=443,
                        to_port=443,
                        cidr_blocks=[args.cidr],
                    )
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )
            for service in args.interface_endpoints:
                aws.ec2.VpcEndpoint(
                    f"{name}-{service.replace('.', '-')}",
                    vpc_id=vpc.vpc_id,
                    service_name=f"com.amazonaws.{ident.region}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=vpc.private_subnet_ids,
                    security_group_ids=[endpoint_sg.id],
                    opts=pulumi.ResourceOptions(parent=self),
                )

        self.vpc_id = vpc.vpc_id
        self.private_subnet_ids = vpc.private_subnet_ids
        self.public_subnet_ids = vpc.public_subnet_ids
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "private_subnet_ids": self.private_subnet_ids,
                "public_subnet_ids": self.public_subnet_ids,
            }
        )
