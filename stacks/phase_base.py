"""Phases 1 and 2 of the composition (stacks/platform.py): the foundation and the cluster.

Foundation: account facts, providers, the KMS key, the VPC and the deploying identity. Cluster:
the control plane, the system nodes, and the Deployments agents that can reach its API. Nothing
here needs the Kubernetes API, so a bootstrap run (deployments.bootstrap) stops after them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_pulumiservice as ps

from components.agent import DeployAgent, DeployAgentArgs
from components.cluster import Cluster, ClusterArgs
from components.deployments import Deployments, DeploymentsArgs
from components.identity import AwsIdentity, log_group_exists, lookup
from components.kms import EncryptionKey, EncryptionKeyArgs
from components.network import Network, NetworkArgs
from components.nodegroups import SystemNodeGroup, SystemNodeGroupArgs
from stacks.config import PlatformConfig
from stacks.data import addon_versions, deploy_role_data


@dataclass(frozen=True)
class Foundation:
    aws_provider: aws.Provider
    aws_only: pulumi.ResourceOptions
    identity: AwsIdentity
    key: EncryptionKey
    network: Network
    deployments: Deployments | None

    @property
    def permissions_boundary(self) -> pulumi.Output[str] | None:
        """The boundary every role of the stack carries (created next to the deploy role)."""
        return self.deployments.boundary_arn if self.deployments else None


@dataclass(frozen=True)
class ClusterPhase:
    cluster: Cluster
    nodes: SystemNodeGroup
    agent: DeployAgent | None


def key_window(cfg: PlatformConfig) -> int:
    """KMS keys' deletion window: 30 days in prod (DESIGN.md Environments), AWS's minimum elsewhere."""
    return 30 if cfg.production else 7


# -- phase 1: foundation ------------------------------------------------------------------------


def foundation(cfg: PlatformConfig) -> Foundation:
    """Account facts, the AWS provider, the KMS key, the VPC, and the deploying identity."""
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

    deployments = None
    deploy = cfg.deployments
    if deploy.enabled:
        # Before the cluster: its role gets the cluster's admin access entry and is the role the
        # kubeconfig assumes.
        deployments = Deployments(
            f"{prefix}-deployments",
            DeploymentsArgs(
                identity=identity,
                organization=deploy.organization,
                project=cfg.project,
                stack=cfg.stack,
                region=cfg.region,
                github_repository=deploy.github_repository,
                branch=deploy.branch,
                repo_dir=deploy.repo_dir,
                existing_oidc_provider_arn=deploy.pulumi_oidc_provider_arn,
                prefix=prefix,
                cluster_name=cfg.cluster_name,
                permissions=deploy_role_data(),
                role_policy_arns=deploy.role_policy_arns,
                operator_role_arns=cfg.cluster.admin_role_arns,
                agent_pool=deploy.agent.enabled,
                protect=cfg.protect,
            ),
            # The Pulumi Cloud provider reads PULUMI_ACCESS_TOKEN, as the CLI does.
            opts=pulumi.ResourceOptions(
                providers={"aws": aws_provider, "pulumiservice": ps.Provider(f"{prefix}-pulumiservice")}
            ),
        )
    # Every role the stack creates carries the boundary created next to the deploy role.
    boundary = deployments.boundary_arn if deployments else None
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

    return Foundation(aws_provider, aws_only, identity, key, network, deployments)


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
            deploy_role_arn=base.deployments.role_arn if base.deployments else None,
            key_arn=base.key.key_arn,
            log_retention_days=cfg.cluster.log_retention_days,
            existing_log_group=log_group_exists(base.aws_provider, f"/aws/eks/{cfg.cluster_name}/cluster"),
            addon_versions=versions,
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
    if base.deployments is not None and base.deployments.agent_token is not None:
        agent = DeployAgent(
            f"{prefix}-deploy-agent",
            DeployAgentArgs(
                identity=identity,
                permissions_boundary=base.permissions_boundary,
                prefix=cfg.prefix,
                vpc_id=base.network.vpc_id,
                private_subnet_ids=base.network.private_subnet_ids,
                token=base.deployments.agent_token,
                key_arn=base.key.key_arn,
                cluster_security_group_id=cluster.cluster_security_group_id,
                instance_type=agent_cfg.instance_type,
                architecture=agent_cfg.architecture,
                hosts=agent_cfg.hosts,
                version=agent_cfg.version,
                # A credential, not data (the pool issues a new one): force-deleted, so a rebuilt
                # stack can create its name again (analysis/prerequisites.py reserved_names).
                recovery_window_days=0,
                protect=cfg.protect,
            ),
            opts=aws_only,
        )
    return ClusterPhase(cluster, nodes, agent)
