"""Scheduling fit of the system node group: does everything meant for it fit, with one node lost?

Reads the recorded plan only: the system ManagedNodeGroup (instance types, minimum size), the EKS
add-ons (CoreDNS replicas), the Helm releases' values, and, when the plan carries them, the
rendered objects (`rendered`, one entry per release). Pinned facts come from
platform/capacity.yaml (instance sizes, the EKS add-ons' pod requests, each with its source).

Allocatable per node follows the AL2023 kubelet defaults of amazon-eks-ami (tag v20260724,
nodeadm/internal/kubelet/config.go `withDefaultReservedResources`): kube-reserved CPU is 6 % of the
first core, 1 % of the second, 0.5 % of cores 3-4 and 0.25 % above; kube-reserved memory is
`11 * maxPods + 255` MiB, with maxPods = `ENIs * (IPv4 per ENI - 1) + 2`
(nodeadm/internal/kubelet/eni_max_pods.go); eviction keeps 100 MiB free.

Pods are packed first-fit-decreasing onto the nodes at the group's minimum size, after each node's
DaemonSet pods; the fit fails when any pod finds no node with room for its CPU, memory and pod
slot. Anti-affinity is not modelled. `basis` says whether the pods came from the rendered objects
or from the values the platform sets (replicas x requests per workload).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from model.findings import Finding
from model.records import Registration
from policy.helm_profiles import SYSTEM_NODE_LABEL, workloads
from policy.model import Level
from policy.props import get, is_map
from stacks.data import load_yaml

DATA = "capacity.yaml"
NODE_GROUP = "eks:index:ManagedNodeGroup"
ADDON = "aws:eks/addon:Addon"
CLUSTER = "eks:index:Cluster"
HELM = "kubernetes:helm.sh/v3:Release"
SYSTEM_TAINT = "CriticalAddonsOnly"
RULE = "system-nodes-fit"
# Workloads of the charts' profiles that the profile gives no replicas key (policy/helm_profiles.py),
# with the values key and the chart's default (redis-ha 4.38.0 values.yaml: replicas 3,
# haproxy.replicas 3); the Redis server pod carries the sentinel container as well.
REPLICAS = {
    "argocd-redis-ha-redis": ("redis-ha.replicas", 3),
    "argocd-redis-ha-sentinel": ("redis-ha.replicas", 3),
    "argocd-redis-ha-haproxy": ("redis-ha.haproxy.replicas", 3),
}
DAEMONSETS = frozenset({"node-exporter"})
# Workloads a chart drops when another switch is on (argo-cd 10.1.1 renders its single Redis only
# without redis-ha: templates/redis/deployment.yaml).
REPLACED_BY = {"argocd-redis": "redis-ha.enabled"}
# Containers that share a workload's pod and have their own values key: grafana 12.11.1 gives
# `sidecar.resources` to both its dashboards and its datasources sidecar (found by rendering).
SIDECARS = {"grafana": ("grafana.sidecar.resources", "grafana.sidecar.resources")}


@dataclass(frozen=True)
class Pod:
    """A kind of pod meant for the system nodes: `replicas` copies, or one per node."""

    name: str
    cpu: float
    memory_gib: float
    replicas: int = 1
    per_node: bool = False


@cache
def data() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(DATA)
    return loaded


UNITS = {
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(value: Any) -> float:
    """A Kubernetes quantity as a plain number: `250m` -> 0.25, `512Mi` -> 536870912."""
    text = str(value).strip()
    for suffix in sorted(UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * UNITS[suffix]
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 250m, 1, 512Mi, 2Gi)") from None


def _requests(resources: Any) -> tuple[float, float]:
    """(CPU cores, memory GiB) a container's `resources.requests` asks for (0 where unset)."""
    req = get(resources, "requests", {}) if is_map(resources) else {}
    cpu, memory = get(req, "cpu"), get(req, "memory")
    return (
        quantity(cpu) if cpu is not None else 0.0,
        quantity(memory) / 2**30 if memory is not None else 0.0,
    )


def kube_reserved_cpu(vcpu: int) -> float:
    """nodeadm `getCPUMillicoresToReserve`, in cores."""
    total, reserved = vcpu * 1000, 0
    for start, end, per10k in ((0, 1000, 600), (1000, 2000, 100), (2000, 4000, 50), (4000, total, 25)):
        if total > start:
            reserved += (min(total, end) - start) * per10k // 10000
    return reserved / 1000


