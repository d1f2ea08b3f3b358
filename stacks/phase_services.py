"""Phase 3 of the composition (stacks/platform.py): every Kubernetes object but GitOps.

EKS add-ons, Karpenter, pod autoscaling, namespaces, secrets (External Secrets) and monitoring.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.addons import STORAGE_CLASS, ClusterAddons, ClusterAddonsArgs
from components.autoscaling import PodAutoscaling, PodAutoscalingArgs
from components.gitops import ARGOCD_SECRET_LABELS
from components.karpenter import BusinessHours, Karpenter, KarpenterArgs, NodePoolArgs, Taint
from components.monitoring import RECEIVER_KEYS, Monitoring, MonitoringArgs
from components.namespaces import Namespaces, NamespacesArgs
from components.secrets import Secrets, SecretsArgs, SecretTarget
from stacks.config import PlatformConfig
from stacks.data import addon_versions, chart_specs, dashboards, manifests, values
from stacks.phase_base import ClusterPhase, Foundation, key_window
from stacks.scaling import NodePoolConfig


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
    # One decision for the monitoring data: prod keeps it on volumes that outlive everything (the
    # StorageClass retains them, the StatefulSets keep their claims; docs/retiring-a-stack.md);
    # dev keeps it on its nodes' disks and claims no volume, because a destroy does not await a
    # deleted claim's volume (components/monitoring.py storage_values).
    persistent = cfg.profile.keep_volumes
    addons = ClusterAddons(
        f"{prefix}-addons",
        ClusterAddonsArgs(
            identity=identity,
            permissions_boundary=base.permissions_boundary,
            cluster_name=cluster.cluster_name,
            cluster_arn=cluster_arn,
            addon_versions=addon_versions(cfg.cluster.kubernetes_version),
            coredns_replicas=cfg.profile.coredns_replicas,
            high_availability=cfg.profile.high_availability,
            reclaim_policy="Retain" if persistent else "Delete",
            node_group=nodes.node_group,
            volume_tags=cfg.all_tags,
        ),
        opts=k8s_opts,
    )

    karpenter = Karpenter(
        f"{prefix}-karpenter",
        KarpenterArgs(
            identity=identity,
            permissions_boundary=base.permissions_boundary,
            cluster_name=cfg.cluster_name,
            cluster=cluster.cluster_name,
            cluster_arn=cluster_arn,
            cluster_security_group_id=cluster.cluster_security_group_id,
            crd_chart=charts["karpenter-crd"],
            chart=charts["karpenter"],
            base_values=values("karpenter"),
            high_availability=cfg.profile.high_availability,
            ami_alias=cfg.karpenter.ami_alias,
            node_disk_gib=cfg.karpenter.node_disk_gib,
            max_pods_per_node=cfg.karpenter.max_pods_per_node,
            node_pools=tuple(node_pool_args(p) for p in cfg.karpenter.node_pools),
            tags=cfg.all_tags,
            system_nodes=nodes.node_group,
            dns=addons.coredns,
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
            high_availability=cfg.profile.high_availability,
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
            },
            # Deleting a namespace deletes the claims in it (Prometheus' and Alertmanager's belong to
            # operator-made StatefulSets, which Helm does not delete): the EBS CSI driver, its DNS
            # and the StorageClass must still run then, or the EBS volumes are left behind.
            depends_on=(addons,),
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
            permissions_boundary=base.permissions_boundary,
            prefix=prefix,
            cluster_name=cluster.cluster_name,
            cluster_arn=cluster_arn,
            recovery_window_days=cfg.profile.secret_recovery_window_days,
            key_deletion_window_days=key_window(cfg),
            chart=charts["external-secrets"],
            base_values=values("external-secrets"),
            high_availability=cfg.profile.high_availability,
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
            services=tuple(svc.name for svc in cfg.delivery.services),
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
            high_availability=cfg.profile.high_availability,
            retention=cfg.monitoring.retention,
            retention_size=cfg.monitoring.retention_size,
            storage_gib=cfg.monitoring.storage_gib,
            persistent=persistent,
            storage_class=STORAGE_CLASS,
            receiver=cfg.monitoring.receiver if receiver_url is not None else None,
            rules=manifests("monitoring/rules"),
            service_monitors=manifests("monitoring/servicemonitors"),
            dashboards=dashboards(),
            protect=cfg.protect,
            # Its namespace and Secrets first; Prometheus runs on Karpenter's nodes; prod's claims
            # need the EBS CSI driver and the StorageClass (add-ons), which on destroy must
            # outlive them.
            depends_on=[namespaces, secrets, karpenter, addons],
        ),
        opts=k8s_opts,
    )

    return Services(k8s_opts, karpenter, namespaces, secrets, addons, monitoring)


def node_pool_args(pool: NodePoolConfig) -> NodePoolArgs:
    """A NodePool's config (validated, with its defaults) as the Karpenter component takes it."""
    hours = pool.business_hours
    return NodePoolArgs(
        name=pool.name,
        capacity_types=pool.capacity_types,
        architectures=pool.architectures,
        instance_categories=pool.instance_categories,
        min_generation=pool.min_generation,
        min_cpu=pool.min_cpu,
        cpu_limit=pool.cpu_limit,
        memory_limit_gib=pool.memory_limit_gib,
        expire_after=pool.expire_after,
        termination_grace_period=pool.termination_grace_period,
        consolidation_policy=pool.consolidation_policy,
        consolidate_after=pool.consolidate_after,
        disruption_budget_percent=pool.disruption_budget_percent,
        business_hours=BusinessHours(schedule=hours.schedule, duration=hours.duration) if hours else None,
        taints=tuple(Taint(key=t.key, value=t.value, effect=t.effect) for t in pool.taints),
        weight=pool.weight,
    )
