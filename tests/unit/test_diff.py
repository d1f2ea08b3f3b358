"""Diff (analysis/diff.py, tools/diff.py, platform/replacement.yaml): changes, findings, cost change."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from analysis.diff import (
    RULE_DELETE_PROTECTED,
    RULE_REPLACE_STATEFUL,
    ReplacementRules,
    diff_plans,
    replacement_rules,
)
from stacks.data import load_yaml
from tools import diff as diff_cli
from tools.mocks import MASKED, ROOT, PlanResult


def _find(document: dict[str, Any], typ: str, suffix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = next(
        r for r in document["resources"] if r["type"] == typ and r["name"].endswith(suffix)
    )
    return found


def test_a_plan_against_itself_has_no_changes(prod: PlanResult) -> None:
    report = diff_plans(prod.document(), prod.document())
    assert (report.added, report.removed, report.changed, report.findings) == ([], [], [], [])
    assert report.cost["change"] is None or report.cost["change"] == 0


def test_deleting_a_protected_resource_is_a_finding(prod: PlanResult) -> None:
    base = prod.document()
    head = copy.deepcopy(base)
    key = _find(head, "aws:kms/key:Key")
    assert key["protect"]
    head["resources"].remove(key)
    report = diff_plans(base, head)
    assert report.removed == [{"urn": key["urn"], "type": key["type"], "protect": True}]
    assert [(f["rule"], f["urn"]) for f in report.findings] == [(RULE_DELETE_PROTECTED, key["urn"])]


def test_deleting_an_unprotected_resource_is_not(dev: PlanResult) -> None:
    base = dev.document()
    head = copy.deepcopy(base)
    head["resources"].remove(_find(head, "aws:kms/key:Key"))
    report = diff_plans(base, head)
    assert len(report.removed) == 1 and report.findings == []


def test_a_changed_cidr_replaces_the_vpc_and_a_changed_retention_does_not(prod: PlanResult) -> None:
    base = prod.document()
    head = copy.deepcopy(base)
    _find(head, "awsx:ec2:Vpc")["inputs"]["cidrBlock"] = "10.99.0.0/16"
    _find(head, "aws:cloudwatch/logGroup:LogGroup")["inputs"]["retentionInDays"] = 90
    report = diff_plans(base, head)
    changes = {(c.type, i.path): i for c in report.changed for i in c.inputs}
    assert changes[("awsx:ec2:Vpc", "cidrBlock")].replaces
    assert not changes[("aws:cloudwatch/logGroup:LogGroup", "retentionInDays")].replaces
    (finding,) = report.findings
    assert finding["rule"] == RULE_REPLACE_STATEFUL and "cidrBlock" in finding["message"]


def test_renaming_a_release_replaces_it_only_when_it_keeps_volumes(prod: PlanResult) -> None:
    base = prod.document()
    head = copy.deepcopy(base)
    _find(head, "kubernetes:helm.sh/v3:Release", "monitoring-stack")["inputs"]["namespace"] = "obs"
    _find(head, "kubernetes:helm.sh/v3:Release", "secrets-operator")["inputs"]["namespace"] = "eso"
    report = diff_plans(base, head)
    assert [f["urn"].rsplit("::", 1)[-1] for f in report.findings] == ["eks-platform-prod-monitoring-stack"]


def test_secrets_stay_masked_in_the_diff(prod: PlanResult) -> None:
    base = prod.document()
    head = copy.deepcopy(base)
    version = _find(head, "aws:secretsmanager/secretVersion:SecretVersion")
    assert version["inputs"]["secretString"] == MASKED
    version["inputs"]["description"] = "rotated"
    text = json.dumps(diff_plans(base, head).document())
    assert "generated-" not in text and MASKED not in text.replace('"before": null', "")


def test_two_stacks_compare_without_the_stack_name_noise(dev: PlanResult, prod: PlanResult) -> None:
    report = diff_plans(dev.document(), prod.document())
    assert report.findings == []  # deletions and replacements between stacks are not events
    added = {a["urn"].rsplit("::", 1)[-1] for a in report.added}
    assert "eks-platform-<stack>-network-sts" in added
    changed = {
        (c.urn.rsplit("::", 1)[-1], i.path): (i.before, i.after) for c in report.changed for i in c.inputs
    }
    assert changed[("eks-platform-<stack>-system-mng", "scalingConfig.desiredSize")] == (2, 3)
    assert not any("dev" in str(v) and "prod" in str(v) for k, v in changed.items() if "name" in k[1])
    assert report.cost["change"] == round(report.cost["after"] - report.cost["before"], 2) > 0


def test_every_stateful_type_names_a_source_in_the_file_header() -> None:
    rules = replacement_rules()
    header = (ROOT / "platform" / "replacement.yaml").read_text().split("types:")[0]
    assert {t.source for t in rules.types.values()} <= {
        line.split(":")[0].strip("# -") for line in header.splitlines() if line.startswith("# - ")
    }
    bad = load_yaml("replacement.yaml")
    bad["types"]["aws:kms/key:Key"]["replaceOn"] = []
    with pytest.raises(ValueError, match="replaceOn"):
        ReplacementRules.model_validate(bad)


def test_cli_compares_saved_plans_and_writes_json_and_markdown(
    prod: PlanResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = prod.document()
    head = copy.deepcopy(base)
    _find(head, "awsx:ec2:Vpc")["inputs"]["cidrBlock"] = "10.99.0.0/16"
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(base))
    b.write_text(json.dumps(head))
    out, md = tmp_path / "diff.json", tmp_path / "summary.md"
    assert diff_cli.main(["--a", str(a), "--b", str(b), "--json", str(out), "--markdown", str(md)]) == 0
    written = json.loads(out.read_text())
    assert set(written) >= {"added", "removed", "changed", "findings", "cost"}
    assert written["findings"][0]["rule"] == RULE_REPLACE_STATEFUL
    assert "(replaces)" in md.read_text() and "replaces" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv", [["--stack", "dev"], ["--a", "x.json"], ["--stack", "dev", "--base", "x", "--other", "y"]]
)
def test_cli_rejects_an_incomplete_request(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert diff_cli.main(argv) == 2
    assert "make diff:" in capsys.readouterr().err


def test_base_mode_plans_a_revision_in_a_temporary_worktree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout")
    out = tmp_path / "diff.json"
    assert diff_cli.main(["--stack", "dev", "--base", "HEAD", "--json", str(out)]) == 0
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert "plan-diff-" not in listed, "the temporary worktree must be removed"
    assert json.loads(out.read_text())["base"] == "dev@HEAD"
    assert diff_cli.main(["--stack", "dev", "--base", "no-such-revision"]) == 2
    assert "cannot check out" in capsys.readouterr().err


def test_ci_puts_the_diff_against_the_base_branch_and_the_diagrams_in_pull_requests() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "infra-ci.yml").read_text())
    (job,) = workflow["jobs"].values()
    step = next(s for s in job["steps"] if "tools.diff" in s.get("run", ""))
    assert "github.event_name == 'pull_request'" in step["if"]
    assert step["env"]["BASE_REF"] == "${{ github.base_ref }}"
    run = step["run"]
    assert '--base "origin/${BASE_REF}"' in run and '--markdown "$GITHUB_STEP_SUMMARY"' in run
    assert "tools.diagram" in run and '>> "$GITHUB_STEP_SUMMARY"' in run


def test_a_plain_vpc_is_replaced_on_its_cidr_and_not_on_dns_hostnames() -> None:
    """aws:ec2/vpc:Vpc from terraform-provider-aws internal/service/ec2/vpc_.go (ForceNew cidr_block)."""
    urn = "urn:pulumi:s::p::pulumi:pulumi:Stack$platform:network:Network$aws:ec2/vpc:Vpc::p-s-vpc"
    vpc = {"urn": urn, "type": "aws:ec2/vpc:Vpc", "name": "p-s-vpc", "protect": False}
    cost = {"currency": "USD", "fixedMonthly": 1.0, "pricesAsOf": "2026-01-01"}

    def plan(**inputs: Any) -> dict[str, Any]:
        return {"stack": "s", "project": "p", "resources": [{**vpc, "inputs": inputs}], "cost": cost}

    base = plan(cidrBlock="10.0.0.0/16", enableDnsHostnames=True)
    assert diff_plans(base, plan(cidrBlock="10.1.0.0/16", enableDnsHostnames=True)).findings
    assert not diff_plans(base, plan(cidrBlock="10.0.0.0/16", enableDnsHostnames=False)).findings


def test_the_text_groups_changes_by_component_with_short_urns_at_80_columns(prod: PlanResult) -> None:
    base = prod.document()
    head = copy.deepcopy(base)
    _find(head, "awsx:ec2:Vpc")["inputs"]["cidrBlock"] = "10.99.0.0/16"
    gone = next(r for r in head["resources"] if r["type"] == "aws:ec2/vpcEndpoint:VpcEndpoint")
    head["resources"].remove(gone)
    report = diff_plans(base, head)
    console = Console(width=80, record=True, color_system=None)
    diff_cli.render(report, console)
    lines = console.export_text().splitlines()
    assert lines[1].startswith("0 added, 1 removed, 1 changed;"), "the counts come first"
    assert all(len(line) <= 80 for line in lines)
    assert not any("urn:pulumi:" in line for line in lines)
    network = next(i for i, line in enumerate(lines) if line.startswith("platform:network:Network "))
    assert f"- aws:ec2/vpcEndpoint:VpcEndpoint {gone['name']}" in lines[network + 1 :]
    assert "~ awsx:ec2:Vpc eks-platform-prod-network-vpc" in lines[network + 1 :]
    assert diff_cli.component(gone["urn"]) == "platform:network:Network"
    assert diff_cli.component("urn:pulumi:s::p::pulumi:providers:aws::p-s-aws") == "(stack)"


def test_a_long_input_path_keeps_its_start_and_its_end_within_the_room() -> None:
    from tools.diff import fit_path

    assert fit_path("values.replicas", 40) == "values.replicas"
    long = "values.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.0.weight"
    fitted = fit_path(long, 40)
    assert len(fitted) == 40 and "…" in fitted
    assert fitted.startswith("values.affini") and fitted.endswith("DuringExecution.0.weight")
