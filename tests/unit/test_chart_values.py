"""The values each release sends are values its chart reads, and pass the chart's own schema.

Helm ignores a key no template reads, so a typo or a key from another chart version is a setting
that silently does nothing (VPA 0.11.0's `topologySpreadConstraints`, redis-ha's
`haproxy.nodeSelector`). These tests read the pinned charts' data files (`Chart.yaml`,
`values.yaml`, `values.schema.json`, and those of vendored subcharts) from
the offline chart data set beside the checkout (`shared/charts/<chart>-<version>/`) and skip,
with the reason, where that folder is absent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from model.records import PlanResult
from stacks.data import read_yaml
from tools.mocks import ROOT

CHARTS = ROOT.parent / "shared" / "charts"
HELM = "kubernetes:helm.sh/v3:Release"

# Maps whose keys the chart passes through as they are (Kubernetes fields, config files).
FREE_FORM = frozenset(
    {
        "affinity",
        "nodeSelector",
        "resources",
        "annotations",
        "labels",
        "podSecurityContext",
        "securityContext",
        "containerSecurityContext",
        "cm",
        "params",
        "rbac",
    }
)

# Keys absent from a chart's values.yaml that its templates read, each checked in the template at
# the pinned commit (shared/charts/README.md names the commits).
OPTIONAL: dict[str, frozenset[str]] = {
    "kube-prometheus-stack": frozenset(
        {
            # templates/prometheus-operator/deployment.yaml: `if .Values.prometheusOperator.priorityClassName`
            "prometheusOperator.priorityClassName",
            # kube-state-metrics 8.4.0 templates/deployment.yaml: `if .Values.priorityClassName`
            "kube-state-metrics.priorityClassName",
            # prometheus-node-exporter 4.56.1 templates/daemonset.yaml: `with .Values.priorityClassName`
            "prometheus-node-exporter.priorityClassName",
            # grafana 12.11.1 templates/pvc.yaml: `with .Values.persistence.storageClassName`
            "grafana.persistence.storageClassName",
        }
    ),
}


def _load(path: Path) -> dict[str, Any]:
    return read_yaml(path) or {}


def chart_dir(chart: str, version: str) -> Path:
    return CHARTS / f"{chart.rstrip('/').rsplit('/', 1)[-1]}-{version}"


def chart_defaults(folder: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]], frozenset[str]]:
    """values.yaml, each vendored subchart's values.yaml by name, and the dependency conditions."""
    subcharts = {
        _load(meta)["name"]: _load(meta.parent / "values.yaml")
        if (meta.parent / "values.yaml").exists()
        else {}
        for meta in sorted(folder.glob("charts/*/Chart.yaml"))
    }
    conditions = frozenset(
        str(dep["condition"])
        for dep in _load(folder / "Chart.yaml").get("dependencies") or []
        if dep.get("condition")
    )
    return _load(folder / "values.yaml"), subcharts, conditions


def unknown_keys(
    values: Mapping[str, Any],
    defaults: Mapping[str, Any],
    subcharts: Mapping[str, Mapping[str, Any]] = {},
    allowed: frozenset[str] = frozenset(),
    path: tuple[str, ...] = (),
) -> Iterator[str]:
    """Dotted paths in `values` that the chart's values (or a subchart's) do not declare.

    A key under a free-form map, or under a map the chart leaves empty, is accepted: the chart
    passes it through. A subchart's values are checked against its own values.yaml, with the
    parent's overrides for it.
    """
    for key, value in values.items():
        here = (*path, key)
        dotted = ".".join(here)
        if dotted in allowed:
            continue
        if not path and key in subcharts:
            own: Any = _merged(subcharts[key], defaults.get(key) or {})  # with the parent's overrides
            if isinstance(value, Mapping):
                yield from unknown_keys(value, own, {}, allowed, here)
            continue
        if key not in defaults:
            yield dotted
            continue
        own = defaults[key]
        if isinstance(value, Mapping) and isinstance(own, Mapping) and own and key not in FREE_FORM:
            yield from unknown_keys(value, own, {}, allowed, here)


def releases(plan: PlanResult) -> list[tuple[str, str, dict[str, Any]]]:
    return sorted(
        (str(r.get("chart")), str(r.get("version")), r.get("values") or {}) for r in plan.of_type(HELM)
    )


def _folder(chart: str, version: str) -> Path:
    folder = chart_dir(chart, version)
    if not folder.is_dir():
        pytest.skip(f"the data files of {folder.name} are not in the offline chart set beside the checkout")
    return folder


