"""`make plan` tells the truth: unreadable stack files, bad JSON paths, stale plans, a third stack."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import tools.mocks
from stacks.config import OFFLINE_KEY, PROJECT
from stacks.delivery import values_placeholders
from tools import plan as plan_cli
from tools.mocks import ROOT, StackFileError, read_stack_file, run_program, stack_config

BROKEN_INDENT = """config:
  aws:region: eu-west-1
  eks-platform:network:
    cidr: 10.0.0.0/16
   natStrategy: single
"""


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty checkout holding only Pulumi.yaml, seen by the offline engine and the plan CLI."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    monkeypatch.setattr(tools.mocks, "ROOT", tmp_path)
    monkeypatch.setattr(plan_cli, "ROOT", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (BROKEN_INDENT, "Pulumi.broken.yaml:5:4: YAML syntax error: did not find expected key"),
        (
            "config:\n  aws:region: [eu-west-1\n",
            "Pulumi.broken.yaml:3:1: YAML syntax error: did not find expected",
        ),
        ("aws:region: eu-west-1\n", "Pulumi.broken.yaml: has no `config:` mapping"),
        ("", "Pulumi.broken.yaml: has no `config:` mapping"),
        (
            f"config:\n  {OFFLINE_KEY}: true\n",
            f"Pulumi.broken.yaml: {PROJECT}:{OFFLINE_KEY} is set by the offline engine only",
        ),
    ],
)
def test_an_unreadable_stack_file_is_two_lines_and_exit_2(
    checkout: Path, text: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (checkout / "Pulumi.broken.yaml").write_text(text)
    stale = checkout / "plan.json"
    stale.write_text("{}")
    assert plan_cli.main(["--stack", "broken", "--json", str(stale)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith(problem), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not stale.exists(), "a failed plan leaves no stale JSON behind"


def test_a_readable_stack_file_is_read(checkout: Path) -> None:
    (checkout / "Pulumi.ok.yaml").write_text("config:\n  aws:region: eu-west-1\n")
    assert read_stack_file(checkout / "Pulumi.ok.yaml") == {"config": {"aws:region": "eu-west-1"}}
    (checkout / "Pulumi.bad.yaml").write_text("config: [\n")
    with pytest.raises(StackFileError, match=r"Pulumi\.bad\.yaml:2:1: YAML syntax error"):
        read_stack_file(checkout / "Pulumi.bad.yaml")


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("no/such/dir/p.json", "the folder .*no/such/dir does not exist"),
        (".", "it is a folder"),
    ],
)
def test_a_bad_json_path_is_refused_before_planning(
    tmp_path: Path, target: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plan_cli.main(["--stack", "dev", "--json", str(tmp_path / target)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "", "nothing is planned or printed"
    assert "Cannot write" in captured.err and "Traceback" not in captured.err
    assert re.search(problem, captured.err), captured.err


@pytest.mark.usefixtures("cli_on_session_plans")
def test_a_failed_plan_removes_the_previous_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.json"
    assert plan_cli.main(["--stack", "dev", "--json", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text())["stack"] == "dev"
    raw, _ = stack_config("dev")
    raw["aws:region"] = "eu-wst-1"
    monkeypatch.setattr(plan_cli, "run_stack", lambda stack: run_program(stack, raw))
    assert plan_cli.main(["--stack", "dev", "--json", str(out)]) == 2
    assert not out.exists()
    assert "did you mean 'eu-west-1'" in capsys.readouterr().err


@pytest.mark.usefixtures("cli_on_session_plans")
def test_the_plan_lists_the_placeholders_to_replace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "plan.json"
    assert plan_cli.main(["--stack", "prod", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "documentation placeholder(s) to replace before a real deploy" in out
    key, value = "eks-platform:cluster.adminRoleArns.0", "arn:aws:iam::123456789012:role/platform-admins"
    assert f"  {key}\n    = {value}:" in out, "the key, then its value on the next line"
    listed = json.loads(out_json.read_text())["placeholders"]
    assert {"key": key, "value": value, "reason": "the AWS documentation account ID"} in listed
    # ...and those of the services' values files, which the new-service and new-stack commands write.
    values = [p for p in listed if p["key"].startswith("services/")]
    assert values == [
        {"key": k, "value": v, "reason": r} for k, v, r in values_placeholders(ROOT, "prod", services("prod"))
    ]


def services(stack: str) -> list[str]:
    raw, _ = stack_config(stack)
    return [s["name"] for s in json.loads(raw[f"{PROJECT}:delivery"]).get("services", [])]


def test_values_file_placeholders_name_the_file_and_key(tmp_path: Path) -> None:
    deploy = tmp_path / "services" / "a" / "deploy"
    deploy.mkdir(parents=True)
    repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/p-dev/a"
    (deploy / "dev.yaml").write_text(f"image:\n  repository: {repository}\n  tag: x\nenv: {{A: b}}\n")
    assert values_placeholders(tmp_path, "dev", ["a", "missing"]) == [
        ("services/a/deploy/dev.yaml: image.repository", repository, "the AWS documentation account ID")
    ]
    (deploy / "dev.yaml").write_text("image:\n  repository: 210987654321.dkr.ecr.eu-west-1.amazonaws.com/x\n")
    assert values_placeholders(tmp_path, "dev", ["a"]) == []
