"""Rules over rendered Helm objects (policy/rules_rendered.py): each fires on a bad object and stays
quiet on a good one; charts rendered here with Helm's own engine (helm_python) go through them too."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from pydantic import ValidationError

from policy import rules_rendered as rr
from policy.model import Level
from policy.rules import RENDERED_RULES
from tools import scan
from tools.mocks import ROOT
from tools.policy_check import evaluate_rendered

SYSTEM = {"eks-platform.io/node-pool": "system"}
TOLERATE = [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}]
LABELS = {"app": "c"}
GUARANTEED = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "128Mi"}}


def controller(name: str = "c", **spec: Any) -> dict[str, Any]:
    """A prod-grade two-replica Deployment on the system nodes."""
    pod = {
        "nodeSelector": SYSTEM,
        "tolerations": TOLERATE,
        "priorityClassName": "system-cluster-critical",
        "topologySpreadConstraints": [
            {
                "topologyKey": "topology.kubernetes.io/zone",
                "maxSkew": 1,
                "whenUnsatisfiable": "ScheduleAnyway",
            }
        ],
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": LABELS}, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        },
        "containers": [{"name": "c", "image": "registry.example/c:v1.2.3", "resources": GUARANTEED}],
    }
    pod.update(spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": LABELS}, "spec": pod}},
    }


def pdb(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "c"},
        "spec": {"selector": {"matchLabels": LABELS}, **spec},
    }


GOOD = [controller(), pdb(minAvailable=1)]


def rules_hit(objects: list[dict[str, Any]], production: bool = True) -> set[str]:
    return {rule for rule, *_ in rr.evaluate([{"urn": "urn:x", "objects": objects}], production)}


def test_a_good_release_passes_every_rule() -> None:
    assert rules_hit(GOOD) == set()


UNBOUNDED = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}


def memory(resources: dict[str, Any], name: str = "c", init: bool = False) -> list[dict[str, Any]]:
    """A good release whose container (or an added init container) has these resources."""
    container = {"name": "x", "image": "c:v1.0.0", "resources": resources}
    if init:
        return [controller(name, initContainers=[container]), pdb(minAvailable=1)]
    return [controller(name, containers=[container]), pdb(minAvailable=1)]


@pytest.mark.parametrize(
    ("objects", "production", "expected"),
    [
        (
            memory(UNBOUNDED, "metrics-server"),
            True,
            {("rendered-controller-memory-guaranteed", Level.MANDATORY)},
        ),
        (
            memory(UNBOUNDED, "metrics-server"),
            False,
            {("rendered-controller-memory-guaranteed", Level.ADVISORY)},
        ),
        (
            memory({}, "karpenter", init=True),
            True,
            {("rendered-controller-memory-guaranteed", Level.MANDATORY)},
        ),
        (memory(UNBOUNDED), True, {("rendered-memory-limit-equals-request", Level.ADVISORY)}),
        (memory(UNBOUNDED), False, set()),
        (
            memory({"requests": {"memory": "1Gi"}, "limits": {"memory": "1024Mi"}}, "metrics-server"),
            True,
            set(),
        ),
        (memory(GUARANTEED, "metrics-server"), True, set()),
    ],
)
def test_memory_limit_equals_request(
    objects: list[dict[str, Any]], production: bool, expected: set[tuple[str, Level]]
) -> None:
    found = rr.evaluate([{"urn": "urn:x", "objects": objects}], production)
    assert {(rule, level) for rule, level, *_ in found} == expected


@pytest.mark.parametrize(
    ("rule", "objects"),
    [
        ("rendered-system-placement", [controller(tolerations=[]), pdb(minAvailable=1)]),
        ("rendered-system-placement", [controller(nodeSelector={}), pdb(minAvailable=1)]),
        ("rendered-pdb-effective", [controller()]),
        ("rendered-pdb-effective", [controller(), pdb(minAvailable=0)]),
        ("rendered-pdb-effective", [controller(), pdb(maxUnavailable=2)]),
        ("rendered-zone-spread", [controller(topologySpreadConstraints=[]), pdb(minAvailable=1)]),
        ("rendered-node-spread", [controller(affinity={}), pdb(minAvailable=1)]),
        ("rendered-priority-class", [controller(priorityClassName=""), pdb(minAvailable=1)]),
        (
            "rendered-image-pinned",
            [
                controller(containers=[{"name": "c", "image": "c:latest", "resources": GUARANTEED}]),
                pdb(minAvailable=1),
            ],
        ),
        (
            "rendered-image-pinned",
            [
                controller(containers=[{"name": "c", "image": "c", "resources": GUARANTEED}]),
                pdb(minAvailable=1),
            ],
        ),
    ],
)
def test_each_rule_fires_on_a_bad_release(rule: str, objects: list[dict[str, Any]]) -> None:
    assert rules_hit(objects) == {rule}


def test_a_load_balancer_service_is_refused() -> None:
    """The boundary withholds every Elastic Load Balancing action (platform/deploy-role.yaml
    `withheld`, review 19 round 4): a LoadBalancer Service would stay pending forever."""
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "n"}}
    for production in (True, False):
        lb = {**service, "spec": {"type": "LoadBalancer"}}
        found = rr.evaluate([{"urn": "urn:x", "objects": [lb]}], production)
        assert [(rule, level) for rule, level, *_ in found] == [
            ("rendered-no-load-balancer", Level.MANDATORY)
        ]
        ok = {**service, "spec": {"type": "ClusterIP"}}
        assert rr.evaluate([{"urn": "urn:x", "objects": [ok]}], production) == []


@pytest.mark.parametrize(
    "image",
    [
        "c:v1.2.3",
        "r.example/c:8.2.3-alpine",
        "c:v20231011-8b53cabe0",
        "c@sha256:" + "a" * 64,
        "c:" + "f" * 40,
    ],
)
def test_pinned_images(image: str) -> None:
    assert rr.image_pinned(image)


@pytest.mark.parametrize("image", ["c", "c:latest", "c:main", "registry:5000/c"])
def test_unpinned_images(image: str) -> None:
    assert not rr.image_pinned(image)


def test_prod_only_rules_are_skipped_outside_prod() -> None:
    bad = [controller(priorityClassName="", topologySpreadConstraints=[], affinity={})]
    assert rules_hit(bad, production=False) == set()
    assert rules_hit(bad) == {
        "rendered-pdb-effective",
        "rendered-zone-spread",
        "rendered-node-spread",
        "rendered-priority-class",
    }


def test_daemonsets_may_tolerate_the_system_taint() -> None:
    daemon = copy.deepcopy(controller(nodeSelector={}, tolerations=[{"operator": "Exists"}]))
    daemon["kind"] = "DaemonSet"
    assert rules_hit([daemon]) == set()


def test_an_hpa_owns_the_replica_count() -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "c"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "c"}, "minReplicas": 3},
    }
    deployment = controller()
    del deployment["spec"]["replicas"]
    assert rules_hit([deployment, hpa]) == {"rendered-pdb-effective"}
    assert rules_hit([deployment]) == set()  # one replica: nothing to protect


def test_findings_carry_the_release_and_level() -> None:
    (finding,) = evaluate_rendered([{"urn": "urn:r", "objects": [controller()]}], production=True)
    assert (finding.rule, finding.level, finding.urn) == ("rendered-pdb-effective", Level.MANDATORY, "urn:r")
    assert finding.message.startswith("Deployment/c: 2 replicas and no PodDisruptionBudget")


def test_rules_are_registered_with_the_pack() -> None:
    assert {r.name for r in RENDERED_RULES} == {r.name for r in rr.RULES}
    assert all(r.sources and r.description for r in RENDERED_RULES)


# Helm's own engine: a chart written here, rendered like an upstream chart.
TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ .Release.Name }}}
spec:
  replicas: {{ .Values.replicas }}
  template:
    metadata: {labels: {app: c}}
    spec:
      priorityClassName: system-cluster-critical
      nodeSelector: {eks-platform.io/node-pool: system}
      tolerations: [{key: CriticalAddonsOnly, operator: Exists, effect: NoSchedule}]
      {{- with .Values.topologySpreadConstraints }}
      topologySpreadConstraints: {{ toJson . }}
      {{- end }}
      containers:
        - {name: c, image: "c:v1.0.0", resources: {requests: {memory: 64Mi}, limits: {memory: 64Mi}}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: {{ .Release.Name }}}
spec:
  selector: {matchLabels: {app: c}}
  minAvailable: {{ .Values.pdb.minAvailable | default 0 }}
"""