def allocatable(instance_type: str) -> tuple[float, float, int]:
    """(CPU cores, memory GiB, max pods) the kubelet offers pods on one node of this type."""
    types = data()["instanceTypes"]
    if instance_type not in types:
        raise KeyError(f"instance type {instance_type!r} is not in {DATA} instanceTypes: {sorted(types)}")
    spec = types[instance_type]
    max_pods = spec["enis"] * (spec["ipsPerEni"] - 1) + 2
    memory = spec["memoryGiB"] * (1 - data()["vmMemoryOverheadPercent"] / 100)
    memory -= (11 * max_pods + 255 + data()["evictionHardMiB"]) / 1024
    return spec["vcpu"] - kube_reserved_cpu(spec["vcpu"]), memory, max_pods


def system_group(records: Sequence[Registration]) -> Registration:
    for r in records:
        if r.type == NODE_GROUP and (r.get("labels") or {}).get(SYSTEM_NODE_LABEL[0]) == SYSTEM_NODE_LABEL[1]:
            return r
    raise LookupError(f"no {NODE_GROUP} labelled {SYSTEM_NODE_LABEL[0]}={SYSTEM_NODE_LABEL[1]} in the plan")


def addon_pods(records: Sequence[Registration]) -> list[Pod]:
    installed = {str(r.get("addonName")): r for r in records if r.type == ADDON}
    clusters = [r for r in records if r.type == CLUSTER]
    pods = []
    for entry in data()["eksAddons"]:
        addon = installed.get(entry["addon"])
        option = entry.get("clusterOption")
        if addon is None and not (option and any(c.get(option) is True for c in clusters)):
            continue
        replicas = entry.get("replicas", 1)
        if addon is not None and "replicasKey" in entry and addon.get("configurationValues"):
            replicas = int(
                yaml.safe_load(addon.get("configurationValues")).get(entry["replicasKey"], replicas)
            )
        pods.append(
            Pod(entry["pod"], entry["cpu"], entry["memoryMiB"] / 1024, replicas, entry.get("perNode", False))
        )
    return pods


def values_pods(records: Sequence[Registration]) -> list[Pod]:
    """Replicas x requests of every chart workload the values place on the system nodes."""
    pods = []
    for r in records:
        if r.type != HELM:
            continue
        values = r.get("values") or {}
        for w in workloads(r.inputs) or ():
            selector = w.node_selector(values) or {}
            if w.name in REPLACED_BY and get(values, REPLACED_BY[w.name]) is True:
                continue
            if w.name not in DAEMONSETS and selector.get(SYSTEM_NODE_LABEL[0]) != SYSTEM_NODE_LABEL[1]:
                continue
            cpu, memory = _requests(get(values, w.resources))
            for sidecar in SIDECARS.get(w.name, ()):
                extra = _requests(get(values, sidecar))
                cpu, memory = cpu + extra[0], memory + extra[1]
            if w.replicas:
                count = w.replica_count(values)
            elif w.name in REPLICAS:
                count = int(get(values, REPLICAS[w.name][0], REPLICAS[w.name][1]))
            else:
                count = 1
            pods.append(Pod(w.name, cpu, memory, count or 1, w.name in DAEMONSETS))
    return pods


def _pod_spec(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], int, bool] | None:
    kind = obj.get("kind")
    if kind in ("Deployment", "StatefulSet", "DaemonSet"):
        spec = get(obj, "spec.template.spec", {})
        return spec, int(get(obj, "spec.replicas", 1) or 0), kind == "DaemonSet"
    if kind in ("Alertmanager", "Prometheus") and str(obj.get("apiVersion", "")).startswith(
        "monitoring.coreos.com"
    ):
        spec = obj.get("spec", {})  # the operator builds the StatefulSet from these fields
        return (
            {
                "nodeSelector": spec.get("nodeSelector"),
                "tolerations": spec.get("tolerations"),
                "containers": [{"resources": spec.get("resources")}],
            },
            int(spec.get("replicas", 1)),
            False,
        )
    return None


def rendered_pods(rendered: Iterable[Mapping[str, Any]]) -> list[Pod]:
    """Pods of the rendered objects that select the system nodes, and DaemonSets that tolerate them."""
    pods = []
    for release in rendered:
        for obj in release.get("objects", []):
            found = _pod_spec(obj)
            if found is None:
                continue
            spec, replicas, daemon = found
            selector = spec.get("nodeSelector") or {}
            tolerates = any(
                (t.get("operator") == "Exists" and not t.get("key")) or t.get("key") == SYSTEM_TAINT
                for t in spec.get("tolerations") or []
            )
            on_system = selector.get(SYSTEM_NODE_LABEL[0]) == SYSTEM_NODE_LABEL[1]
            if not (on_system or (daemon and tolerates and not selector.get(SYSTEM_NODE_LABEL[0]))):
                continue
            cpu = memory = 0.0
            for container in spec.get("containers") or []:
                c, m = _requests(container.get("resources"))
                cpu, memory = cpu + c, memory + m
            name = f"{obj.get('kind')}/{get(obj, 'metadata.name')}"
            pods.append(Pod(name, cpu, memory, replicas, daemon))
    return pods


