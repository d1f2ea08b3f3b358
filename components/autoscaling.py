"""Pod autoscaling: metrics-server (so HPAs work) and the Vertical Pod Autoscaler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.helm import ChartSpec, merge, release

NAMESPACE = "kube-system"
ZONE_SPREAD_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"


@dataclass(frozen=True, kw_only=True)
class PodAutoscalingArgs:
    metrics_server_chart: ChartSpec
    metrics_server_values: dict[str, Any]
    vpa_chart: ChartSpec
    vpa_values: dict[str, Any]
    # Two replicas, PDBs and zone spread (prod); one replica and no PDB otherwise.
    high_availability: bool
    # Platform controllers that get a recommendation-only VPA: (namespace, Deployment name).
    recommend_for: tuple[tuple[str, str], ...]
    # The system nodes the controllers run on.
    system_nodes: pulumi.Resource


def _anti_affinity(labels: dict[str, str]) -> dict[str, Any]:
    """Never two replicas on one node (required), and prefer different zones.

    Used where a chart renders `affinity` but no topology spread (VPA 0.11.0), and beside the zone
    spread where a soft spread alone could leave both replicas on one node (metrics-server).
    """
    selector = {"matchLabels": labels}
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": selector, "topologyKey": HOST_KEY}
            ],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {"labelSelector": selector, "topologyKey": ZONE_SPREAD_KEY},
                }
            ],
        }
    }


def _zone_spread(labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "maxSkew": 1,
            "topologyKey": ZONE_SPREAD_KEY,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": labels},
        }
    ]


class PodAutoscaling(pulumi.ComponentResource):
    """The metrics pipeline HPAs need and the VPA, both on the system nodes.

    Guarantees: pinned charts; metrics-server with 2 replicas, a PDB and zone spread in prod
    (a single replica elsewhere: HPAs pause, nothing breaks, while it restarts); VPA recommender,
    updater and admission controller likewise, with the webhook failing open; a VPA in `Off`
    mode (recommendations only, never evictions) for each platform controller, so their
    requests can be tuned from data. It does not create HPAs: services own theirs (chart).
    """

    def __init__(self, name: str, args: PodAutoscalingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:autoscaling:PodAutoscaling", name, None, opts)
        ha = args.high_availability
        on_nodes = pulumi.ResourceOptions(parent=self, depends_on=[args.system_nodes])

        metrics_overrides: dict[str, Any] = {
            "replicas": 2 if ha else 1,
            "podDisruptionBudget": {"enabled": ha, "minAvailable": 1} if ha else {"enabled": False},
        }
        if ha:
            labels = {
                "app.kubernetes.io/name": "metrics-server",
                "app.kubernetes.io/instance": "metrics-server",
            }
            metrics_overrides["topologySpreadConstraints"] = _zone_spread(labels)
            metrics_overrides["affinity"] = _anti_affinity(labels)
        release(
            f"{name}-metrics-server",
            release_name="metrics-server",
            namespace=NAMESPACE,
            spec=args.metrics_server_chart,
            values=merge(args.metrics_server_values, metrics_overrides),
            opts=on_nodes,
        )

        vpa_overrides: dict[str, Any] = {}
        for part in ("recommender", "updater", "admissionController"):
            vpa_overrides[part] = {
                "replicas": 2 if ha else 1,
                # A one-replica PDB with minAvailable 1 would block every node drain.
                "podDisruptionBudget": {"enabled": ha},
            }
            if ha:
                # VPA chart 0.11.0 renders no topologySpreadConstraints (no template reads them), only
                # `affinity`, which replaces its default soft hostname anti-affinity: both go here.
                vpa_overrides[part]["affinity"] = _anti_affinity(
                    {
                        "app.kubernetes.io/instance": "vertical-pod-autoscaler",
                        "app.kubernetes.io/component": part.replace(
                            "admissionController", "admission-controller"
                        ),
                    }
                )
        vpa = release(
            f"{name}-vpa",
            release_name="vertical-pod-autoscaler",
            namespace=NAMESPACE,
            spec=args.vpa_chart,
            values=merge(args.vpa_values, vpa_overrides),
            opts=on_nodes,
        )

        for namespace, deployment in args.recommend_for:
            k8s.apiextensions.CustomResource(
                f"{name}-vpa-{deployment}",
                api_version="autoscaling.k8s.io/v1",
                kind="VerticalPodAutoscaler",
                metadata={"name": deployment, "namespace": namespace},
                spec={
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
                    "updatePolicy": {"updateMode": "Off"},
                },
                # The VPA chart installs the CRD.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[vpa]),
            )
        self.register_outputs({})