def render(chart: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    manifests = helm_python.Chart.load(chart).render(values=values, name="c", namespace="ns")
    return [
        o
        for path, text in sorted(manifests.items())
        if path.endswith(".yaml")
        for o in yaml.safe_load_all(text)
        if o
    ]


def test_rules_judge_what_helm_renders(tmp_path: Path) -> None:
    chart = tmp_path / "c"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicas: 2\npdb: {}\ntopologySpreadConstraints: []\n")
    (chart / "templates" / "all.yaml").write_text(TEMPLATE)
    # The argo-cd 10.1.1 pattern: a PDB switched on without a bound renders minAvailable 0, and a
    # value the template does not read (here: none) leaves the zone spread off.
    assert rules_hit(render(chart, {})) >= {
        "rendered-pdb-effective",
        "rendered-zone-spread",
        "rendered-node-spread",
    }
    spread = [
        {"topologyKey": "topology.kubernetes.io/zone", "maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}
    ]
    assert (
        rules_hit(render(chart, {"pdb": {"minAvailable": 1}, "topologySpreadConstraints": spread})) == set()
    )


PROD_VALUES = sorted((ROOT / "services").glob("*/deploy/prod.yaml"))


@pytest.mark.parametrize("values_file", PROD_VALUES, ids=lambda p: p.parts[-3])
def test_the_microservice_chart_renders_within_the_rules(values_file: Path) -> None:
    """The platform's own chart with each service's prod values (whatever services the checkout
    has): zone spread (DoNotSchedule), PDB, pinned image."""
    values = yaml.safe_load(values_file.read_text())
    objects = render(ROOT / "charts" / "microservice", values)
    # Services are not platform controllers: no priority class (by design), and memory limit above
    # request is only advisory for them.
    assert rules_hit(objects) == {"rendered-priority-class", "rendered-memory-limit-equals-request"}


def test_there_is_a_service_to_render() -> None:
    assert PROD_VALUES, "no services/*/deploy/prod.yaml: the chart test above would run on nothing"


# checkov's side (tools/scan.py): the exceptions file and the judgement, without running checkov
# (`make scan` runs it, in its own virtualenv).


def test_every_exception_names_a_check_an_object_and_a_reason() -> None:
    accepted = scan.load_exceptions()
    keys = [(e.check, e.chart, e.resource) for e in accepted]
    assert accepted and len(keys) == len(set(keys))
    assert all(len(e.reason) >= 20 for e in accepted)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"check": "CKV_K8S_1", "chart": "c", "resource": "Deployment.ns.c"}, "reason"),
        ({"check": "K8S_1", "chart": "c", "resource": "Deployment.ns.c", "reason": "x" * 30}, "check"),
        ({"check": "CKV_K8S_1", "chart": "c", "resource": "c", "reason": "x" * 30}, "resource"),
        (
            {
                "check": "CKV_K8S_1",
                "chart": "c",
                "resource": "Deployment.ns.c",
                "reason": "x" * 30,
                "until": 1,
            },
            "until",
        ),
    ],
)
def test_a_bad_exception_is_rejected_by_name(tmp_path: Path, entry: dict[str, Any], field: str) -> None:
    bad = tmp_path / "exceptions.yaml"
    bad.write_text(yaml.safe_dump({"exceptions": [entry]}))
    with pytest.raises(ValidationError, match=field):
        scan.load_exceptions(bad)


