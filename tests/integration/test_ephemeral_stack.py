"""Real checks against an ephemeral stack (see conftest.py): nodes, Karpenter, HPA, ArgoCD,
Prometheus, External Secrets; and nothing left behind after destroy (test_leaks.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import EphemeralStack

pytestmark = pytest.mark.integration


def wait_for(check: Callable[[], Any], what: str, timeout: int, every: int = 10) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def test_nodes_are_ready(ephemeral: EphemeralStack) -> None:
    nodes = ephemeral.kubectl("get", "nodes", "-o", "json")["items"]
    assert len(nodes) >= 2
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", node["metadata"]["name"]


WORKLOAD = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "it-karpenter", "namespace": "default"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "it-karpenter"}},
        "template": {
            "metadata": {"labels": {"app": "it-karpenter"}},
            "spec": {
                "nodeSelector": {"karpenter.sh/nodepool": "default"},
                "containers": [
                    {
                        "name": "pause",
                        "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                    }
                ],
            },
        },
    },
}


def apply(ephemeral: EphemeralStack, obj: dict[str, Any], tmp: Any) -> None:
    path = tmp / f"{obj['metadata']['name']}-{obj['kind']}.json"
    path.write_text(json.dumps(obj))
    ephemeral.kubectl("apply", "-f", str(path))


def test_karpenter_launches_a_node_for_a_pending_pod_and_removes_it(
    ephemeral: EphemeralStack, tmp_path
) -> None:
    apply(ephemeral, WORKLOAD, tmp_path)
    try:

        def running() -> bool:
            pods = ephemeral.kubectl("get", "pods", "-l", "app=it-karpenter", "-o", "json")["items"]
            return any(p["status"].get("phase") == "Running" for p in pods)

        wait_for(running, "the pod to run on a Karpenter node", timeout=600)
        claims = ephemeral.kubectl("get", "nodeclaims", "-o", "json")["items"]
        assert claims, "Karpenter created a NodeClaim"
    finally:
        ephemeral.kubectl("delete", "deployment", "it-karpenter", "--wait=true")

    def gone() -> bool:
        return not ephemeral.kubectl("get", "nodeclaims", "-o", "json")["items"]

    wait_for(gone, "Karpenter to remove the empty node", timeout=600)


def test_hpa_scales_a_deployment_under_load(ephemeral: EphemeralStack, tmp_path) -> None:
    app = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "it-hpa", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "it-hpa"}},
            "template": {
                "metadata": {"labels": {"app": "it-hpa"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "registry.k8s.io/hpa-example",
                            "ports": [{"containerPort": 80}],
                            "resources": {"requests": {"cpu": "200m"}, "limits": {"cpu": "500m"}},
                        }
                    ]
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "it-hpa", "namespace": "default"},
        "spec": {"selector": {"app": "it-hpa"}, "ports": [{"port": 80}]},
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "it-hpa", "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "it-hpa"},
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                }
            ],
        },
    }
    load = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "it-load", "namespace": "default"},
        "spec": {
            "containers": [
                {
                    "name": "load",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c", "while true; do wget -q -O- http://it-hpa; done"],
                }
            ]
        },
    }
    for obj in (app, service, hpa, load):
        apply(ephemeral, obj, tmp_path)
    try:

        def scaled() -> int:
            status = ephemeral.kubectl("get", "hpa", "it-hpa", "-o", "json")["status"]
            replicas = int(status.get("currentReplicas", 0))
            return replicas if replicas > 1 else 0

        wait_for(scaled, "the HPA to add replicas", timeout=600)
    finally:
        for kind, name in (
            ("pod", "it-load"),
            ("hpa", "it-hpa"),
            ("service", "it-hpa"),
            ("deployment", "it-hpa"),
        ):
            ephemeral.kubectl("delete", kind, name, "--ignore-not-found")


def test_argocd_root_app_is_synced_and_healthy(ephemeral: EphemeralStack) -> None:
    def status() -> tuple[str, str] | None:
        app = ephemeral.kubectl("-n", "argocd", "get", "application", "root", "-o", "json")
        sync = app.get("status", {}).get("sync", {}).get("status")
        health = app.get("status", {}).get("health", {}).get("status")
        return (sync, health) if (sync, health) == ("Synced", "Healthy") else None

    wait_for(status, "the root Application to be Synced and Healthy", timeout=600)


def test_prometheus_scrapes_the_platform(ephemeral: EphemeralStack) -> None:
    raw = ephemeral.kubectl(
        "get", "--raw", "/api/v1/namespaces/monitoring/services/prometheus-operated:9090/proxy/api/v1/targets"
    )
    targets = json.loads(raw)["data"]["activeTargets"]
    up = {t["labels"].get("job") for t in targets if t["health"] == "up"}
    for job in ("karpenter", "external-secrets", "kube-state-metrics", "node-exporter"):
        assert job in up, f"no healthy target for job {job}: {sorted(up)}"


def test_external_secret_becomes_a_secret(ephemeral: EphemeralStack) -> None:
    def ready() -> bool:
        es = ephemeral.kubectl("-n", "monitoring", "get", "externalsecret", "grafana-admin", "-o", "json")
        conditions = {c["type"]: c["status"] for c in es.get("status", {}).get("conditions", [])}
        return conditions.get("Ready") == "True"

    wait_for(ready, "the grafana-admin ExternalSecret to sync", timeout=300)
    secret = ephemeral.kubectl("-n", "monitoring", "get", "secret", "grafana-admin", "-o", "json")
    assert set(secret["data"]) >= {"admin-user", "admin-password"}
