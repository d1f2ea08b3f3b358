"""Real checks against an ephemeral stack (see conftest.py): nodes, Karpenter, HPA, ArgoCD,
Prometheus, External Secrets; the fixture checks that nothing is left behind after destroy.
How each check fails when what it checks is broken: docs/integration.md."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.karpenter import node_pool_spec
from components.nodegroups import SYSTEM_LABEL
from components.secrets import SecretTarget, external_secret_spec
from stacks.phase_services import node_pool_args
from stacks.scaling import NodePoolConfig, TaintConfig
from tests.integration.conftest import IT_GITOPS_PATH, IT_SERVICE, EphemeralStack
from tools.cleanup_stacks import IT_NODE_POOL, IT_OBJECT_LABEL
from tools.mocks import ROOT

pytestmark = pytest.mark.integration


class NotYet(str):
    """A falsy answer that says why (what `wait_for` shows when it times out)."""

    def __bool__(self) -> bool:
        return False


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


def node_problems(nodes: list[dict[str, Any]], system_nodes: int) -> list[str]:
    """Why the nodes are not as the stack asked (empty: all Ready, and exactly `system_nodes` of the
    system node group, told by the label the program gives it: a Karpenter node never stands in)."""
    problems = []
    for node in nodes:
        conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        if conditions.get("Ready") != "True":
            problems.append(f"{node['metadata']['name']} is not Ready")
    key, value = SYSTEM_LABEL
    system = [n for n in nodes if (n["metadata"].get("labels") or {}).get(key) == value]
    if len(system) != system_nodes:
        problems.append(f"{len(system)} node(s) labelled {key}={value}, want {system_nodes} (desiredSize)")
    return problems


def test_nodes_are_ready(ephemeral: EphemeralStack) -> None:
    nodes = ephemeral.kubectl("get", "nodes", "-o", "json")["items"]
    assert node_problems(nodes, ephemeral.system_nodes) == []


# The Karpenter test runs its workload on a NodePool of its own, so that the nodes it proves
# Karpenter launches and removes are only ever its own: the platform's `default` pool also hosts
# Prometheus (it cannot tolerate the system nodes' taint), so `default` never drains to zero.
IT_LABEL = (IT_OBJECT_LABEL, "karpenter")
IT_POOL = NodePoolConfig(
    name=IT_NODE_POOL,
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
    spec = node_pool_spec(node_pool_args(IT_POOL))
    spec["template"]["metadata"]["labels"][IT_LABEL[0]] = IT_LABEL[1]
    metadata = {"name": IT_POOL.name, "labels": {IT_OBJECT_LABEL: "karpenter"}}
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
HPA_LABELS = {"app": "it-hpa", IT_OBJECT_LABEL: "hpa"}


def hpa_objects() -> list[dict[str, Any]]:
    """A CPU-bound Deployment, its Service and HPA, and a pod that loads it (all labelled)."""
    meta = {"namespace": "default", "labels": HPA_LABELS}
    app = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "it-hpa", **meta},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "it-hpa"}},
            "template": {
                "metadata": {"labels": HPA_LABELS},
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
        "metadata": {"name": "it-hpa", **meta},
        "spec": {"selector": {"app": "it-hpa"}, "ports": [{"port": 80}]},
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "it-hpa", **meta},
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
        "metadata": {"name": "it-load", "namespace": "default", "labels": {IT_OBJECT_LABEL: "hpa"}},
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
    return [app, service, hpa, load]


def delete(ephemeral: EphemeralStack, obj: dict[str, Any]) -> None:
    namespace = obj["metadata"].get("namespace", "default")
    ephemeral.kubectl(
        "-n", namespace, "delete", obj["kind"].lower(), obj["metadata"]["name"], "--ignore-not-found"
    )


def test_hpa_scales_a_deployment_under_load(ephemeral: EphemeralStack, tmp_path) -> None:
    objects = hpa_objects()
    for obj in objects:
        apply(ephemeral, obj, tmp_path)
    try:

        def scaled() -> int:
            status = ephemeral.kubectl("get", "hpa", "it-hpa", "-o", "json")["status"]
            replicas = int(status.get("currentReplicas", 0))
            return replicas if replicas > 1 else 0

        wait_for(scaled, "the HPA to add replicas", timeout=600)
    finally:
        for obj in reversed(objects):
            delete(ephemeral, obj)


####################################################################################################
# ArgoCD: the GitOps folder's workload runs, not only an empty folder's "Synced"


def it_gitops_workload(root: Path = ROOT) -> tuple[dict[str, Any], dict[str, Any]]:
    """The folder's Application and the Deployment it syncs, as committed."""
    folder = root / IT_GITOPS_PATH
    application = yaml.safe_load((folder / f"{IT_SERVICE}.yaml").read_text(encoding="utf-8"))
    source = application["spec"]["source"]["path"]
    (deployment,) = (
        doc
        for path in sorted((root / source).glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc and doc.get("kind") == "Deployment"
    )
    return application, deployment


def pinned_digest(deployment: Mapping[str, Any]) -> str:
    """The `sha256:...` the Deployment's one container image is pinned to."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    image, _, digest = container["image"].partition("@")
    if not digest.startswith("sha256:"):
        raise ValueError(f"{image} is not pinned by digest")
    return digest


def ready_pods(pods: list[dict[str, Any]], digest: str) -> list[str] | NotYet:
    """Names of the pods that are Ready and run the pinned image (else why not)."""
    ready = []
    for pod in pods:
        status = pod.get("status", {})
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        images = {c.get("imageID", "") for c in status.get("containerStatuses", [])}
        if conditions.get("Ready") != "True":
            return NotYet(f"{pod['metadata']['name']} is not Ready ({status.get('phase')})")
        if not images or not all(i.endswith(digest) for i in images):
            return NotYet(f"{pod['metadata']['name']} runs {sorted(images)}, not {digest}")
        ready.append(pod["metadata"]["name"])
    return ready or NotYet("no pods")


def application_state(app: Mapping[str, Any]) -> tuple[str, str] | NotYet:
    sync = app.get("status", {}).get("sync", {}).get("status")
    health = app.get("status", {}).get("health", {}).get("status")
    if (sync, health) == ("Synced", "Healthy"):
        return (sync, health)
    return NotYet(f"{app['metadata']['name']}: sync {sync}, health {health}")


def test_argocd_deploys_the_gitops_folders_workload(ephemeral: EphemeralStack) -> None:
    application, deployment = it_gitops_workload()
    digest = pinned_digest(deployment)
    namespace = application["spec"]["destination"]["namespace"]
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
    for name in ("root", application["metadata"]["name"]):

        def synced(name: str = name) -> tuple[str, str] | NotYet:
            return application_state(
                ephemeral.kubectl("-n", "argocd", "get", "application", name, "-o", "json")
            )

        wait_for(synced, f"the {name} Application to be Synced and Healthy", timeout=600)

    def running() -> list[str] | NotYet:
        pods = ephemeral.kubectl("-n", namespace, "get", "pods", "-l", selector, "-o", "json")["items"]
        if len(pods) < deployment["spec"]["replicas"]:
            return NotYet(f"{len(pods)} of {deployment['spec']['replicas']} pods")
        return ready_pods(pods, digest)

    wait_for(running, f"the {namespace} Deployment's pods to be Ready with {digest}", timeout=600)


####################################################################################################
# Prometheus: its targets, read through the API server's service proxy


# The API server proxies to the pod from its control-plane ENIs in the VPC: the flow
# `api-server -> prometheus :9090` of platform/network-flows.yaml (tests/unit/test_integration_setup.py).
PROMETHEUS_TARGETS = "/api/v1/namespaces/monitoring/services/prometheus-operated:9090/proxy/api/v1/targets"
PROMETHEUS_PORT = 9090
EXPECTED_JOBS = ("karpenter", "external-secrets", "kube-state-metrics", "node-exporter")


def unhealthy_jobs(targets: Mapping[str, Any], expected: tuple[str, ...] = EXPECTED_JOBS) -> list[str]:
    """Each expected job without a healthy target, with the last error Prometheus saw for it."""
    active = targets["data"]["activeTargets"]
    up = {t["labels"].get("job") for t in active if t["health"] == "up"}
    errors = {t["labels"].get("job"): t.get("lastError", "") for t in active if t["health"] != "up"}
    return [f"{job}: {errors.get(job) or 'no target'}" for job in expected if job not in up]


def test_prometheus_scrapes_the_platform(ephemeral: EphemeralStack) -> None:
    def scraped() -> bool | NotYet:
        try:
            raw = ephemeral.kubectl("get", "--raw", PROMETHEUS_TARGETS)
        except subprocess.CalledProcessError as err:  # e.g. the proxy denied by a NetworkPolicy
            return NotYet(f"the API server's proxy to Prometheus failed: {err.stderr.strip()[-300:]}")
        missing = unhealthy_jobs(json.loads(raw))
        return NotYet("; ".join(missing)) if missing else True

    wait_for(scraped, f"a healthy target for each of {EXPECTED_JOBS}", timeout=600, every=15)


####################################################################################################
# External Secrets: a fetch after the NetworkPolicies are in place, value for value


PROBE = "it-eso-probe"


def probe_external_secret(remote: str) -> dict[str, Any]:
    """A new ExternalSecret (the platform's own spec) for `remote`: ESO must fetch it now, through
    whatever the NetworkPolicies allow, not report a condition set before they existed."""
    target = SecretTarget(namespace="monitoring", name=PROBE, remote=remote, labels={IT_OBJECT_LABEL: "eso"})
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": PROBE, "namespace": "monitoring", "labels": {IT_OBJECT_LABEL: "eso"}},
        "spec": external_secret_spec(target),
    }


def secret_mismatches(remote_json: str, secret: Mapping[str, Any]) -> list[str]:
    """Keys of the Secrets Manager JSON value missing or different in the Kubernetes Secret."""
    want = json.loads(remote_json)
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    wrong = [k for k, v in want.items() if data.get(k) != (v if isinstance(v, str) else json.dumps(v))]
    return [f"{k}: {'missing' if k not in data else 'differs from Secrets Manager'}" for k in sorted(wrong)]


def test_external_secrets_fetches_a_new_secret_after_the_policies(
    ephemeral: EphemeralStack, tmp_path
) -> None:
    import boto3  # type: ignore[import-untyped]

    platform = ephemeral.kubectl("-n", "monitoring", "get", "externalsecret", "grafana-admin", "-o", "json")
    remote = platform["spec"]["dataFrom"][0]["extract"]["key"]
    probe = probe_external_secret(remote)
    value = boto3.client("secretsmanager", region_name=ephemeral.region).get_secret_value(SecretId=remote)
    apply(ephemeral, probe, tmp_path)
    try:

        def arrived() -> bool | NotYet:
            try:
                secret = ephemeral.kubectl("-n", "monitoring", "get", "secret", PROBE, "-o", "json")
            except subprocess.CalledProcessError:
                es = ephemeral.kubectl("-n", "monitoring", "get", "externalsecret", PROBE, "-o", "json")
                conditions = es.get("status", {}).get("conditions", [])
                return NotYet(f"no Secret yet; conditions {[c.get('message') for c in conditions]}")
            wrong = secret_mismatches(value["SecretString"], secret)
            return NotYet("; ".join(wrong)) if wrong else True

        wait_for(arrived, f"ESO to fetch {remote} into Secret monitoring/{PROBE}", timeout=300)
    finally:
        delete(ephemeral, probe)


def it_objects() -> list[dict[str, Any]]:
    """Every Kubernetes object the tests create themselves (Pulumi does not know them)."""
    return [it_node_pool(), it_workload(), *hpa_objects(), probe_external_secret("any")]
