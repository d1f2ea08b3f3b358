"""Validation of rendered objects (analysis/validate.py): Kubernetes' own schemas, CRD schemas from
the plan's rendered CRDs or an offline schema folder, and unknown kinds listed.

Built-in schemas: kubernetes-validate 1.37.0 (`kubernetes-json-schema/v1.35.0-local-strict`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import helm_python
import pytest

from analysis import validate as validate_module
from analysis.helm import render_chart
from analysis.validate import crd_schemas, schema_version, validate_rendered
from tools.mocks import ROOT

CHARTS = ROOT / "tests" / "charts"
URN = "urn:pulumi:test::eks-platform::kubernetes:helm.sh/v3:Release::shop"


def entry(*objects: dict[str, Any]) -> dict[str, Any]:
    return {"urn": URN, "release": "shop", "objects": list(objects)}


def widgets(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with helm_python.Chart.load(CHARTS / "widgets") as chart:
        return render_chart(chart, values or {}, release="shop", namespace="retail", kube_version="1.35")


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        },
    },
}


def test_schema_version_is_the_newest_not_newer_than_the_cluster() -> None:
    assert schema_version("1.35") == "1.35.0"
    assert schema_version("v1.35.4") == "1.35.0"
    with pytest.raises(ValueError, match=r"no schemas for Kubernetes 1\.1"):
        schema_version("1.1")


def test_a_valid_builtin_object_passes() -> None:
    report = validate_rendered([entry(DEPLOYMENT)], "1.35")
    assert report.checked == 1 and report.problems == [] and report.unknown_kinds == {}


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"replicas": "two"}, "$.spec.replicas", "'two' is not of type"),
        ({"replicaz": 2}, "$.spec", "'replicaz' was unexpected"),
        (
            {"template": {"spec": {"containers": [{"image": "nginx:1.27"}]}}},
            "$.spec.template.spec.containers[0]",
            "'name' is a required property",
        ),
    ],
)
def test_a_builtin_object_breaking_kubernetes_schema_is_a_problem(
    change: dict[str, Any], path: str, message: str
) -> None:
    bad = json.loads(json.dumps(DEPLOYMENT))
    bad["spec"].update(change)
    (problem,) = validate_rendered([entry(bad)], "1.35").problems
    assert (problem.release, problem.object, problem.path) == ("shop", "Deployment shop/web", path)
    assert message in problem.message and problem.source == "Kubernetes 1.35.0"


def test_custom_resources_validate_against_the_crd_the_plan_renders() -> None:
    report = validate_rendered([entry(*widgets())], "1.35", schema_dir=None)
    assert report.problems == [] and report.unknown_kinds == {}
    assert report.checked == 4  # CRD, ConfigMap, ServiceAccount, Widget

    objects = widgets()
    widget = next(o for o in objects if o["kind"] == "Widget")
    widget["spec"].update(size="big", shape="round")
    problems = validate_rendered([entry(*objects)], "1.35", schema_dir=None).problems
    assert {(p.path, p.source) for p in problems} == {
        ("$.spec", "CRD rendered in the plan"),  # shape: closed object
        ("$.spec.size", "CRD rendered in the plan"),
    }


def test_crd_conversion_follows_the_api_server() -> None:
    schema = crd_schemas(widgets())[("widgets.example.com/v1", "Widget")]
    spec = schema["properties"]["spec"]
    assert spec["required"] == ["size"], "color has a default: the API server fills it before validating"
    assert spec["properties"]["port"]["type"] == ["integer", "string"]
    assert spec["properties"]["note"]["type"] == ["string", "null"]
    assert spec["additionalProperties"] is False
    assert "additionalProperties" not in spec["properties"]["extra"], "preserve-unknown-fields stays open"


def test_an_uncompilable_go_pattern_is_not_enforced() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "rules.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Rule"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "mode": {"type": "string", "pattern": "^(?i)(abort|warn)?$"},
                                "name": {"type": "string", "pattern": "^[a-z]+$"},
                            },
                        }
                    },
                },
                {"name": "v0", "served": False, "schema": {"openAPIV3Schema": {"type": "object"}}},
            ],
        },
    }
    schemas = crd_schemas([crd])
    assert set(schemas) == {("example.com/v1", "Rule")}, "only served versions"
    props = schemas[("example.com/v1", "Rule")]["properties"]
    assert "pattern" not in props["mode"] and props["name"]["pattern"] == "^[a-z]+$"


def test_offline_schema_folder_is_the_fallback(tmp_path: Path) -> None:
    folder = tmp_path / "widgets.example.com"
    folder.mkdir()
    (folder / "widget_v1.json").write_text(
        json.dumps(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {"spec": {"type": "object", "properties": {"size": {"maximum": 2}}}},
            }
        )
    )
    widget = next(o for o in widgets() if o["kind"] == "Widget")
    (problem,) = validate_rendered([entry(widget)], "1.35", schema_dir=tmp_path).problems
    assert problem.path == "$.spec.size" and problem.source == "offline schema widgets.example.com"


def test_unknown_kinds_are_listed_not_passed() -> None:
    objects = widgets({"mystery": True})
    report = validate_rendered([entry(*objects)], "1.35", schema_dir=None)
    assert report.unknown_kinds == {"example.com/v1 Mystery": ["shop"]}
    assert report.document()["unknownKinds"] == [{"kind": "example.com/v1 Mystery", "releases": ["shop"]}]
    assert report.checked == len(objects) - 1


def test_the_memo_reads_back_the_same_inputs_and_validates_changed_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = json.loads(json.dumps(DEPLOYMENT))
    bad["spec"]["replicas"] = "two"
    first = validate_rendered([entry(bad)], "1.35", memo=tmp_path)
    assert len(first.problems) == 1 and list(tmp_path.glob("validation-*.json"))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("validated again")

    monkeypatch.setattr(validate_module, "_validate", refuse)
    assert validate_rendered([entry(bad)], "1.35", memo=tmp_path) == first
    with pytest.raises(AssertionError, match="validated again"):
        validate_rendered([entry(DEPLOYMENT)], "1.35", memo=tmp_path)
    with pytest.raises(AssertionError, match="validated again"):
        validate_rendered([entry(bad)], "1.34", memo=tmp_path)
