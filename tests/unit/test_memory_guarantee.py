"""Memory limit == request for the platform's controllers, proven on what the plan sends.

The upstream charts do not render in CI (their repositories are unreachable there), so the rule
over rendered objects (`rendered-controller-memory-guaranteed`, policy/rules_rendered.py) cannot
see them. These tests read each recorded Helm release's `values` at the key the chart reads for
each controller's containers (policy/helm_profiles.py, plus the init and sidecar containers listed
below) and prove limit == request per controller, in both stacks. With the chart cache at hand
(`EKS_PLATFORM_CHARTS`), the last test renders prod and checks the rendered pods too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from analysis.render import render_plan
from model.charts import cache_dir, package_name
from model.records import PlanResult
from policy.helm_profiles import chart_name, workloads
from policy.memory import PLATFORM_CONTROLLERS, memory_bytes, memory_unguaranteed
from policy.props import get
from policy.rules_rendered import evaluate
from stacks.data import chart_specs

HELM = "kubernetes:helm.sh/v3:Release"

# Per chart: each controller's values key for its containers' resources. The profile names the main
# container's key; init containers and sidecars that the chart gives a key of their own follow.
CONTROLLERS: dict[str, dict[str, tuple[str, ...]]] = {
    "metrics-server": {"metrics-server": ()},
    "vertical-pod-autoscaler": {
        "vpa-recommender": (),
        "vpa-updater": (),
        "vpa-admissionController": (),
    },
    "external-secrets": {
        "external-secrets": (),
        "external-secrets-webhook": (),
        "external-secrets-cert-controller": (),
    },
    "karpenter": {"karpenter": ()},
    # argo-cd 10.1.1 templates/argocd-repo-server/deployment.yaml: the copyutil init container takes
    # `repoServer.copyutil.resources`, else `repoServer.resources` (checked as the main key).
    # redis-ha 4.38.0 templates/redis-ha-statefulset.yaml: config-init reads `init.resources`, the
    # split-brain-fix sidecar `splitBrainDetection.resources`; templates/redis-haproxy-deployment.yaml:
    # its config-init reads `haproxy.init.resources`.
    "argo-cd": {
        "argocd-application-controller": (),
        "argocd-server": (),
        "argocd-repo-server": (),
        "argocd-applicationset-controller": (),
        "argocd-notifications-controller": (),
        "argocd-redis": (),
        "argocd-redis-ha-redis": ("redis-ha.init.resources", "redis-ha.splitBrainDetection.resources"),
        "argocd-redis-ha-sentinel": (),
        "argocd-redis-ha-haproxy": ("redis-ha.haproxy.init.resources",),
    },
    "kube-prometheus-stack": {"prometheus-operator": (), "kube-state-metrics": ()},
}


def unguaranteed(props: Mapping[str, Any]) -> Iterator[str]:
    """`<controller>: <values key>: <why>` for each controller of a release whose values do not set
    memory limit == request (an unset key counts: the charts default to no resources)."""
    values = get(props, "values") or {}
    wanted = CONTROLLERS.get(chart_name(props), {})
    for workload in workloads(props) or ():
        if workload.name not in wanted:
            continue
        for path in (workload.resources, *wanted[workload.name]):
            resources = get(values, path) or {}
            for why in memory_unguaranteed({"containers": [{"name": path, "resources": resources}]}):
                yield f"{workload.name}: {why.removeprefix('container ')}"


def test_every_platform_controller_sends_memory_limit_equal_to_request(plan: PlanResult) -> None:
    releases = plan.of_type(HELM)
    seen = {
        (chart_name(r.inputs), w.name)
        for r in releases
        for w in workloads(r.inputs) or ()
        if w.name in CONTROLLERS.get(chart_name(r.inputs), {})
    }
    # Every controller listed is a workload the plan runs (argocd-redis or redis-ha per stack).
    listed = {(c, n) for c, names in CONTROLLERS.items() for n in names}
    assert seen and seen <= listed
    assert {c for c, _ in seen} == set(CONTROLLERS)
    assert [p for r in releases for p in unguaranteed(r.inputs)] == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"resources": {"requests": {"memory": "200Mi"}, "limits": {"memory": "400Mi"}}}, "differs"),
        ({"resources": {"requests": {"memory": "200Mi"}}}, "no memory limit"),
        ({}, "no memory request and limit"),
        ({"resources": {"requests": {"memory": "lots"}, "limits": {"memory": "lots"}}}, "not a Kubernetes"),
    ],
)
def test_a_controller_without_the_guarantee_is_named(values: dict[str, Any], expected: str) -> None:
    (problem,) = unguaranteed({"chart": "metrics-server", "values": values})
    assert problem.startswith("metrics-server: resources") and expected in problem


def test_equal_quantities_in_other_units_pass() -> None:
    values = {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "1024Mi"}}}
    assert list(unguaranteed({"chart": "metrics-server", "values": values})) == []
    assert memory_bytes("1Gi") == memory_bytes("1024Mi") == 2**30
    assert memory_bytes("500M") == 5e8 and memory_bytes("1e9") == 1e9


def test_a_missing_sidecar_key_is_named() -> None:
    good = {"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}}
    values = {"redis-ha": {"enabled": True, "redis": {"resources": good}, "init": {"resources": good}}}
    problems = list(unguaranteed({"chart": "argo-cd", "values": values}))
    assert "argocd-redis-ha-redis: redis-ha.splitBrainDetection.resources sets no memory" in " ".join(
        problems
    )
    assert not any("redis-ha.init.resources" in p for p in problems)


def test_the_rendered_controllers_of_prod_are_guaranteed(plans: dict[str, PlanResult]) -> None:
    """With every pinned chart in the cache: each listed controller renders, and the rule is quiet."""
    missing = [
        k for k, s in chart_specs().items() if not (cache_dir() / package_name(s.chart, s.version)).exists()
    ]
    if missing:
        pytest.skip(f"pinned chart packages not in {cache_dir()}: {', '.join(sorted(missing))} (make charts)")
    report = render_plan([r.document() for r in plans["prod"].records])
    rendered = [r.document() for r in report.rendered]
    kinds = {f"{o['kind']}/{o['metadata']['name']}" for r in rendered for o in r["objects"]}
    # Dex is off and prod runs redis-ha, not the single Redis.
    assert PLATFORM_CONTROLLERS - kinds == {"Deployment/argocd-dex-server", "Deployment/argocd-redis"}
    assert [f for f in evaluate(rendered, production=True) if "memory" in f[0]] == []
