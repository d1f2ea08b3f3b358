"""The offline plan: its JSON contract, its CLI, and its refusal to plan a bad config."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from model.records import PlanResult
from stacks.config import ConfigError
from tools import plan as plan_cli
from tools.mocks import ROOT, run_program, stack_config, stack_names

SCHEMA_PATH = ROOT / "tests" / "fixtures" / "plan.schema.json"
SHARED_SCHEMA = ROOT.parent / "shared" / "plan.schema.json"


def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def test_vendored_schema_matches_the_shared_contract() -> None:
    if not SHARED_SCHEMA.exists():
        pytest.skip("the shared plan contract is not beside this checkout; the vendored copy is used")
    assert json.loads(SHARED_SCHEMA.read_text()) == schema()


def test_plan_document_validates_against_the_contract(plan: PlanResult) -> None:
    document = plan.document()
    jsonschema.validate(document, schema())
    assert document["project"] == "eks-platform" and document["stack"] == plan.stack
    urns = {r["urn"] for r in document["resources"]}
    for resource in document["resources"]:
        stack_urn = f"urn:pulumi:{plan.stack}::eks-platform::pulumi:pulumi:Stack::eks-platform-{plan.stack}"
        assert resource["parent"] in urns | {stack_urn}
        # Remote components (eks, awsx) build their children out of the mocks' sight; an Output of
        # such a child (the aws.eks.Cluster inside eks.Cluster) is a dependency we cannot list.
        inner = {d for d in resource["dependencies"] if "::aws:eks/cluster:Cluster::" in d}
        assert set(resource["dependencies"]) - inner <= urns
        if resource["custom"] and not resource["type"].startswith("pulumi:providers:"):
            assert resource["provider"], resource["urn"]


def test_plan_document_holds_no_secret_value(plan: PlanResult) -> None:
    text = json.dumps(plan.document())
    assert "certificate-authority-data" not in text  # the kubeconfig is a secret everywhere
    assert plan.document()["outputs"]["kubeconfig"] == "[secret]"


def test_cli_writes_the_json_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An empty chart cache: this test is about the document, tests/unit/test_render*.py about Helm.
    monkeypatch.setenv("EKS_PLATFORM_CHARTS", str(tmp_path / "charts"))
    out = tmp_path / "plan.json"
    assert plan_cli.main(["--stack", "prod", "--json", str(out), "--tree"]) == 0
    document = json.loads(out.read_text())
    jsonschema.validate(document, schema())
    printed = capsys.readouterr().out
    assert "eks:index:Cluster" in printed and "protect" in printed and "Stack outputs" in printed
    assert "Resource tree" in printed, "--tree adds the tree"


def test_cli_rejects_bad_config_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = stack_config("prod")
    network = json.loads(raw["eks-platform:network"])
    raw["eks-platform:network"] = json.dumps({**network, "azCount": 9, "cidr": "10.0.0.1/16"})
    raw["eks-platform:clustr"] = "{}"
    monkeypatch.setattr(plan_cli, "run_stack", lambda stack: run_program(stack, raw))
    out = tmp_path / "plan.json"
    assert plan_cli.main(["--stack", "prod", "--json", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert "Pulumi.prod.yaml" in err
    for key in ("eks-platform:network.azCount", "eks-platform:network.cidr", "eks-platform:clustr"):
        assert key in err
    assert "Traceback" not in err


def test_cli_names_the_stacks_when_the_file_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_cli.main(["--stack", "no-such-stack"]) == 2
    assert f"stacks: {', '.join(stack_names())}" in capsys.readouterr().err


def test_config_error_is_a_clean_pulumi_run_error() -> None:
    import pulumi

    assert issubclass(ConfigError, pulumi.RunError)


def test_stack_config_reads_like_the_engine() -> None:
    raw, secret_keys = stack_config("prod")
    assert raw["pulumi:disable-default-providers"] == '["*"]'  # project-level value
    assert raw["eks-platform:production"] == "true"  # the stack file wins over the project default
    assert json.loads(raw["eks-platform:network"])["natStrategy"] == "onePerAz"
    assert secret_keys == []
    dev, _ = stack_config("dev")
    assert dev["eks-platform:production"] == "false"  # project default where the stack is silent
