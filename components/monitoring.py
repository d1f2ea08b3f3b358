"""Monitoring: kube-prometheus-stack (Prometheus, Alertmanager, Grafana) and the platform's rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.helm import ChartSpec, merge, release

NAMESPACE = "monitoring"
# The file Alertmanager reads the receiver URL from, per receiver kind (platform/values/...).
RECEIVER_KEYS = {"slack": "slack-api-url", "webhook": "webhook-url"}


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    crd_chart: ChartSpec
    chart: ChartSpec
    base_values: dict[str, Any]
    high_availability: bool
    retention: str
    retention_size: str
    storage_gib: int
    # True (prod): Prometheus' and Alertmanager's claims outlive their StatefulSets, so a replaced
    # release binds the same volumes again (the StorageClass retains them too). False (dev): the
    # claims go with the StatefulSets, and with them their volumes.
    keep_volumes: bool
    # "slack" or "webhook" when a receiver URL is configured; None routes alerts nowhere.
    receiver: str | None
    rules: list[dict[str, Any]]
    service_monitors: list[dict[str, Any]]
    dashboards: dict[str, str]
    protect: bool
    # The namespace, the Grafana/receiver ExternalSecrets, and the nodes Prometheus runs on.
    depends_on: list[pulumi.Resource]


def _spread(selector: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": selector},
        }
    ]


def claim_retention(keep_volumes: bool) -> dict[str, str]:
    """The StatefulSets' `persistentVolumeClaimRetentionPolicy` (apps/v1, GA in Kubernetes 1.32).

    The operator copies it from the Prometheus/Alertmanager spec onto the StatefulSet it creates
    (prometheus-operator v0.93.0 pkg/prometheus/server/statefulset.go, pkg/alertmanager/statefulset.go;
    field in the CRDs of prometheus-operator-crds 31.0.1), and kube-prometheus-stack 88.5.3 passes
    `*Spec.persistentVolumeClaimRetentionPolicy` through (templates/prometheus/prometheus.yaml,
    templates/alertmanager/alertmanager.yaml). With `whenDeleted: Delete` the StatefulSet controller
    makes the StatefulSet own the claims, so the garbage collector deletes them when the release's
    uninstall deletes the custom resource (and with it the StatefulSet). Scale-down keeps claims in
    both stacks: a replica count lowered by mistake must not delete data.
    """
    return {"whenDeleted": "Retain" if keep_volumes else "Delete", "whenScaled": "Retain"}


def stack_values(args: MonitoringArgs) -> dict[str, Any]:
    """What differs per stack: replicas, PDBs, zone spread, retention, storage, claims, receiver."""
    ha = args.high_availability
    retention = claim_retention(args.keep_volumes)
    prometheus: dict[str, Any] = {
        "replicas": 2 if ha else 1,
        "retention": args.retention,
        "retentionSize": args.retention_size,
        "storageSpec": {
            "volumeClaimTemplate": {"spec": {"resources": {"requests": {"storage": f"{args.storage_gib}Gi"}}}}
        },
        "persistentVolumeClaimRetentionPolicy": retention,
    }
    alertmanager: dict[str, Any] = {
        "replicas": 3 if ha else 1,
        "persistentVolumeClaimRetentionPolicy": retention,
    }
    if ha:
        prometheus["topologySpreadConstraints"] = _spread({"app.kubernetes.io/name": "prometheus"})
        alertmanager["topologySpreadConstraints"] = _spread({"app.kubernetes.io/name": "alertmanager"})
    values: dict[str, Any] = {
        "crds": {"enabled": False},  # the prometheus-operator-crds release owns them
        "prometheus": {
            "prometheusSpec": prometheus,
            "podDisruptionBudget": {"enabled": ha, "minAvailable": 1},
        },
        "alertmanager": {
            "alertmanagerSpec": alertmanager,
            "podDisruptionBudget": {"enabled": ha, "minAvailable": 2},
        },
    }
    if args.receiver is None:
        # No URL configured: no secret to mount, and every alert goes to the null receiver.
        values["alertmanager"]["alertmanagerSpec"]["secrets"] = []
        values["alertmanager"]["config"] = {"route": {"receiver": "null"}}
    else:
        values["alertmanager"]["config"] = {"route": {"receiver": args.receiver}}
    return values


class Monitoring(pulumi.ComponentResource):
    """kube-prometheus-stack with the platform's rules, monitors and dashboards.

    Guarantees: pinned charts; the operator's CRDs in their own release (templates, so they upgrade
    with it; protected in prod, because uninstalling it deletes every monitor and rule); Prometheus
    scrapes every ServiceMonitor/PodMonitor/rule in the cluster, keeps data for the configured
    retention on encrypted gp3 volumes (retained in prod through the StorageClass and the claims'
    retention policy; in dev the claims, and so the volumes, go with their StatefulSets), with 2 replicas,
    a PDB and zone spread in prod; Alertmanager runs 3 replicas in prod and reads its receiver URL
    from a Secret (External Secrets, from Secrets Manager), never from values; Grafana's admin
    login comes from the `grafana-admin` Secret; dashboards under platform/dashboards/ load through
    the sidecar. Rules and ServiceMonitors come from platform/monitoring/.
    """

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:monitoring:Monitoring", name, None, opts)
        crds = release(
            f"{name}-crds",
            release_name="prometheus-operator-crds",
            namespace=NAMESPACE,
            spec=args.crd_chart,
            # Helm leaves a resource with this annotation in place on uninstall or replace, so a
            # lost release never deletes every ServiceMonitor and rule (the `crds` subchart of
            # prometheus-operator-crds adds `crds.annotations` to each CRD).
            values={"crds": {"annotations": {"helm.sh/resource-policy": "keep"}}},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, depends_on=args.depends_on),
        )
        stack = release(
            f"{name}-stack",
            release_name="kube-prometheus-stack",
            namespace=NAMESPACE,
            spec=args.chart,
            skip_crds=True,
            values=merge(args.base_values, stack_values(args)),
            timeout_seconds=900,  # Prometheus may wait for Karpenter to launch its node
            opts=pulumi.ResourceOptions(parent=self, depends_on=[crds, *args.depends_on]),
        )
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=[crds])
        for obj in [*args.rules, *args.service_monitors]:
            meta = obj["metadata"]
            k8s.apiextensions.CustomResource(
                f"{name}-{obj['kind'].lower()}-{meta.get('namespace', NAMESPACE)}-{meta['name']}",
                api_version=obj["apiVersion"],
                kind=obj["kind"],
                metadata=meta,
                spec=obj["spec"],
                opts=after_crds,
            )
        # Raw ConfigMaps (no typed core/v1 class: see components/namespaces.py).
        k8s.yaml.v2.ConfigGroup(
            f"{name}-dashboards",
            objs=[
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": f"dashboard-{stem}",
                        "namespace": NAMESPACE,
                        "labels": {"grafana_dashboard": "1"},
                        "annotations": {"grafana_folder": "EKS Platform"},
                    },
                    "data": {f"{stem}.json": text},
                }
                for stem, text in args.dashboards.items()
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[stack]),
        )
        self.register_outputs({})
