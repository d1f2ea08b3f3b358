"""The composition: build the platform's components for one validated stack config."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_pulumiservice as ps
import pulumi_random as random

from components.addons import ClusterAddons, ClusterAddonsArgs
from components.autoscaling import PodAutoscaling, PodAutoscalingArgs
from components.cluster import Cluster, ClusterArgs
from components.deployments import Deployments, DeploymentsArgs
from components.gitops import GitOps, GitOpsArgs
from components.identity import lookup
from components.karpenter import Karpenter, KarpenterArgs
from components.kms import EncryptionKey, EncryptionKeyArgs
from components.monitoring import RECEIVER_KEYS, Monitoring, MonitoringArgs
from components.namespaces import Namespaces, NamespacesArgs
from components.network import Network, NetworkArgs
from components.nodegroups import SystemNodeGroup, SystemNodeGroupArgs
from components.registry import Registry, RegistryArgs, ServiceRegistry
from components.secrets import Secrets, SecretsArgs, SecretTarget
from stacks.config import PlatformConfig
from stacks.data import addon_versions, chart_specs, dashboards, manifests, values


def build(cfg: PlatformConfig) -> dict[str, Any]:
    """Create every resource of the stack; return the stack outputs."""
    prefix = cfg.prefix
    tags = cfg.all_tags
    aws_provider = aws.Provider(
        f"{prefix}-aws",
        region=cfg.region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
    )
    aws_only = pulumi.ResourceOptions(providers={"aws": aws_provider})
    identity = lookup(aws_provider)
    zones = identity.availability_zones[: cfg.network.az_count]
    if len(zones) < cfg.network.az_count:
        raise pulumi.RunError(
            f"Pulumi.{cfg.stack}.yaml: eks-platform:network.azCount = {cfg.network.az_count}, "
            f"but {cfg.region} offers only {len(zones)} AZs: {', '.join(zones)}"
        )
    versions = addon_versions(cfg.cluster.kubernetes_version)
    key_window = 30 if cfg.production else 7

    key = EncryptionKey(
        f"{prefix}-logs-secrets",
        EncryptionKeyArgs(
            identity=identity,
            description=f"{prefix}: EKS secrets envelope encryption and platform log groups",
            log_group_patterns=(f"/aws/eks/{cfg.cluster_name}/*", f"/aws/vpc/{prefix}-network/*"),
            deletion_window_days=key_window,
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

    cluster = Cluster(
        f"{prefix}-cluster",
        ClusterArgs(
            identity=identity,
            cluster_name=cfg.cluster_name,
            kubernetes_version=cfg.cluster.kubernetes_version,
            upgrade_support_type=cfg.cluster.upgrade_support_type,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            service_cidr=str(cfg.cluster.service_cidr),
            endpoint_public_access=cfg.cluster.endpoint_public_access,
            public_access_cidrs=tuple(str(c) for c in cfg.cluster.public_access_cidrs),
            admin_role_arns=cfg.cluster.admin_role_arns,
            key_arn=key.key_arn,
            log_retention_days=cfg.cluster.log_retention_days,
            addon_versions=versions,
            protect=cfg.protect,
            tags=tags,
        ),
        opts=aws_only,
    )

    nodes = SystemNodeGroup(
        f"{prefix}-system",
        SystemNodeGroupArgs(
            identity=identity,
            cluster=cluster.eks,
            private_subnet_ids=network.private_subnet_ids,
            instance_types=cfg.system_node_group.instance_types,
            architecture=cfg.system_node_group.architecture,
            ami_family=cfg.system_node_group.ami_family,
            min_size=cfg.system_node_group.min_size,
            desired_size=cfg.system_node_group.desired_size,
            max_size=cfg.system_node_group.max_size,
            disk_size_gib=cfg.system_node_group.disk_size_gib,
            tags=tags,
            prerequisites=cluster.node_prerequisites,
        ),
        opts=aws_only,
    )

    k8s_provider = k8s.Provider(
        f"{prefix}-k8s",
        kubeconfig=cluster.kubeconfig_json,
        enable_server_side_apply=True,
    )
    # Default providers are disabled (Pulumi.yaml): every package gets an explicit one.
    random_provider = random.Provider(f"{prefix}-random")
    k8s_opts = pulumi.ResourceOptions(
        providers={"aws": aws_provider, "kubernetes": k8s_provider, "random": random_provider}
    )
    charts = chart_specs()
    cluster_arn = identity.arn("eks", f"cluster/{cfg.cluster_name}")
    ClusterAddons(
        f"{prefix}-addons",
        ClusterAddonsArgs(
            identity=identity,
            cluster_name=cluster.cluster_name,
            cluster_arn=cluster_arn,
            addon_versions=versions,
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
            tags=tags,
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
    secrets = Secrets(
        f"{prefix}-secrets",
        SecretsArgs(
            identity=identity,
            prefix=prefix,
            cluster_name=cfg.cluster_name,
            cluster_arn=cluster_arn,
            recovery_window_days=30 if cfg.production else 7,
            chart=charts["external-secrets"],
            base_values=values("external-secrets"),
            high_availability=cfg.production,
            protect=cfg.protect,
            alert_receiver_url=receiver_url,
            alert_receiver_key=RECEIVER_KEYS[cfg.monitoring.receiver],
            external_secret_names=(gitops_secret,) if gitops_secret else (),
            targets=tuple(targets),
            depends_on=[namespaces, nodes.node_group],
        ),
        opts=k8s_opts,
    )

    Monitoring(
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
            # Its namespace and Secrets first; Prometheus runs on Karpenter's nodes.
            depends_on=[namespaces, secrets, karpenter],
        ),
        opts=k8s_opts,
    )

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
            key_deletion_window_days=key_window,
            protect=cfg.protect,
        ),
        opts=aws_only,
    )

    gitops = cfg.delivery.gitops
    GitOps(
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
                "eks-platform.io/secret-store": secrets.store_name,
            },
            depends_on=[namespaces, secrets, nodes.node_group],
        ),
        opts=k8s_opts,
    )

    outputs: dict[str, Any] = {}
    deploy = cfg.deployments
    if deploy.enabled:
        deployments = Deployments(
            f"{prefix}-deployments",
            DeploymentsArgs(
                organization=deploy.organization,
                project=cfg.project,
                stack=cfg.stack,
                region=cfg.region,
                github_repository=deploy.github_repository,
                branch=deploy.branch,
                repo_dir=deploy.repo_dir,
                existing_oidc_provider_arn=deploy.pulumi_oidc_provider_arn,
                role_policy_arns=deploy.role_policy_arns,
                protect=cfg.protect,
            ),
            # The Pulumi Cloud provider reads PULUMI_ACCESS_TOKEN, as the CLI does.
            opts=pulumi.ResourceOptions(
                providers={"aws": aws_provider, "pulumiservice": ps.Provider(f"{prefix}-pulumiservice")}
            ),
        )
        outputs["deployRoleArn"] = deployments.role_arn

    return outputs | {
        "clusterName": cluster.cluster_name,
        "clusterEndpoint": cluster.endpoint,
        "kubeconfig": cluster.kubeconfig_json,
        "vpcId": network.vpc_id,
        "privateSubnetIds": network.private_subnet_ids,
        "publicSubnetIds": network.public_subnet_ids,
        "oidcProviderArn": cluster.oidc_provider_arn,
        "nodeRoleArn": nodes.node_role_arn,
        "karpenterNodeRoleArn": karpenter.node_role_arn,
        "karpenterInterruptionQueue": karpenter.queue_name,
        "repositoryUrls": registry.repository_urls,
        "ciRoleArns": registry.ci_role_arns,
        "secretStore": secrets.store_name,
    }