RELEASE = scan.Release("prod", "c", "c", "urn:c", ())
CHECKS = [
    {
        "check_id": "CKV_K8S_11",
        "check_name": "CPU limits",
        "file_path": "/prod__c__c.yaml",
        "resource": "Deployment.ns.c",
    },
    {
        "check_id": "CKV2_K8S_6",
        "check_name": "NetworkPolicy",
        "file_path": "/prod__c__c.yaml",
        "resource": "Pod.ns.c.app-c",
    },
]


def accept(check: str, resource: str, chart: str = "c") -> scan.Accepted:
    return scan.Accepted(check=check, chart=chart, resource=resource, reason="accepted for this test only")


def test_failed_checks_map_to_their_release_and_object() -> None:
    found = scan.failures(CHECKS, [RELEASE])
    assert [(f.check, f.resource, f.urn) for f in found] == [
        ("CKV_K8S_11", "Deployment.ns.c", "urn:c"),
        ("CKV2_K8S_6", "Pod.ns.c", "urn:c"),
    ]


def test_a_new_failure_and_a_stale_exception_both_fail_the_scan() -> None:
    found = scan.failures(CHECKS, [RELEASE])
    new, stale = scan.judge(found, (accept("CKV_K8S_11", "Deployment.ns.c"),), {"c"})
    assert [f.check for f in new] == ["CKV2_K8S_6"] and stale == []
    gone = accept("CKV_K8S_8", "Deployment.ns.c")
    new, stale = scan.judge(
        found, (accept("CKV_K8S_11", "Deployment.ns.c"), accept("CKV2_K8S_6", "Pod.ns.c"), gone), {"c"}
    )
    assert new == [] and stale == [gone]
    # A chart that was not rendered this time (no package at hand, as in CI) keeps its exceptions.
    assert scan.judge([], (accept("CKV_K8S_8", "Deployment.ns.x", chart="x"),), {"c"}) == ([], [])


