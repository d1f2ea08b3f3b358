"""Real checks against an ephemeral stack (see conftest.py): nodes, Karpenter, HPA, ArgoCD,
Prometheus, External Secrets; the fixture checks that nothing is left behind after destroy."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from components.karpenter import node_pool_spec
from stacks.scaling import NodePoolConfig, TaintConfig
from tests.integration.conftest import EphemeralStack

pytestmark = pytest.mark.integration


def wait_for(
    check: Callable[[], Any],
    what: str,
    timeout: float,
    every: float = 10,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Poll `check` until it returns something truthy (returned) or `timeout` seconds pass."""
    deadline = clock() + timeout
    last: Any = None
    while clock() < deadline:
        last = check()
        if last:
            return last
        sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def test_nodes_are_ready(ephemeral: EphemeralStack) -> None:
    nodes = ephemeral.kubectl("get", "nodes", "-o", "json")["items"]
    assert len(nodes) >= 2
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", node["metadata"]["name"]


# The Karpenter test runs its workload on a NodePool of its own, so that the nodes it proves
# Karpenter launches and removes are only ever its own: the platform's `default` pool also hosts
# Prometheus (it cannot tolerate the system nodes' taint), so `default` never drains to zero.
IT_LABEL = ("eks-platform.io/integration-test", "karpenter")
IT_POOL = NodePoolConfig(
    name="it-karpenter",
    cpu_limit=8,
    memory_limit_gib=32,
    consolidation_policy="WhenEmpty",
    consolidate_after="0s",
    disruption_budget_percent=100,
    taints=(TaintConfig(key=IT_LABEL[0], value=IT_LABEL[1]),),
)
# Karpenter labels every NodeClaim with its NodePool (karpenter-provider-aws
# website/content/en/docs/concepts/nodeclaims.md); this selects exactly the test's claims.
IT_CLAIMS = f"karpenter.sh/nodepool={IT_POOL.name}"


def it_node_pool() -> dict[str, Any]:
    """The test's NodePool: the platform's own spec (same EC2NodeClass), tainted and labelled."""
    spec = node_pool_spec(IT_POOL)
    spec["template"]["metadata"]["labels"][IT_LABEL[0]] = IT_LABEL[1]
    metadata = {"name": IT_POOL.name}
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": metadata, "spec": spec}


def it_workload() -> dict[str, Any]:
    """One pod that only the test's NodePool can host: it selects the label and tolerates the taint."""
    labels = {"app": "it-karpenter", IT_LABEL[0]: IT_LABEL[1]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "it-karpenter", "namespace": "default", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {IT_LABEL[0]: IT_LABEL[1]},
                    "tolerations": [{"key": IT_LABEL[0], "value": IT_LABEL[1], "effect": "NoSchedule"}],
                    "containers": [
                        {
                            "name": "pause",
                            "image": "registry.k8s.io/pause:3.10",  # multi-arch
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


def claims_hosting(claims: list[dict[str, Any]], pods: list[dict[str, Any]]) -> set[str]:
    """Names of the NodeClaims whose node runs one of `pods`."""
    nodes = {p["spec"].get("nodeName") for p in pods if p.get("status", {}).get("phase") == "Running"}
    return {c["metadata"]["name"] for c in claims if c.get("status", {}).get("nodeName") in nodes - {None}}


def test_karpenter_launches_a_node_for_a_pending_pod_and_removes_it(
    ephemeral: EphemeralStack, tmp_path
) -> None:
    selector = ",".join(f"{k}={v}" for k, v in it_workload()["metadata"]["labels"].items())
    apply(ephemeral, it_node_pool(), tmp_path)
    try:
        apply(ephemeral, it_workload(), tmp_path)
        try:

            def hosted() -> set[str]:
                pods = ephemeral.kubectl("get", "pods", "-l", selector, "-o", "json")["items"]
                claims = ephemeral.kubectl("get", "nodeclaims", "-l", IT_CLAIMS, "-o", "json")["items"]
                return claims_hosting(claims, pods)

            launched = wait_for(hosted, "the pod to run on a node of a new NodeClaim", timeout=600)
        finally:
            ephemeral.kubectl("delete", "deployment", "it-karpenter", "--wait=true")

        def gone() -> bool:
            claims = ephemeral.kubectl("get", "nodeclaims", "-l", IT_CLAIMS, "-o", "json")["items"]
            return not launched & {c["metadata"]["name"] for c in claims}

        wait_for(gone, f"Karpenter to remove the emptied NodeClaims {sorted(launched)}", timeout=600)
    finally:
        pool = IT_POOL.name
        ephemeral.kubectl("delete", "nodepool", pool, "--ignore-not-found", "--wait=true", timeout=600)


HPA_IMAGE = "registry.k8s.io/hpa-example"


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
                    # registry.k8s.io/hpa-example is published for amd64 only; the default NodePool
                    # prefers arm64 (Graviton spot), where it dies with "exec format error".
                    "nodeSelector": {"kubernetes.io/arch": "amd64"},
                    "containers": [
                        {
                            "name": "web",
                            "image": HPA_IMAGE,
                            "ports": [{"containerPort": 80}],
                            "resources": {"requests": {"cpu": "200m"}, "limits": {"cpu": "500m"}},
                        }
                    ],
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
