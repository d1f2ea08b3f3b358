"""Memory limit == request: which rendered workloads are the platform's controllers, and the check.

Used by the rendered-objects rules (policy/rules_rendered.py) and tested on the values the plan
sends (tests/unit/test_memory_guarantee.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policy.model import Source, bpg
from policy.props import get

# The platform's controllers as their releases render them (release names from components/). A
# node under memory pressure evicts first the pods using more memory than they request, and the
# OOM killer picks them first (Kubernetes docs "Node-pressure Eviction"; EKS Best Practices
# Reliability > Applications "configure memory limits equal to requests"). Their memory limit must
# equal their request. docs/scheduling.md explains each value.
PLATFORM_CONTROLLERS = frozenset(
    {
        "Deployment/metrics-server",
        "Deployment/vertical-pod-autoscaler-recommender",
        "Deployment/vertical-pod-autoscaler-updater",
        "Deployment/vertical-pod-autoscaler-admission-controller",
        "Deployment/external-secrets",
        "Deployment/external-secrets-webhook",
        "Deployment/external-secrets-cert-controller",
        "StatefulSet/argocd-application-controller",
        "Deployment/argocd-server",
        "Deployment/argocd-repo-server",
        "Deployment/argocd-applicationset-controller",
        "Deployment/argocd-notifications-controller",
        "Deployment/argocd-dex-server",
        "Deployment/argocd-redis",
        "StatefulSet/argocd-redis-ha-server",
        "Deployment/argocd-redis-ha-haproxy",
        "Deployment/karpenter",
        "Deployment/kube-prometheus-stack-kube-state-metrics",
        "Deployment/kube-prometheus-stack-operator",
    }
)
EVICTION = (
    Source("kubernetes-docs", "Node-pressure Eviction (pods above their requests go first)"),
    *bpg("Reliability > Applications (memory limits equal to requests)"),
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"m": 10**-3, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def memory_bytes(value: Any) -> float:
    """A Kubernetes memory quantity in bytes (`512Mi`, `1Gi`, `1e9`, `500M`); ValueError otherwise."""
    text = str(value).strip()
    for units in (_BINARY, _DECIMAL):
        for suffix, factor in units.items():
            if text.endswith(suffix) and text[: -len(suffix)]:
                return float(text[: -len(suffix)]) * factor
    return float(text)


def memory_unguaranteed(spec: Mapping[str, Any]) -> Iterator[str]:
    """Why each container (init containers too) does not have memory limit == request."""
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        request, limit = get(c, "resources.requests.memory"), get(c, "resources.limits.memory")
        if request is None or limit is None:
            missing = " and ".join(n for n, v in (("request", request), ("limit", limit)) if v is None)
            yield f"container {c.get('name')} sets no memory {missing}"
            continue
        try:
            equal = memory_bytes(limit) == memory_bytes(request)
        except ValueError:
            yield f"container {c.get('name')}: memory {request!r}/{limit!r} is not a Kubernetes quantity"
            continue
        if not equal:
            yield (
                f"container {c.get('name')}: memory limit {limit} differs from its request {request}: "
                "above its request it is among the first evicted under node memory pressure"
            )