def test_every_key_the_platform_sets_is_a_key_the_chart_reads(plan: PlanResult) -> None:
    problems = []
    for chart, version, values in releases(plan):
        folder = _folder(chart, version)
        defaults, subcharts, conditions = chart_defaults(folder)
        name = folder.name.rsplit("-", 1)[0]
        allowed = OPTIONAL.get(name, frozenset()) | conditions
        problems += [f"{folder.name}: {key}" for key in unknown_keys(values, defaults, subcharts, allowed)]
    assert problems == [], f"{plan.stack}: values no template of the pinned chart reads: {problems}"


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = (
            _merged(out[key], value)
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
            else value
        )
    return out


def test_values_pass_the_charts_own_schema(plan: PlanResult) -> None:
    checked = 0
    for chart, version, values in releases(plan):
        schema_file = _folder(chart, version) / "values.schema.json"
        if schema_file.exists():
            schema = yaml.safe_load(schema_file.read_text())
            defaults, _, _ = chart_defaults(schema_file.parent)
            jsonschema.validate(_merged(defaults, values), schema)
            checked += 1
    assert checked >= 1  # external-secrets 2.9.0 ships a schema


def test_external_secrets_push_processing_is_consistent(plan: PlanResult) -> None:
    """external-secrets 2.9.0 templates/deployment.yaml line 2 `fail`s on PushSecret processing off
    with ClusterPushSecret processing on (shared/charts/README.md, found by rendering)."""
    for chart, version, values in releases(plan):
        if chart == "external-secrets":
            defaults, _, _ = chart_defaults(_folder(chart, version))
            merged = _merged(defaults, values)
            assert merged["processPushSecret"] or not merged["processClusterPushSecret"]


def test_argo_cd_pdbs_have_an_explicit_bound(plan: PlanResult) -> None:
    """argo-cd 10.1.1 templates/argocd-*/pdb.yaml render `minAvailable: {{ .minAvailable | default 0 }}`
    unless `maxUnavailable` is set: an enabled PDB without a bound protects nothing."""
    for chart, _, values in releases(plan):
        if chart == "argo-cd":
            for part, settings in sorted(values.items()):
                pdb = settings.get("pdb", {}) if isinstance(settings, Mapping) else {}
                if pdb.get("enabled"):
                    assert pdb.get("minAvailable") or pdb.get("maxUnavailable"), f"{part}.pdb has no bound"


# The checks above must fire on bad input: synthetic values against the real chart data.


def _chart(name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]], frozenset[str]]:
    folders = sorted(CHARTS.glob(f"{name}-[0-9]*"))
    if not folders:
        pytest.skip(f"no data files of {name} in the offline chart set beside the checkout")
    return chart_defaults(folders[-1])


@pytest.mark.parametrize(
    ("chart", "values", "expected"),
    [
        (
            "vertical-pod-autoscaler",
            {"recommender": {"topologySpreadConstraints": []}},
            ["recommender.topologySpreadConstraints"],
        ),
        (
            "argo-cd",
            {"redis-ha": {"haproxy": {"nodeSelector": {"a": "b"}}}},
            ["redis-ha.haproxy.nodeSelector"],
        ),
        ("metrics-server", {"replica": 2}, ["replica"]),
        ("external-secrets", {"webhook": {"priorityClass": "x"}}, ["webhook.priorityClass"]),
    ],
)
def test_unknown_keys_are_reported(chart: str, values: dict[str, Any], expected: list[str]) -> None:
    defaults, subcharts, conditions = _chart(chart)
    assert list(unknown_keys(values, defaults, subcharts, conditions)) == expected


@pytest.mark.parametrize(
    ("chart", "values"),
    [
        ("metrics-server", {"nodeSelector": {"any/label": "x"}, "resources": {"limits": {"memory": "1Gi"}}}),
        (
            "argo-cd",
            {"redis-ha": {"enabled": True, "nodeSelector": {"a": "b"}}, "configs": {"cm": {"x.y": "1"}}},
        ),
        (
            "kube-prometheus-stack",
            {"grafana": {"persistence": {"enabled": True}}, "crds": {"enabled": False}},
        ),
    ],
)
def test_known_keys_pass(chart: str, values: dict[str, Any]) -> None:
    defaults, subcharts, conditions = _chart(chart)
    assert list(unknown_keys(values, defaults, subcharts, conditions)) == []


def test_schema_rejects_a_bad_value() -> None:
    folders = sorted(CHARTS.glob("external-secrets-[0-9]*"))
    if not folders:
        pytest.skip("no data files of external-secrets in the offline chart set beside the checkout")
    schema = yaml.safe_load((folders[-1] / "values.schema.json").read_text())
    defaults, _, _ = chart_defaults(folders[-1])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_merged(defaults, {"replicaCount": "two"}), schema)