def pack(pods: Sequence[Pod], nodes: int, per_node: tuple[float, float, int]) -> list[str]:
    """First-fit-decreasing: the pods that find no node (empty when everything fits)."""
    daemons = [p for p in pods if p.per_node]
    free = [
        [
            per_node[0] - sum(p.cpu for p in daemons),
            per_node[1] - sum(p.memory_gib for p in daemons),
            per_node[2] - len(daemons),
        ]
        for _ in range(nodes)
    ]
    left = []
    copies = sorted(
        ((p.cpu, p.memory_gib, p.name) for p in pods if not p.per_node for _ in range(p.replicas)),
        reverse=True,
    )
    for cpu, memory, name in copies:
        node = next((n for n in free if n[0] >= cpu - 1e-9 and n[1] >= memory - 1e-9 and n[2] >= 1), None)
        if node is None:
            left.append(name)
        else:
            node[0], node[1], node[2] = node[0] - cpu, node[1] - memory, node[2] - 1
    if any(n[0] < -1e-9 or n[1] < -1e-9 or n[2] < 0 for n in free):
        left += [p.name for p in daemons]
    return left


def system_nodes(
    records: Sequence[Registration], rendered: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """The plan document's `capacity.systemNodes`."""
    group = system_group(records)
    types = list(group.get("instanceTypes") or [])
    nodes = int(group.get("scalingConfig.minSize"))
    # The group may launch any of its types: judge by the smallest.
    per_node = min((allocatable(t) for t in types), key=lambda a: (a[0], a[1]))
    smallest = types[[allocatable(t) for t in types].index(per_node)]
    # The rendered pods where every release was rendered; otherwise the values of all of them.
    releases = {r.urn for r in records if r.type == HELM}
    by_render = rendered is not None and releases <= {str(e.get("urn")) for e in rendered}
    pods = (rendered_pods(rendered or []) if by_render else values_pods(records)) + addon_pods(records)
    cpu = sum(p.cpu * (nodes if p.per_node else p.replicas) for p in pods)
    memory = sum(p.memory_gib * (nodes if p.per_node else p.replicas) for p in pods)
    left_full, left_lost = pack(pods, nodes, per_node), pack(pods, max(nodes - 1, 0), per_node)
    return {
        "basis": "rendered" if by_render else "values",
        "instanceType": smallest,
        "nodes": nodes,
        "perNode": {"cpu": round(per_node[0], 3), "memoryGiB": round(per_node[1], 3), "pods": per_node[2]},
        "requests": {"cpu": round(cpu, 3), "memoryGiB": round(memory, 3)},
        "allocatable": {"cpu": round(per_node[0] * nodes, 3), "memoryGiB": round(per_node[1] * nodes, 3)},
        "fits": not left_full,
        "fitsWithOneNodeLost": not left_lost,
        "unscheduled": sorted(left_full),
        "unscheduledWithOneNodeLost": sorted(left_lost),
        "pods": sorted(
            (
                {
                    "name": p.name,
                    "replicas": p.replicas,
                    "perNode": p.per_node,
                    "cpu": round(p.cpu, 3),
                    "memoryGiB": round(p.memory_gib, 3),
                }
                for p in pods
            ),
            key=lambda d: (str(d["name"]), bool(d["perNode"])),
        ),
        "group": group.urn,
    }


def findings(report: Mapping[str, Any], production: bool) -> list[Finding]:
    """Not fitting is mandatory in prod (losing a node must not leave platform pods pending)."""
    level = Level.MANDATORY if production else Level.ADVISORY
    out = []
    for key, what in (("fits", "at its minimum size"), ("fitsWithOneNodeLost", "with one node lost")):
        if not report[key]:
            left = report["unscheduled" if key == "fits" else "unscheduledWithOneNodeLost"]
            out.append(
                Finding(
                    RULE,
                    level,
                    report["group"],
                    f"system pods do not fit on {report['nodes']} x {report['instanceType']} {what} "
                    f"(requests {report['requests']['cpu']} CPU / {report['requests']['memoryGiB']} GiB, "
                    f"{report['basis']} basis); no room for: {', '.join(left)}",
                )
            )
    return out
