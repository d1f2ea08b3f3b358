"""Where each chart the platform installs keeps its workloads' settings (values paths and defaults).

A Helm release's inputs show its values, not the rendered pods, so the Helm rules need to know,
per chart, which values key holds each workload's replicas, PDB switch, resources and node
selector, and what the chart does when the key is absent (the chart's values.yaml at the pinned
version). A chart without a profile is reported (advisory `helm-chart-profile-known`) instead of
silently passing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policy.props import falsy, get, is_map, truthy

# The system node group's label (components/nodegroups.py); add-ons that keep the cluster running
# are pinned to it so they never depend on the Karpenter nodes they manage or serve.
SYSTEM_NODE_LABEL = ("eks-platform.io/node-pool", "system")


@dataclass(frozen=True, kw_only=True)
class Workload:
    """One Deployment/StatefulSet/DaemonSet of a chart, described by values paths.

    `replicas` is None where one replica is the design (a sharded or single-writer workload);
    `pdb` is None where the chart has no PDB for it; `placement` is empty where the workload
    deliberately runs outside the system nodes (a DaemonSet, or Prometheus on Karpenter nodes).
    """

    name: str
    resources: str
    replicas: str | None = None
    replicas_default: int = 1
    pdb: str | None = None
    pdb_default: bool = False
    placement: tuple[str, ...] = ()
    enabled: str | None = None
    enabled_default: bool = True

    def on(self, values: Mapping[str, Any]) -> bool:
        if self.enabled is None:
            return True
        flag = get(values, self.enabled)
        return self.enabled_default if flag is None else truthy(flag)

    def replica_count(self, values: Mapping[str, Any]) -> int | None:
        if self.replicas is None:
            return None
        count = get(values, self.replicas, self.replicas_default)
        return int(count) if isinstance(count, int | float) else None

    def pdb_on(self, values: Mapping[str, Any]) -> bool | None:
        if self.pdb is None:
            return None
        flag = get(values, self.pdb)
        if flag is None:
            return self.pdb_default
        if is_map(flag):  # a PDB spec (karpenter's `podDisruptionBudget`): on unless disabled
            return len(flag) > 0 and not falsy(flag.get("enabled"))
        return truthy(flag)

    def node_selector(self, values: Mapping[str, Any]) -> Mapping[str, Any] | None:
        for path in self.placement:
            found = get(values, path)
            if is_map(found):
                return found  # type: ignore[no-any-return]
        return None


def _vpa(component: str) -> Workload:
    return Workload(
        name=f"vpa-{component}",
        resources=f"{component}.resources",
        replicas=f"{component}.replicas",
        replicas_default=2,
        pdb=f"{component}.podDisruptionBudget.enabled",
        pdb_default=True,
        placement=(f"{component}.nodeSelector",),
        enabled=f"{component}.enabled",
    )


def _argocd(key: str, name: str, *, ha: bool = True) -> Workload:
    return Workload(
        name=name,
        resources=f"{key}.resources",
        replicas=f"{key}.replicas" if ha else None,
        pdb=f"{key}.pdb.enabled",
        placement=(f"{key}.nodeSelector", "global.nodeSelector"),
    )


def _redis_ha(key: str) -> Workload:
    return Workload(
        name=f"argocd-redis-ha-{key}",
        resources=f"redis-ha.{key}.resources",
        # redis-ha is a sub-chart of its own: Argo CD's `global.nodeSelector` does not reach it.
        # redis-ha 4.38.0 places HAProxy with the top-level `nodeSelector` as well
        # (templates/redis-haproxy-deployment.yaml); it reads no `haproxy.nodeSelector`.
        placement=("redis-ha.nodeSelector",),
        enabled="redis-ha.enabled",
        enabled_default=False,
    )


PROFILES: dict[str, tuple[Workload, ...]] = {
    # CRD-only charts: nothing runs.
    "karpenter-crd": (),
    "prometheus-operator-crds": (),
    "karpenter": (
        Workload(
            name="karpenter",
            resources="controller.resources",
            replicas="replicas",
            replicas_default=2,
            pdb="podDisruptionBudget",
            pdb_default=True,
            placement=("nodeSelector",),
        ),
    ),
    "metrics-server": (
        Workload(
            name="metrics-server",
            resources="resources",
            replicas="replicas",
            pdb="podDisruptionBudget.enabled",
            placement=("nodeSelector",),
        ),
    ),
    "vertical-pod-autoscaler": (_vpa("recommender"), _vpa("updater"), _vpa("admissionController")),
    "external-secrets": (
        Workload(
            name="external-secrets",
            resources="resources",
            replicas="replicaCount",
            pdb="podDisruptionBudget.enabled",
            placement=("nodeSelector",),
        ),
        Workload(
            name="external-secrets-webhook",
            resources="webhook.resources",
            replicas="webhook.replicaCount",
            pdb="webhook.podDisruptionBudget.enabled",
            placement=("webhook.nodeSelector",),
        ),
        # Rotates the webhook's certificate; one replica is enough (a restart only delays rotation).
        Workload(
            name="external-secrets-cert-controller",
            resources="certController.resources",
            placement=("certController.nodeSelector",),
            enabled="certController.create",
        ),
    ),
    "argo-cd": (
        # The application controller shards clusters across replicas: one is right for one cluster.
        _argocd("controller", "argocd-application-controller", ha=False),
        _argocd("server", "argocd-server"),
        _argocd("repoServer", "argocd-repo-server"),
        _argocd("applicationSet", "argocd-applicationset-controller"),
        Workload(
            name="argocd-notifications-controller",
            resources="notifications.resources",
            placement=("notifications.nodeSelector", "global.nodeSelector"),
            enabled="notifications.enabled",
        ),
        Workload(
            name="argocd-redis",
            resources="redis.resources",
            placement=("redis.nodeSelector", "global.nodeSelector"),
            enabled="redis.enabled",
        ),
        _redis_ha("redis"),
        _redis_ha("sentinel"),
        _redis_ha("haproxy"),
    ),
    "kube-prometheus-stack": (
        Workload(
            name="prometheus",
            resources="prometheus.prometheusSpec.resources",
            replicas="prometheus.prometheusSpec.replicas",
            pdb="prometheus.podDisruptionBudget.enabled",
        ),
        Workload(
            name="alertmanager",
            resources="alertmanager.alertmanagerSpec.resources",
            replicas="alertmanager.alertmanagerSpec.replicas",
            pdb="alertmanager.podDisruptionBudget.enabled",
            placement=("alertmanager.alertmanagerSpec.nodeSelector",),
        ),
        Workload(
            name="prometheus-operator",
            resources="prometheusOperator.resources",
            placement=("prometheusOperator.nodeSelector",),
        ),
        # Single replica with a ReadWriteOnce volume: Grafana's SQLite has one writer.
        Workload(name="grafana", resources="grafana.resources", placement=("grafana.nodeSelector",)),
        Workload(
            name="kube-state-metrics",
            resources="kube-state-metrics.resources",
            placement=("kube-state-metrics.nodeSelector",),
        ),
        # A DaemonSet: it runs on every node by design.
        Workload(name="node-exporter", resources="prometheus-node-exporter.resources"),
    ),
}


def chart_name(props: Mapping[str, Any]) -> str:
    """`argo-cd` for "argo-cd", "argo/argo-cd" and "oci://registry/argo-cd"."""
    return str(get(props, "chart", "")).rstrip("/").rsplit("/", 1)[-1]


def workloads(props: Mapping[str, Any]) -> tuple[Workload, ...] | None:
    """The running workloads of a release, or None when the chart has no profile."""
    profile = PROFILES.get(chart_name(props))
    if profile is None:
        return None
    values = get(props, "values")
    return tuple(w for w in profile if w.on(values if is_map(values) else {}))
