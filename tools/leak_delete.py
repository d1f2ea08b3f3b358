"""Delete what tools/leak_check.py found for a stack: one deleter per kind, users before what they use.

Only what the leak check found is deleted, and it finds only what carries the stack's tags or name
prefix, so nothing of another stack is touched. Kinds go in `leak_check.KINDS` order (instances and
node groups before the security groups and subnets they sit in; NAT gateways before their EIPs); a
deleter waits where a later one depends on the delete being complete (node groups, the cluster, NAT
gateways, instances). A KMS key cannot be deleted at once: it is scheduled (7 days, the minimum).
Each failure is reported with its leak and never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from tools.leak_check import ALIASES, KINDS, Clients, Leak, pages

KMS_PENDING_DAYS = 7  # the shortest deletion window KMS allows


def _instance(aws: Clients, leak: Leak) -> None:
    ec2 = aws("ec2")
    ec2.terminate_instances(InstanceIds=[leak.id])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[leak.id])


def _node_group(aws: Clients, leak: Leak) -> None:
    cluster, name = leak.id.split(":", 1)
    aws("eks").delete_nodegroup(clusterName=cluster, nodegroupName=name)
    aws("eks").get_waiter("nodegroup_deleted").wait(clusterName=cluster, nodegroupName=name)


def _cluster(aws: Clients, leak: Leak) -> None:
    aws("eks").delete_cluster(name=leak.id)
    aws("eks").get_waiter("cluster_deleted").wait(name=leak.id)


def _nat_gateway(aws: Clients, leak: Leak) -> None:
    aws("ec2").delete_nat_gateway(NatGatewayId=leak.id)
    aws("ec2").get_waiter("nat_gateway_deleted").wait(NatGatewayIds=[leak.id])


def _security_group(aws: Clients, leak: Leak) -> None:
    ec2 = aws("ec2")
    try:
        (group,) = ec2.describe_security_groups(GroupIds=[leak.id])["SecurityGroups"]
    except ClientError as err:
        # EKS's cluster group goes with its cluster, deleted earlier in the same batch (KINDS order).
        if err.response.get("Error", {}).get("Code") == "InvalidGroup.NotFound":
            return
        raise
    # Rules naming other groups keep those from being deleted: drop this group's rules first.
    if group.get("IpPermissions"):
        ec2.revoke_security_group_ingress(GroupId=leak.id, IpPermissions=group["IpPermissions"])
    if group.get("IpPermissionsEgress"):
        ec2.revoke_security_group_egress(GroupId=leak.id, IpPermissions=group["IpPermissionsEgress"])
    ec2.delete_security_group(GroupId=leak.id)


def _internet_gateway(aws: Clients, leak: Leak) -> None:
    ec2 = aws("ec2")
    (gateway,) = ec2.describe_internet_gateways(InternetGatewayIds=[leak.id])["InternetGateways"]
    for attachment in gateway.get("Attachments", []):
        ec2.detach_internet_gateway(InternetGatewayId=leak.id, VpcId=attachment["VpcId"])
    ec2.delete_internet_gateway(InternetGatewayId=leak.id)


def _route_table(aws: Clients, leak: Leak) -> None:
    ec2 = aws("ec2")
    (table,) = ec2.describe_route_tables(RouteTableIds=[leak.id])["RouteTables"]
    for association in table.get("Associations", []):
        ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
    ec2.delete_route_table(RouteTableId=leak.id)


def _vpc(aws: Clients, leak: Leak) -> None:
    """The VPC and what only it holds (subnets, its non-main route tables); the rest are kinds."""
    ec2 = aws("ec2")
    in_vpc = [{"Name": "vpc-id", "Values": [leak.id]}]
    for table in pages(ec2, "describe_route_tables", "RouteTables", Filters=in_vpc):
        if not any(a.get("Main") for a in table.get("Associations", [])):
            for association in table.get("Associations", []):
                ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
            ec2.delete_route_table(RouteTableId=table["RouteTableId"])
    for subnet in pages(ec2, "describe_subnets", "Subnets", Filters=in_vpc):
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=leak.id)


def _event_rule(aws: Clients, leak: Leak) -> None:
    events = aws("events")
    targets = events.list_targets_by_rule(Rule=leak.id).get("Targets", [])
    if targets:
        events.remove_targets(Rule=leak.id, Ids=[t["Id"] for t in targets])
    events.delete_rule(Name=leak.id)


def _role(aws: Clients, leak: Leak) -> None:
    iam = aws("iam")
    for profile in iam.list_instance_profiles_for_role(RoleName=leak.id)["InstanceProfiles"]:
        iam.remove_role_from_instance_profile(
            InstanceProfileName=profile["InstanceProfileName"], RoleName=leak.id
        )
    for policy in pages(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=leak.id):
        iam.detach_role_policy(RoleName=leak.id, PolicyArn=policy["PolicyArn"])
    for name in pages(iam, "list_role_policies", "PolicyNames", RoleName=leak.id):
        iam.delete_role_policy(RoleName=leak.id, PolicyName=name)
    iam.delete_role(RoleName=leak.id)


def _policy(aws: Clients, leak: Leak) -> None:
    """Detach it from whatever still uses it, drop its old versions, delete it."""
    iam = aws("iam")
    used = iam.list_entities_for_policy(PolicyArn=leak.id)
    for role in used.get("PolicyRoles", []):
        iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=leak.id)
    for user in used.get("PolicyUsers", []):
        iam.detach_user_policy(UserName=user["UserName"], PolicyArn=leak.id)
    for group in used.get("PolicyGroups", []):
        iam.detach_group_policy(GroupName=group["GroupName"], PolicyArn=leak.id)
    for version in iam.list_policy_versions(PolicyArn=leak.id)["Versions"]:
        if not version["IsDefaultVersion"]:
            iam.delete_policy_version(PolicyArn=leak.id, VersionId=version["VersionId"])
    iam.delete_policy(PolicyArn=leak.id)


def _instance_profile(aws: Clients, leak: Leak) -> None:
    iam = aws("iam")
    for role in iam.get_instance_profile(InstanceProfileName=leak.id)["InstanceProfile"]["Roles"]:
        iam.remove_role_from_instance_profile(InstanceProfileName=leak.id, RoleName=role["RoleName"])
    iam.delete_instance_profile(InstanceProfileName=leak.id)


DELETERS: dict[str, Callable[[Clients, Leak], None]] = {
    "instance": _instance,
    "Auto Scaling group": lambda aws, leak: aws("autoscaling").delete_auto_scaling_group(
        AutoScalingGroupName=leak.id, ForceDelete=True
    ),
    "EKS node group": _node_group,
    "load balancer": lambda aws, leak: aws("elbv2").delete_load_balancer(LoadBalancerArn=leak.id),
    "classic load balancer": lambda aws, leak: aws("elb").delete_load_balancer(LoadBalancerName=leak.id),
    "NAT gateway": _nat_gateway,
    "EKS cluster": _cluster,
    "launch template": lambda aws, leak: aws("ec2").delete_launch_template(LaunchTemplateId=leak.id),
    "VPC endpoint": lambda aws, leak: aws("ec2").delete_vpc_endpoints(VpcEndpointIds=[leak.id]),
    "network interface": lambda aws, leak: aws("ec2").delete_network_interface(NetworkInterfaceId=leak.id),
    "volume": lambda aws, leak: aws("ec2").delete_volume(VolumeId=leak.id),
    "EIP": lambda aws, leak: aws("ec2").release_address(AllocationId=leak.id),
    "security group": _security_group,
    "internet gateway": _internet_gateway,
    "route table": _route_table,
    "subnet": lambda aws, leak: aws("ec2").delete_subnet(SubnetId=leak.id),
    "VPC": _vpc,
    "log group": lambda aws, leak: aws("logs").delete_log_group(logGroupName=leak.id),
    "ECR repository": lambda aws, leak: aws("ecr").delete_repository(repositoryName=leak.id, force=True),
    "SQS queue": lambda aws, leak: aws("sqs").delete_queue(QueueUrl=leak.id),
    "EventBridge rule": _event_rule,
    "secret": lambda aws, leak: aws("secretsmanager").delete_secret(
        SecretId=leak.id, ForceDeleteWithoutRecovery=True
    ),
    "KMS key": lambda aws, leak: aws("kms").schedule_key_deletion(
        KeyId=leak.id, PendingWindowInDays=KMS_PENDING_DAYS
    ),
    "instance profile": _instance_profile,
    "IAM role": _role,
    "IAM policy": _policy,
    "OIDC provider": lambda aws, leak: aws("iam").delete_open_id_connect_provider(
        OpenIDConnectProviderArn=leak.id
    ),
}
_ORDER = {kind: i for i, kind in enumerate(KINDS)}


@dataclass(frozen=True)
class Deleted:
    leak: Leak
    error: str | None = None  # None: deleted (a KMS key: scheduled)

    def __str__(self) -> str:
        return f"deleted {self.leak}" if self.error is None else f"could not delete {self.leak}: {self.error}"


def deletion_order(leaks: Iterable[Leak]) -> list[Leak]:
    """Leaks in the order they can be deleted; `unchecked` findings are not resources."""
    real = [leak for leak in set(leaks) if leak.kind != "unchecked"]
    return sorted(real, key=lambda leak: (_ORDER[ALIASES.get(leak.kind, leak.kind)], leak.id))


def delete_leaks(session: Any, leaks: Iterable[Leak]) -> list[Deleted]:
    """Delete each leak in dependency order; every outcome is returned, none raises."""
    aws, done = Clients.of(session), []
    for leak in deletion_order(leaks):
        try:
            DELETERS[leak.kind](aws, leak)
        except Exception as err:  # an SDK or waiter error of one leak never stops the others
            done.append(Deleted(leak, str(err)))
        else:
            done.append(Deleted(leak))
    return done