def test_a_chart_wide_exception_covers_every_release_of_the_chart() -> None:
    """A second service is one more release of charts/microservice: no new exception for it."""
    releases = [scan.Release("dev", "c", name, None, ()) for name in ("a", "b")]
    checks = [
        {"check_id": "CKV_K8S_43", "check_name": "digest", "file_path": f"/dev__c__{n}.yaml", "resource": r}
        for n, r in (("a", "Deployment.a.a"), ("b", "Deployment.b.b"), ("b", "Service.b.b"))
    ]
    found = scan.failures(checks, releases)
    chart_wide = accept("CKV_K8S_43", "Deployment.*.*")
    new, stale = scan.judge(found, (chart_wide,), {"c"})
    assert [f.resource for f in new] == ["Service.b.b"], "only the kind named is covered"
    assert stale == []
    # ...and only for its own chart and check.
    assert len(scan.judge(found, (accept("CKV_K8S_43", "Deployment.*.*", chart="x"),), {"c"})[0]) == 3
    assert scan.judge([], (chart_wide,), {"c"}) == ([], [chart_wide]), "stale once nothing fails"


@pytest.mark.parametrize("resource", ["Deployment.*.x", "Deployment.ns.*", "Deployment.*", "*.ns.x"])
def test_a_partial_wildcard_is_refused(resource: str) -> None:
    with pytest.raises(ValidationError, match="resource"):
        accept("CKV_K8S_43", resource)


def test_the_service_charts_exceptions_name_no_service() -> None:
    """Keyed by chart: adding a service (`make new-service`) never needs an exception of its own."""
    shared = [e for e in scan.load_exceptions() if e.chart == "microservice"]
    assert shared and all(e.resource.endswith(".*.*") for e in shared), [e.resource for e in shared]


def test_failed_checks_become_plan_findings() -> None:
    found = scan.failures(CHECKS, [RELEASE])
    new, _ = scan.judge(found, (accept("CKV_K8S_11", "Deployment.ns.c"),), {"c"})
    levels = {f["rule"]: f["level"] for f in scan.findings(found, new, "prod")}
    assert levels == {"checkov-CKV_K8S_11": "advisory", "checkov-CKV2_K8S_6": "mandatory"}
    assert scan.findings(found, new, "dev") == []
