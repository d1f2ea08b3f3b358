"""Helm rendering in `make plan` (tools/plan.py): the `rendered`, `notRendered` and `validation`
sections of the plan document, the text plan, and the exit code when Helm refuses a release.

The upstream chart packages are not in the repository: the test that renders them runs when the
chart cache (`make charts`) has them and skips with the reason otherwise.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import helm_python
import jsonschema
import pytest
import yaml

from analysis.render import render_plan
from analysis.validate import validate_rendered
from model.charts import cache_dir, package_name
from model.records import PlanResult
from stacks.data import chart_specs
from tests.conftest import STACKS
from tools import plan as plan_cli
from tools.mocks import ROOT

CHARTS = ROOT / "tests" / "charts"


def stand_in(source: str, name: str, version: str, folder: Path, values: dict[str, object]) -> None:
    """Package a test chart under a pinned chart's name and version into `folder`."""
    chart = folder / "src" / name
    shutil.copytree(CHARTS / source, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    (chart / "Chart.yaml").write_text(yaml.safe_dump({**meta, "name": name, "version": version}))
    (chart / "values.yaml").write_text(yaml.safe_dump(values))
    helm_python.package(chart, destination=folder)


@pytest.mark.usefixtures("cli_on_session_plans")
def test_plan_writes_rendered_objects_and_exits_1_when_helm_refuses_a_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = chart_specs()
    cache = tmp_path / "charts"
    cache.mkdir()
    crds, metrics = specs["karpenter-crd"], specs["metrics-server"]
    stand_in("gadget-crds", "karpenter-crd", crds.version, cache, {})
    stand_in(
        "fails-on",
        "metrics-server",
        metrics.version,
        cache,
        {"processPushSecret": False, "processClusterPushSecret": True},
    )
    monkeypatch.setenv("EKS_PLATFORM_CHARTS", str(cache))
    out = tmp_path / "plan.json"

    assert plan_cli.main(["--stack", "dev", "--json", str(out), "--objects"]) == 1
    document = json.loads(out.read_text())
    jsonschema.validate(document, json.loads((ROOT / "tests" / "fixtures" / "plan.schema.json").read_text()))

    (rendered,) = document["rendered"]
    assert rendered["chart"] == crds.chart and rendered["release"] == "karpenter-crd"
    assert [o["kind"] for o in rendered["objects"]] == ["CustomResourceDefinition"]
    not_rendered = {n["release"]: n for n in document["notRendered"]}
    assert not_rendered["metrics-server"]["error"] is True
    assert "disabled processing of PushSecrets" in not_rendered["metrics-server"]["reason"]
    assert {n["error"] for r, n in not_rendered.items() if r != "metrics-server"} == {False}
    assert document["validation"]["problems"] == [] and document["validation"]["checked"] == 1

    printed = capsys.readouterr()
    assert "CustomResourceDefinition 1" in printed.out, "the per-release count by kind"
    assert "name: gadgets.gadgets.example.com" in printed.out, "--objects prints the objects"
    assert "not rendered" in printed.out and "run `make charts`" in printed.out
    assert "Helm cannot render release metrics-server" in printed.err and metrics.chart in printed.err
    assert "Traceback" not in printed.err


@pytest.mark.parametrize("stack", STACKS)
def test_every_cached_upstream_chart_renders_with_the_platforms_values_and_validates(
    stack: str, plans: dict[str, PlanResult]
) -> None:
    cached = [
        k for k, s in chart_specs().items() if (cache_dir() / package_name(s.chart, s.version)).exists()
    ]
    if not cached:
        pytest.skip(
            f"no pinned chart package in {cache_dir()}: run `make charts` (needs the chart repositories)"
        )
    resources = [r.document() for r in plans[stack].records]
    report = render_plan(resources)
    assert [e.document() for e in report.errors] == []
    validation = validate_rendered(report.document()["rendered"], report.kube_version)
    assert [p.document() for p in validation.problems] == []
    assert validation.unknown_kinds == {}
