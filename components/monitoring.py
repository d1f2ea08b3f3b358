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
    # True (prod): Prometheus, Alertmanager and Grafana keep their data on claims of this
    # StorageClass (which retains the volumes), and the claims outlive their StatefulSets, so a
    # replaced release binds the same volumes again. False (dev): no claim at all; each keeps its
    # data in an emptyDir on its node's disk (see `storage_values`).
    persistent: bool
    storage_class: str
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


# Alertmanager's silences and notification log: a few MiB; the room its claim (prod) or emptyDir
# (dev) gets.
ALERTMANAGER_GIB = 2
# Kept by prod's claims when their StatefulSet is deleted or scaled down (apps/v1
# `persistentVolumeClaimRetentionPolicy`): a replaced release binds the same volumes again, and a
# replica count lowered by mistake deletes no data.
KEEP_CLAIMS = {"whenDeleted": "Retain", "whenScaled": "Retain"}


def _claim(storage_class: str, gib: int) -> dict[str, Any]:
    spec = {
        "storageClassName": storage_class,
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{gib}Gi"}},
    }
    return {"volumeClaimTemplate": {"spec": spec}}


def storage_values(args: MonitoringArgs) -> dict[str, Any]:
    """Where Prometheus, Alertmanager and Grafana keep their data: claims in prod, none in dev.

    Prod: claims of the retaining StorageClass, kept when their StatefulSets go (listed in
    docs/retiring-a-stack.md). Dev has no claim to leak: a destroy deletes the namespace and then
    the EBS CSI add-on, and nothing awaits a deleted claim's volume (the provisioner refuses
    DeleteVolume while the volume is still attached: kubernetes-csi/external-provisioner
    pkg/controller/controller.go `canDeleteVolume`), so a volume may be left (platform/teardown.yaml).

    Without a claim, prometheus-operator gives the StatefulSet an emptyDir (`storage.emptyDir`, or
    nothing set; v0.93.0 pkg/prometheus/server/statefulset.go and pkg/alertmanager/statefulset.go,
    the `switch` on the storage spec), capped by `sizeLimit` (in the Prometheus and Alertmanager
    CRDs of v0.93.0). The kubelet evicts a pod whose emptyDir outgrows its sizeLimit (kubernetes
    pkg/kubelet/eviction/eviction_manager.go `emptyDirLimitEviction`), so
    `retentionSize` (85 % of it) prunes first. The Prometheus container asks for that much ephemeral
    storage, so it is scheduled (and Karpenter launches a node) only where the disk has room.
    Grafana without persistence mounts an emptyDir (grafana 12.11.1 templates/_pod.tpl, volume
    `storage`). kube-prometheus-stack 88.5.3 passes `storageSpec` and `storage` through as they are
    (templates/prometheus/prometheus.yaml, templates/alertmanager/alertmanager.yaml).
    """
    gib = args.storage_gib
    if args.persistent:
        return {
            "prometheus": {
                "prometheusSpec": {
                    "storageSpec": _claim(args.storage_class, gib),
                    "persistentVolumeClaimRetentionPolicy": KEEP_CLAIMS,
                }
            },
            "alertmanager": {
                "alertmanagerSpec": {
                    "storage": _claim(args.storage_class, ALERTMANAGER_GIB),
                    "persistentVolumeClaimRetentionPolicy": KEEP_CLAIMS,
                }
            },
            "grafana": {"persistence": {"enabled": True, "storageClassName": args.storage_class}},
        }
    return {
        "prometheus": {
            "prometheusSpec": {
                "storageSpec": {"emptyDir": {"sizeLimit": f"{gib}Gi"}},
                "resources": {"requests": {"ephemeral-storage": f"{gib}Gi"}},
            }
        },
        "alertmanager": {
            "alertmanagerSpec": {"storage": {"emptyDir": {"sizeLimit": f"{ALERTMANAGER_GIB}Gi"}}}
        },
        "grafana": {"persistence": {"enabled": False}},
    }


def stack_values(args: MonitoringArgs) -> dict[str, Any]:
    """What differs per stack: replicas, PDBs, zone spread, retention, storage, receiver."""
    ha = args.high_availability
    prometheus: dict[str, Any] = {
        "replicas": 2 if ha else 1,
        "retention": args.retention,
        "retentionSize": args.retention_size,
    }
    alertmanager: dict[str, Any] = {"replicas": 3 if ha else 1}
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
    values = merge(values, storage_values(args))
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
    scrapes every ServiceMonitor/PodMonitor/rule in the cluster and keeps data for the configured
    retention: in prod on encrypted gp3 volumes (retained through the StorageClass and the claims'
    retention policy), with 2 replicas, a PDB and zone spread; in dev on its node's disk (an
    emptyDir with a size limit: no claim, so no volume a destroy could leave, and Alertmanager and
    Grafana likewise); Alertmanager runs 3 replicas in prod and reads its receiver URL from a
    Secret (External Secrets, from Secrets Manager), never from values; Grafana's admin login
    comes from the `grafana-admin` Secret; dashboards under platform/dashboards/ load through the
    sidecar. Rules and ServiceMonitors come from platform/monitoring/.
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
