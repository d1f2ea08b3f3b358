"""Phases 1 and 2 of the composition (stacks/platform.py): the foundation and the cluster.

Foundation: account facts, providers, the KMS key, the VPC and the (derived) ARNs of the deploy role
and the permissions boundary. Cluster: the control plane, the system nodes, and the Deployments
agents that can reach its API. Nothing here needs the Kubernetes API, so a bootstrap run
(deployments.bootstrap) stops after them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.agent import DeployAgent, DeployAgentArgs
from components.cluster import Cluster, ClusterArgs
from components.deploy_policy import boundary_arn, stack_scope
from components.deploy_roles import agent_token_secret_name, deploy_role_arn
from components.identity import AwsIdentity, log_group_exists, lookup
from components.kms import EncryptionKey, EncryptionKeyArgs
from components.network import Network, NetworkArgs
from components.nodegroups import SystemNodeGroup, SystemNodeGroupArgs
from stacks.config import PlatformConfig
from stacks.data import addon_versions
from stacks.scaling import MINIMUM_IP_TARGET, WARM_IP_TARGET


@dataclass(frozen=True)
class Foundation:
    aws_provider: aws.Provider
    aws_only: pulumi.ResourceOptions
    identity: AwsIdentity
    key: EncryptionKey
    network: Network
    # The deploy role's ARN (derived; the identity project creates the role), when deployments are on.
    deploy_role_arn: str | None
    # The permissions boundary every role of the stack carries (derived; the identity project
    # creates it next to the deploy role, which may create roles only with it), when deployments are on.
    permissions_boundary: str | None


@dataclass(frozen=True)
class ClusterPhase:
    cluster: Cluster
    nodes: SystemNodeGroup
    agent: DeployAgent | None


def key_window(cfg: PlatformConfig) -> int:
    """KMS keys' deletion window (stacks/profile.py)."""
    return cfg.profile.kms_deletion_window_days


# -- phase 1: foundation ------------------------------------------------------------------------


def foundation(cfg: PlatformConfig) -> Foundation:
    """Account facts, the AWS provider, the KMS key, the VPC, and the deploy role's ARN."""
    prefix = cfg.prefix
    aws_provider = aws.Provider(
        f"{prefix}-aws",
        region=cfg.region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=cfg.all_tags),
    )
    aws_only = pulumi.ResourceOptions(providers={"aws": aws_provider})
    identity = lookup(aws_provider)
    zones = identity.availability_zones[: cfg.network.az_count]
    if len(zones) < cfg.network.az_count:
        raise pulumi.RunError(
            f"Pulumi.{cfg.stack}.yaml: eks-platform:network.azCount = {cfg.network.az_count}, "
            f"but {cfg.region} offers only {len(zones)} AZs: {', '.join(zones)}"
        )

    key = EncryptionKey(
        f"{prefix}-logs-secrets",
        EncryptionKeyArgs(
            identity=identity,
            description=f"{prefix}: EKS secrets envelope encryption and platform log groups",
            log_group_patterns=(f"/aws/eks/{cfg.cluster_name}/*", f"/aws/vpc/{prefix}-network/*"),
            deletion_window_days=key_window(cfg),
            protect=cfg.protect,
        ),
        opts=aws_only,
    )

    # The deploy identity (role, OIDC trust, permissions boundary, agent pool, settings) is the
    # identity project's (identity/, applied by admins first): a run never changes the identity it
    # runs as. The role's and the boundary's ARNs are derived, not read from that stack: a
    # push-triggered run's stack token may read no other stack (Pulumi docs, Deployments >
    # Deployment Permissions). Every role the stack creates carries the boundary (a plain ARN:
    # nothing here creates it, so nothing here can wait for it; the identity project is applied
    # before the platform's first `up`, docs/deploy-path.md).
    deploy_role = None
    boundary = None
    if cfg.deployments.enabled:
        deploy_role = deploy_role_arn(identity, prefix)
        scope = stack_scope(
            identity,
            region=cfg.region,
            project=cfg.project,
            stack=cfg.stack,
            prefix=prefix,
            cluster_name=cfg.cluster_name,
        )
        boundary = boundary_arn(scope)
    network = Network(
        f"{prefix}-network",
        NetworkArgs(
            identity=identity,
            permissions_boundary=boundary,
            cidr=str(cfg.network.cidr),
            availability_zones=zones,
            subnet_cidrs=tuple((str(a), str(b)) for a, b in cfg.network.subnets()),
            nat_strategy=cfg.network.nat_strategy,
            cluster_name=cfg.cluster_name,
            flow_log_retention_days=cfg.network.flow_log_retention_days,
            log_key_arn=key.key_arn,
            interface_endpoints=cfg.network.interface_endpoints,
            protect=cfg.protect,
        ),
        opts=aws_only,
    )

    return Foundation(aws_provider, aws_only, identity, key, network, deploy_role, boundary)


