"""The composition: build the platform's components for one validated stack config.

`build()` reads top-down in deploy order, one function per phase, each returning what the next
needs: foundation (account facts, providers, KMS key, VPC, the deploying identity), cluster
(control plane, system nodes, Deployments agents), cluster services (add-ons, Karpenter,
autoscaling, secrets, monitoring: every Kubernetes object but GitOps) and delivery (registries,
ArgoCD). A bootstrap run (deployments.bootstrap) stops after the cluster phase: nothing it
creates needs the Kubernetes API, so it works from outside a private endpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_pulumiservice as ps
import pulumi_random as random

from components.addons import ClusterAddons, ClusterAddonsArgs
from components.agent import DeployAgent, DeployAgentArgs
from components.autoscaling import PodAutoscaling, PodAutoscalingArgs
from components.cluster import Cluster, ClusterArgs
from components.deployments import Deployments, DeploymentsArgs
from components.gitops import ARGOCD_SECRET_LABELS, GitOps, GitOpsArgs, SsoArgs
from components.identity import AwsIdentity, log_group_exists, lookup
from components.karpenter import Karpenter, KarpenterArgs
from components.kms import EncryptionKey, EncryptionKeyArgs
from components.monitoring import RECEIVER_KEYS, Monitoring, MonitoringArgs
from components.namespaces import Namespaces, NamespacesArgs
from components.netpol import NetworkPolicies, NetworkPoliciesArgs
from components.network import Network, NetworkArgs
from components.nodegroups import SystemNodeGroup, SystemNodeGroupArgs
from components.registry import Registry, RegistryArgs, ServiceRegistry
from components.secrets import Secrets, SecretsArgs, SecretTarget
from stacks.config import PlatformConfig
from stacks.data import addon_versions, chart_specs, dashboards, deploy_role_data, manifests, values


@dataclass(frozen=True)
class Foundation:
    aws_provider: aws.Provider
    aws_only: pulumi.ResourceOptions
    identity: AwsIdentity
    key: EncryptionKey
    network: Network
    deployments: Deployments | None


@dataclass(frozen=True)
class ClusterPhase:
    cluster: Cluster
    nodes: SystemNodeGroup
    agent: DeployAgent | None


@dataclass(frozen=True)
class Services:
    k8s_opts: pulumi.ResourceOptions
    karpenter: Karpenter
    namespaces: Namespaces
    secrets: Secrets
    # The EBS CSI driver and the StorageClass: whatever claims volumes waits for them, and on
    # destroy goes before them, so no volume is left behind.
    addons: ClusterAddons
    monitoring: Monitoring


def build(cfg: PlatformConfig) -> dict[str, Any]:
    """Create every resource of the stack; return the stack outputs."""
    base = foundation(cfg)
    core = cluster_phase(cfg, base)
    outputs = {
        "clusterName": core.cluster.cluster_name,
        "clusterEndpoint": core.cluster.endpoint,
        "kubeconfig": core.cluster.kubeconfig_json,
        "vpcId": base.network.vpc_id,
        "privateSubnetIds": base.network.private_subnet_ids,
        "publicSubnetIds": base.network.public_subnet_ids,
        "oidcProviderArn": core.cluster.oidc_provider_arn,
        "nodeRoleArn": core.nodes.node_role_arn,
    }
    if base.deployments is not None:
        outputs["deployRoleArn"] = base.deployments.role_arn
    if cfg.deployments.bootstrap:
        pulumi.log.warn(
            "deployments.bootstrap: stopping after the cluster and the Deployments agents; run the "
            "stack's deployment (on the agents) to create the Kubernetes objects. Never bootstrap a "
            "stack that has them: the run would delete them."
        )
        return outputs
    services = cluster_services(cfg, base, core)
    return outputs | delivery(cfg, base, core, services)


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

    network = Network(
        f"{prefix}-network",
        NetworkArgs(
            identity=identity,
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
                recovery_window_days=30 if cfg.production else 0,
                protect=cfg.protect,
            ),
            opts=aws_only,
        )
    return ClusterPhase(cluster, nodes, agent)


# -- phase 3: cluster services -------------------------------------------------------------------


def cluster_services(cfg: PlatformConfig, base: Foundation, core: ClusterPhase) -> Services:
    """Everything in the cluster but GitOps: add-ons, Karpenter, autoscaling, secrets, monitoring."""
    prefix, identity = cfg.prefix, base.identity
    cluster, nodes = core.cluster, core.nodes
    k8s_provider = k8s.Provider(
        f"{prefix}-k8s",
        kubeconfig=cluster.kubeconfig_json,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(
            # First API call minutes after the access entries (they take seconds to apply), and,
            # with agents, only once they can reach the endpoint; on destroy every Kubernetes
            # object goes before the agents that delete it.
            depends_on=[nodes.node_group, *([core.agent] if core.agent else [])]
        ),
    )
    # Default providers are disabled (Pulumi.yaml): every package gets an explicit one.
    random_provider = random.Provider(f"{prefix}-random")
    k8s_opts = pulumi.ResourceOptions(
        providers={"aws": base.aws_provider, "kubernetes": k8s_provider, "random": random_provider}
    )
    charts = chart_specs()
    cluster_arn = identity.arn("eks", f"cluster/{cfg.cluster_name}")
    addons = ClusterAddons(
        f"{prefix}-addons",
        ClusterAddonsArgs(
            identity=identity,
            cluster_name=cluster.cluster_name,
            cluster_arn=cluster_arn,
            addon_versions=addon_versions(cfg.cluster.kubernetes_version),
            coredns_replicas=3 if cfg.production else 2,
            high_availability=cfg.production,
            reclaim_policy="Retain" if cfg.production else "Delete",
            node_group=nodes.node_group,
            volume_tags=cfg.all_tags,
        ),
        opts=k8s_opts,
    )

    karpenter = Karpenter(
        f"{prefix}-karpenter",
        KarpenterArgs(
            identity=identity,
            cluster_name=cfg.cluster_name,
            cluster=cluster.cluster_name,
            cluster_arn=cluster_arn,
            cluster_security_group_id=cluster.cluster_security_group_id,
            crd_chart=charts["karpenter-crd"],
            chart=charts["karpenter"],
            base_values=values("karpenter"),
            high_availability=cfg.production,
            ami_alias=cfg.karpenter.ami_alias,
            node_disk_gib=cfg.karpenter.node_disk_gib,
            max_pods_per_node=cfg.karpenter.max_pods_per_node,
            node_pools=cfg.karpenter.node_pools,
            tags=cfg.all_tags,
            system_nodes=nodes.node_group,
        ),
        opts=k8s_opts,
    )
    PodAutoscaling(
        f"{prefix}-pod-autoscaling",
        PodAutoscalingArgs(
            metrics_server_chart=charts["metrics-server"],
            metrics_server_values=values("metrics-server"),
            vpa_chart=charts["vertical-pod-autoscaler"],
            vpa_values=values("vertical-pod-autoscaler"),
            high_availability=cfg.production,
            recommend_for=(
                ("kube-system", "karpenter"),
                ("kube-system", "coredns"),
                ("kube-system", "ebs-csi-controller"),
                ("kube-system", "metrics-server"),
            ),
            system_nodes=nodes.node_group,
        ),
        opts=k8s_opts,
    )

    namespaces = Namespaces(
        f"{prefix}-namespaces",
        NamespacesArgs(
            namespaces={
                "external-secrets": "baseline",
                "monitoring": "privileged",
                "argocd": "baseline",
                # Service namespaces belong to the platform (Pod Security), not to ArgoCD.
                **{svc.name: "restricted" for svc in cfg.delivery.services},
            }
        ),
        opts=k8s_opts,
    )
    receiver_url = cfg.secret("alertReceiverUrl")
    if receiver_url is None:
        pulumi.log.warn(
            "eks-platform:alertReceiverUrl is not set: Alertmanager routes alerts to no receiver. "
            "Set it with `pulumi config set --secret alertReceiverUrl https://...`."
        )
    gitops_secret = cfg.delivery.gitops.credentials_secret
    targets = [SecretTarget(namespace="monitoring", name="grafana-admin", remote=f"{prefix}/grafana-admin")]
    if receiver_url is not None:
        targets.append(
            SecretTarget(
                namespace="monitoring", name="alertmanager-receiver", remote=f"{prefix}/alertmanager-receiver"
            )
        )
    if gitops_secret is not None:
        targets.append(
            SecretTarget(
                namespace="argocd",
                name="gitops-repository",
                remote=gitops_secret,
                labels={"argocd.argoproj.io/secret-type": "repository"},
            )
        )
    sso = cfg.delivery.gitops.sso
    if sso is not None:
        # Argo CD's OIDC client secret: put by an operator into `<prefix>/<name>` (docs/argocd-sso.md),
        # brought into `argocd` with the label Argo CD requires before it resolves `$<secret>:<key>`.
        targets.append(
            SecretTarget(
                namespace="argocd",
                name=sso.client_secret_name,
                remote=f"{prefix}/{sso.client_secret_name}",
                labels=ARGOCD_SECRET_LABELS,
            )
        )
    secrets = Secrets(
        f"{prefix}-secrets",
        SecretsArgs(
            identity=identity,
            prefix=prefix,
            cluster_name=cluster.cluster_name,
            cluster_arn=cluster_arn,
            recovery_window_days=30 if cfg.production else 0,
            key_deletion_window_days=key_window(cfg),
            chart=charts["external-secrets"],
            base_values=values("external-secrets"),
            high_availability=cfg.production,
            protect=cfg.protect,
            alert_receiver_url=receiver_url,
            alert_receiver_key=RECEIVER_KEYS[cfg.monitoring.receiver],
            external_secret_names=(gitops_secret,) if gitops_secret else (),
            operator_secrets=(
                (
                    (
                        sso.client_secret_name,
                        "Argo CD OIDC client secret: JSON key clientSecret (put by an operator)",
                    ),
                )
                if sso is not None
                else ()
            ),
            targets=tuple(targets),
            depends_on=[namespaces, nodes.node_group],
        ),
        opts=k8s_opts,
    )

    monitoring = Monitoring(
        f"{prefix}-monitoring",
        MonitoringArgs(
            crd_chart=charts["prometheus-operator-crds"],
            chart=charts["kube-prometheus-stack"],
            base_values=values("kube-prometheus-stack"),
            high_availability=cfg.production,
            retention=cfg.monitoring.retention,
            retention_size=cfg.monitoring.retention_size,
            storage_gib=cfg.monitoring.storage_gib,
            receiver=cfg.monitoring.receiver if receiver_url is not None else None,
            rules=manifests("monitoring/rules"),
            service_monitors=manifests("monitoring/servicemonitors"),
            dashboards=dashboards(),
            protect=cfg.protect,
            # Its namespace and Secrets first; Prometheus runs on Karpenter's nodes; its volumes
            # need the EBS CSI driver and the StorageClass (add-ons), which on destroy must
            # outlive the PVCs so the volumes are deleted, not left behind.
            depends_on=[namespaces, secrets, karpenter, addons],
        ),
        opts=k8s_opts,
    )

    return Services(k8s_opts, karpenter, namespaces, secrets, addons, monitoring)


# -- phase 4: delivery ---------------------------------------------------------------------------


def delivery(cfg: PlatformConfig, base: Foundation, core: ClusterPhase, services: Services) -> dict[str, Any]:
    """Registries and CI roles for the services, and ArgoCD with the stack's root Application."""
    prefix, identity = cfg.prefix, base.identity
    charts = chart_specs()
    registry = Registry(
        f"{prefix}-registry",
        RegistryArgs(
            identity=identity,
            prefix=prefix,
            services=tuple(
                ServiceRegistry(name=s.name, github_repository=s.github_repository, branch=s.branch)
                for s in cfg.delivery.services
            ),
            existing_oidc_provider_arn=cfg.delivery.github_oidc_provider_arn,
            keep_tagged_images=cfg.delivery.keep_tagged_images,
            untagged_image_days=cfg.delivery.untagged_image_days,
            key_deletion_window_days=key_window(cfg),
            protect=cfg.protect,
        ),
        opts=base.aws_only,
    )

    gitops = cfg.delivery.gitops
    argocd = GitOps(
        f"{prefix}-gitops",
        GitOpsArgs(
            chart=charts["argo-cd"],
            base_values=values("argocd"),
            high_availability=cfg.production,
            repo_url=gitops.repo_url,
            revision=gitops.revision,
            path=gitops.folder(cfg.stack),
            service_namespaces=tuple(svc.name for svc in cfg.delivery.services),
            labels={
                "eks-platform.io/environment": cfg.stack,
                "eks-platform.io/region": cfg.region,
                "eks-platform.io/cluster": cfg.cluster_name,
            },
            annotations={
                "eks-platform.io/account-id": identity.account_id,
                "eks-platform.io/ecr-registry": registry.registry,
                "eks-platform.io/repository-urls": registry.repository_urls.apply(json.dumps),
                "eks-platform.io/secret-store": services.secrets.store_name,
            },
            sso=None
            if gitops.sso is None
            else SsoArgs(
                issuer=gitops.sso.issuer,
                client_id=gitops.sso.client_id,
                secret_name=gitops.sso.client_secret_name,
                url=gitops.sso.url,
                display_name=gitops.sso.display_name,
                requested_scopes=gitops.sso.requested_scopes,
                groups_claim=gitops.sso.groups_claim,
                admin_groups=gitops.sso.admin_groups,
                read_only_groups=gitops.sso.read_only_groups,
            ),
            # prod's redis-ha claims volumes (argo-cd 10.1.1 / redis-ha 4.38.0 persistentVolume).
            depends_on=[services.namespaces, services.secrets, services.addons, core.nodes.node_group],
        ),
        opts=services.k8s_opts,
    )

    # Last: a first install's Helm hooks run before any policy exists; the policies keep DNS and the
    # API server open for later upgrades' hooks (docs/network-policies.md).
    NetworkPolicies(
        f"{prefix}-network-policies",
        NetworkPoliciesArgs(
            vpc_cidr=str(cfg.network.cidr),
            service_namespaces=tuple(svc.name for svc in cfg.delivery.services),
            depends_on=[services.namespaces, services.secrets, services.monitoring, argocd],
        ),
        opts=services.k8s_opts,
    )

    return {
        "karpenterNodeRoleArn": services.karpenter.node_role_arn,
        "karpenterInterruptionQueue": services.karpenter.queue_name,
        "repositoryUrls": registry.repository_urls,
        "ciRoleArns": registry.ci_role_arns,
        "secretStore": services.secrets.store_name,
    }
