"""Helm's engine on the plan (analysis/render.py), proven offline on the test charts of tests/charts/.

Facts about helm-python-sdk 0.2.2 (Helm v4.2.3's Go SDK) these tests pin: a render applies the
release name, namespace and install mode, the chart's values.schema.json, and, through its native
render options, `.Capabilities.KubeVersion` and `.Capabilities.APIVersions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import pytest

from analysis import render as render_module
from analysis.helm import RenderError, load_objects, render_chart
from analysis.render import CLUSTER_TYPE, RELEASE_TYPE, placeholder_paths, render_plan
from model.charts import sha256
from stacks.data import LockEntry
from tools.charts import write_lock
from tools.mocks import ROOT

CHARTS = ROOT / "tests" / "charts"


def widgets(values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    options: dict[str, Any] = {"release": "shop", "namespace": "retail", "kube_version": "1.35", **kwargs}
    with helm_python.Chart.load(CHARTS / "widgets") as chart:
        return render_chart(chart, values or {}, **options)


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objects}


def test_render_applies_release_name_namespace_install_mode_and_kube_version() -> None:
    facts = by_kind(widgets())["ConfigMap"]["data"]
    assert facts == {
        "release": "shop",
        "namespace": "retail",
        "isInstall": "true",
        "kubeVersion": "v1.35.0",
        "servesGadgets": "false",
    }
    assert by_kind(widgets(kube_version="v1.34.2"))["ConfigMap"]["data"]["kubeVersion"] == "v1.34.2"


def test_api_versions_reach_the_capabilities() -> None:
    objects = by_kind(widgets(api_versions=["gadgets.example.com/v1"]))
    assert objects["ConfigMap"]["data"]["servesGadgets"] == "true"
    assert objects["Gadget"]["spec"] == {"speed": 3}
    assert "Gadget" not in by_kind(widgets())


def test_crds_folder_is_installed_unless_skipped() -> None:
    assert "CustomResourceDefinition" in by_kind(widgets())
    assert "CustomResourceDefinition" not in by_kind(widgets(include_crds=False))


def test_notes_and_test_hooks_are_not_objects_and_output_is_sorted() -> None:
    objects = widgets()
    assert "Pod" not in by_kind(objects), "a helm.sh/hook: test Pod runs only on `helm test`"
    keys = [(o["apiVersion"], o["kind"], o["metadata"].get("name")) for o in objects]
    assert keys == sorted(keys)
    assert objects == widgets(), "the same render twice gives the same objects"


def test_values_reach_the_templates_and_the_schema_refuses_bad_values() -> None:
    assert by_kind(widgets({"size": 7}))["Widget"]["spec"]["size"] == 7
    with pytest.raises(RenderError, match="size"):
        widgets({"size": "seven"})
    with pytest.raises(RenderError, match="additional properties 'colour' not allowed"):
        widgets({"colour": "red"})


def test_a_template_fail_is_a_render_error_with_helms_message() -> None:
    with helm_python.Chart.load(CHARTS / "fails-on") as chart:
        render_chart(chart, {}, release="eso", namespace="eso", kube_version="1.35")  # defaults render
        with pytest.raises(
            RenderError, match="disabled processing of PushSecrets but not ClusterPushSecrets"
        ):
            render_chart(
                chart, {"processPushSecret": False}, release="eso", namespace="eso", kube_version="1.35"
            )


def test_manifests_parse_like_helm() -> None:
    text = "# comment only\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  op: =\n---\n"
    assert load_objects({"t/a.yaml": text, "t/NOTES.txt": "not: yaml: at all"}) == [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"op": "="}}
    ]
    with pytest.raises(RenderError, match=r"t/b\.yaml renders a document that is not a Kubernetes object"):
        load_objects({"t/b.yaml": "just: a map\n"})
    with pytest.raises(RenderError, match=r"t/c\.yaml renders invalid YAML"):
        load_objects({"t/c.yaml": "a: [unclosed\n"})


def test_placeholder_paths_name_every_masked_value() -> None:
    values = {"a": {"token": "[secret]", "list": [1, "[secret]"]}, "b": "plain"}
    assert placeholder_paths(values) == ["a.token", "a.list.1"]
    assert placeholder_paths({"b": "plain"}) == []


# -- render_plan: the analysis over a plan's resources -------------------------------------------


def release(name: str, chart: str, version: str, values: Any = None, **inputs: Any) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:test::eks-platform::{RELEASE_TYPE}::{name}",
        "type": RELEASE_TYPE,
        "inputs": {
            "name": name,
            "namespace": f"ns-{name}",
            "chart": chart,
            "version": version,
            "repositoryOpts": {"repo": "https://charts.example.com"},
            "values": {} if values is None else values,
            **inputs,
        },
    }


CLUSTER = {
    "urn": "urn:pulumi:test::eks-platform::eks:index:Cluster::c",
    "type": CLUSTER_TYPE,
    "inputs": {"version": "1.35"},
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("charts")
    for chart in ("widgets", "gadget-crds", "fails-on"):
        helm_python.package(CHARTS / chart, destination=folder)
    return folder


def test_plan_renders_each_release_with_its_values_and_the_plans_kube_version(
    cache: Path, tmp_path: Path
) -> None:
    plan = [CLUSTER, release("shop", "widgets", "0.1.0", {"size": 5})]
    report = render_plan(plan, cache=cache, lock_file=tmp_path / "none.yaml")
    assert report.kube_version == "1.35" and not report.not_rendered
    (entry,) = report.document()["rendered"]
    assert {k: entry[k] for k in ("urn", "release", "namespace", "chart", "version")} == {
        "urn": plan[1]["urn"],
        "release": "shop",
        "namespace": "ns-shop",
        "chart": "widgets",
        "version": "0.1.0",
    }
    objects = by_kind(entry["objects"])
    assert objects["Widget"]["spec"]["size"] == 5
    assert objects["ConfigMap"]["data"]["kubeVersion"] == "v1.35.0"
    assert report.rendered[0].kinds() == {
        "ConfigMap": 1,
        "CustomResourceDefinition": 1,
        "ServiceAccount": 1,
        "Widget": 1,
    }


def test_releases_asking_for_capabilities_see_the_crds_of_the_other_releases(
    cache: Path, tmp_path: Path
) -> None:
    plan = [CLUSTER, release("gadgets", "gadget-crds", "1.2.3"), release("shop", "widgets", "0.1.0")]
    report = render_plan(plan, cache=cache, lock_file=tmp_path / "none.yaml")
    shop = next(r for r in report.rendered if r.request.release == "shop")
    assert by_kind(shop.objects)["ConfigMap"]["data"]["servesGadgets"] == "true"
    alone = render_plan([CLUSTER, release("shop", "widgets", "0.1.0")], cache=cache, lock_file=tmp_path / "n")
    assert "Gadget" not in by_kind(alone.rendered[0].objects)


def test_skip_crds_leaves_the_crds_folder_out(cache: Path, tmp_path: Path) -> None:
    plan = [CLUSTER, release("shop", "widgets", "0.1.0", skipCrds=True)]
    (rendered,) = render_plan(plan, cache=cache, lock_file=tmp_path / "none.yaml").rendered
    assert "CustomResourceDefinition" not in rendered.kinds()


def test_missing_package_is_listed_with_the_reason_and_the_plan_goes_on(cache: Path, tmp_path: Path) -> None:
    plan = [CLUSTER, release("shop", "widgets", "0.1.0"), release("old", "widgets", "0.0.9")]
    report = render_plan(plan, cache=cache, lock_file=tmp_path / "none.yaml")
    assert [r.request.release for r in report.rendered] == ["shop"]
    (missing,) = report.document()["notRendered"]
    assert missing["release"] == "old" and missing["error"] is False
    assert "no package widgets-0.0.9.tgz in the chart cache" in missing["reason"]
    assert not report.errors


def test_a_package_that_does_not_match_the_lock_is_not_rendered(cache: Path, tmp_path: Path) -> None:
    lock = tmp_path / "charts-lock.yaml"
    plan = [CLUSTER, release("shop", "widgets", "0.1.0")]
    good = sha256(cache / "widgets-0.1.0.tgz")
    write_lock({"widgets": LockEntry(chart="widgets", version="0.1.0", sha256=good)}, lock)
    assert render_plan(plan, cache=cache, lock_file=lock).rendered
    write_lock({"widgets": LockEntry(chart="widgets", version="0.1.0", sha256="0" * 64)}, lock)
    report = render_plan(plan, cache=cache, lock_file=lock)
    assert not report.rendered
    assert "does not match the sha256 in charts-lock.yaml" in report.not_rendered[0].reason


def test_a_release_helm_refuses_is_a_plan_error_naming_release_chart_and_message(
    cache: Path, tmp_path: Path
) -> None:
    plan = [CLUSTER, release("eso", "fails-on", "0.1.0", {"processPushSecret": False})]
    report = render_plan(plan, cache=cache, lock_file=tmp_path / "none.yaml")
    (error,) = report.errors
    doc = error.document()
    assert doc["release"] == "eso" and doc["chart"] == "fails-on" and doc["error"] is True
    assert "You have disabled processing of PushSecrets but not ClusterPushSecrets" in doc["reason"]


def test_secret_values_are_rendered_as_placeholders_or_not_at_all(cache: Path, tmp_path: Path) -> None:
    lock = tmp_path / "none.yaml"
    masked = render_plan(
        [CLUSTER, release("shop", "widgets", "0.1.0", {"note": "[secret]"})], cache=cache, lock_file=lock
    )
    assert masked.document()["rendered"][0]["placeholders"] == ["note"]
    assert by_kind(masked.rendered[0].objects)["Widget"]["spec"]["note"] == "[secret]"
    whole = render_plan(
        [CLUSTER, release("shop", "widgets", "0.1.0", "[secret]")], cache=cache, lock_file=lock
    )
    assert not whole.rendered and "values are a secret" in whole.not_rendered[0].reason


def test_the_memo_serves_the_same_inputs_and_renders_changed_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    helm_python.package(CHARTS / "widgets", destination=cache)
    lock = tmp_path / "none.yaml"
    plan = [CLUSTER, release("shop", "widgets", "0.1.0", {"size": 2})]
    first = render_plan(plan, cache=cache, lock_file=lock)
    assert list((cache / ".rendered").glob("objects-*.json"))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RenderError("rendered again")

    monkeypatch.setattr(render_module, "render_chart", refuse)
    again = render_plan(plan, cache=cache, lock_file=lock)
    assert again.document() == first.document(), "same package, values and capabilities: read back"
    for changed in (
        [CLUSTER, release("shop", "widgets", "0.1.0", {"size": 3})],
        [release("shop", "widgets", "0.1.0", {"size": 2})],  # no cluster: another Kubernetes version
        [CLUSTER, release("shop", "widgets", "0.1.0", {"size": 2}, namespace="other")],
    ):
        assert render_plan(changed, cache=cache, lock_file=lock).errors, changed


def test_the_memo_keeps_helms_refusal_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    helm_python.package(CHARTS / "fails-on", destination=cache)
    plan = [CLUSTER, release("eso", "fails-on", "0.1.0", {"processPushSecret": False})]
    first = render_plan(plan, cache=cache, lock_file=tmp_path / "none.yaml")
    monkeypatch.setattr(render_module, "render_chart", lambda *a, **k: pytest.fail("rendered again"))
    again = render_plan(plan, cache=cache, lock_file=tmp_path / "none.yaml")
    assert [e.document() for e in again.errors] == [e.document() for e in first.errors] != []