# -- phase 2: cluster ---------------------------------------------------------------------------


def cluster_phase(cfg: PlatformConfig, base: Foundation) -> ClusterPhase:
    """The control plane, the system nodes, and the Deployments agents that can reach its API."""
    prefix, identity, aws_only = cfg.prefix, base.identity, base.aws_only
    versions = addon_versions(cfg.cluster.kubernetes_version)
    cluster = Cluster(
        f"{prefix}-cluster",
        ClusterArgs(
            identity=identity,
            permissions_boundary=base.permissions_boundary,
            cluster_name=cfg.cluster_name,
            kubernetes_version=cfg.cluster.kubernetes_version,
            upgrade_support_type=cfg.cluster.upgrade_support_type,
            vpc_id=base.network.vpc_id,
            private_subnet_ids=base.network.private_subnet_ids,
            service_cidr=str(cfg.cluster.service_cidr),
            endpoint_public_access=cfg.cluster.endpoint_public_access,
            public_access_cidrs=tuple(str(c) for c in cfg.cluster.public_access_cidrs),
            admin_role_arns=cfg.cluster.admin_role_arns,
            deploy_role_arn=base.deploy_role_arn,
            key_arn=base.key.key_arn,
            log_retention_days=cfg.cluster.log_retention_days,
            existing_log_group=log_group_exists(base.aws_provider, f"/aws/eks/{cfg.cluster_name}/cluster"),
            addon_versions=versions,
            warm_ip_target=WARM_IP_TARGET,
            minimum_ip_target=MINIMUM_IP_TARGET,
            protect=cfg.protect,
            tags=cfg.all_tags,
        ),
        opts=aws_only,
    )

    nodes = SystemNodeGroup(
        f"{prefix}-system",
        SystemNodeGroupArgs(
            identity=identity,
            permissions_boundary=base.permissions_boundary,
            cluster=cluster.eks,
            private_subnet_ids=base.network.private_subnet_ids,
            instance_types=cfg.system_node_group.instance_types,
            architecture=cfg.system_node_group.architecture,
            ami_family=cfg.system_node_group.ami_family,
            min_size=cfg.system_node_group.min_size,
            desired_size=cfg.system_node_group.desired_size,
            max_size=cfg.system_node_group.max_size,
            disk_size_gib=cfg.system_node_group.disk_size_gib,
            ami_release_version=cfg.system_node_group.ami_release_version,
            tags=cfg.all_tags,
            prerequisites=cluster.node_prerequisites,
        ),
        opts=aws_only,
    )

    agent = None
    agent_cfg = cfg.deployments.agent
    if agent_cfg.enabled:
        agent = DeployAgent(
            f"{prefix}-deploy-agent",
            DeployAgentArgs(
                identity=identity,
                permissions_boundary=base.permissions_boundary,
                prefix=cfg.prefix,
                vpc_id=base.network.vpc_id,
                private_subnet_ids=base.network.private_subnet_ids,
                token_secret_name=agent_token_secret_name(prefix),
                cluster_security_group_id=cluster.cluster_security_group_id,
                instance_type=agent_cfg.instance_type,
                architecture=agent_cfg.architecture,
                hosts=agent_cfg.hosts,
                version=agent_cfg.version,
            ),
            opts=aws_only,
        )
    return ClusterPhase(cluster, nodes, agent)
