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
    RULE_REPLACE_PROTECTED,
    RULE_REPLACE_STATEFUL,
    ReplacementRules,
    diff_plans,
    replacement_rules,
)
from model.records import MASKED, PlanResult
from stacks.data import load_yaml
from tools import diff as diff_cli
from tools.mocks import ROOT


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
    # The VPC is protected in prod: the replacement would also fail on the protection.
    assert sorted(f["rule"] for f in report.findings) == [RULE_REPLACE_PROTECTED, RULE_REPLACE_STATEFUL]
    (finding,) = [f for f in report.findings if f["rule"] == RULE_REPLACE_STATEFUL]
    assert "cidrBlock" in finding["message"]


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
    assert RULE_REPLACE_STATEFUL in {f["rule"] for f in written["findings"]}
    assert "(replaces)" in md.read_text() and "replaces" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv", [["--stack", "dev"], ["--a", "x.json"], ["--stack", "dev", "--base", "x", "--other", "y"]]
)
def test_cli_rejects_an_incomplete_request(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert diff_cli.main(argv) == 2
    assert "make diff:" in capsys.readouterr().err


def test_base_mode_plans_a_revision_in_a_temporary_worktree(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    plan_documents: dict[str, dict[str, Any]],
) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout")
    real, planned = diff_cli._plan_in, []

    def plan_in(checkout: Path, stack: str, out: Path, project: str = "platform") -> dict[str, Any]:
        """The revision's plan: `tools.plan` in its worktree, as the command runs it. The working
        tree's: the session's document of the stack (what the same subprocess writes here)."""
        planned.append(checkout)
        if checkout == ROOT:
            return copy.deepcopy(plan_documents[stack])
        return real(checkout, stack, out, project)

    monkeypatch.setattr(diff_cli, "_plan_in", plan_in)
    out = tmp_path / "diff.json"
    assert diff_cli.main(["--stack", "dev", "--base", "HEAD", "--json", str(out)]) == 0
    assert len(planned) == 2 and planned[0] != ROOT and planned[1] == ROOT, planned
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True, check=True
    ).stdout
    # Its own worktree (another checkout of the same repository may be planning a diff meanwhile).
    assert "plan-diff-" in str(planned[0]) and str(planned[0]) not in listed, "the worktree must be removed"
    assert not planned[0].exists()
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


LONG = "values.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.0.weight"


@pytest.mark.parametrize(
    ("path", "room", "fitted"),
    [
        ("values.replicas", 40, "values.replicas"),
        (LONG, 40, "values.affinity….0.weight"),
        (LONG, 16, "values….0.weight"),
        (LONG, 10, "….0.weight"),
        ("values.tolerations[key=karpenter.sh/nodepool].effect", 30, "values.tolerations….effect"),
        ("values.tolerations[key=karpenter.sh/nodepool]", 34, "values…[key=karpenter.sh/nodepool]"),
        ("values.tolerations[key=karpenter.sh/nodepool]", 30, "…[key=karpenter.sh/nodepool]"),
        ("spec.template.spec.requirements[key=kubernetes.io/arch]", 12, "…[key=kubernetes.io/arch]"),
        ("aVeryLongSingleKeyThatDoesNotFit", 10, "aVeryLongSingleKeyThatDoesNotFit"),
    ],
)
def test_a_long_input_path_elides_whole_parents_never_the_changed_key(
    path: str, room: int, fitted: str
) -> None:
    assert diff_cli.fit_path(path, room) == fitted
    last = diff_cli.segments(path)[-1]
    assert fitted.endswith(last), "the key that changed is kept whole"
    kept = [s for s in diff_cli.segments(fitted.replace("…", ".")) if s]
    assert set(kept) <= set(diff_cli.segments(path)), "only whole segments are kept"
    assert len(fitted) <= room or fitted.lstrip("…") == last, "longer only when the key alone is"


def _with_list(
    prod: PlanResult,
    edit: Any,
    typ: str = "kubernetes:helm.sh/v3:Release",
    suffix: str = "karpenter-controller",
) -> list[tuple[str, Any, Any]]:
    base = prod.document()
    head = copy.deepcopy(base)
    edit(_find(head, typ, suffix)["inputs"])
    report = diff_plans(base, head)
    return [(i.path, i.before, i.after) for c in report.changed for i in c.inputs]


def test_an_insertion_in_a_list_with_names_is_one_added_item(prod: PlanResult) -> None:
    """values.controller.env is keyed by `name`: an item inserted first changes nothing after it."""
    item = {"name": "LOG_LEVEL", "value": "debug"}
    assert _with_list(prod, lambda inputs: inputs["values"]["controller"]["env"].insert(0, item)) == [
        ("values.controller.env[name=LOG_LEVEL]", None, item)
    ]


def test_a_changed_field_of_a_keyed_item_is_named_by_the_items_key(prod: PlanResult) -> None:
    added = {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}

    def edit(inputs: dict[str, Any]) -> None:
        (critical,) = inputs["values"]["tolerations"]
        critical["effect"] = "NoExecute"
        inputs["values"]["tolerations"].insert(0, added)

    assert _with_list(prod, edit) == [
        ("values.tolerations[key=dedicated]", None, added),
        ("values.tolerations[key=CriticalAddonsOnly].effect", "NoSchedule", "NoExecute"),
    ]


def test_a_removed_kubernetes_object_of_a_config_group_is_one_line(prod: PlanResult) -> None:
    base = prod.document()
    head = copy.deepcopy(base)
    group = next(
        r
        for r in head["resources"]
        if r["type"] == "kubernetes:yaml/v2:ConfigGroup" and len(r["inputs"]["objs"]) > 2
    )
    gone = group["inputs"]["objs"].pop(0)
    (changed,) = diff_plans(base, head).changed
    ((path, before, after),) = [(i.path, i.before, i.after) for i in changed.inputs]
    namespace = gone["metadata"].get("namespace")
    where = f"{namespace}/" if namespace else ""
    assert path == f"objs[{gone['kind']} {where}{gone['metadata']['name']}]"
    assert (before, after) == (gone, None)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ({"a": 1}, {"a": 1, "b": {"c": {"d": 1, "e": 2}}}, [("b", None, {"c": {"d": 1, "e": 2}})]),
        ({"a": {"x": 1}}, {"a": {"x": 2}}, [("a.x", 1, 2)]),
        ({"l": [1, 2]}, {"l": [0, 1, 2]}, [("l.0", 1, 0), ("l.1", 2, 1), ("l.2", None, 2)]),
        ({"l": [{"key": "k", "e": 1}, {"key": "k", "e": 2}]}, {"l": [{"key": "k", "e": 1}]},
         [("l.1", {"key": "k", "e": 2}, None)]),
        ({"l": [{"id": 7, "v": 1}]}, {"l": [{"id": 7, "v": 2}, {"id": 8, "v": 1}]},
         [("l[id=7].v", 1, 2), ("l[id=8]", None, {"id": 8, "v": 1})]),
        ({"l": [{"name": "a"}]}, {"l": []}, [("l", [{"name": "a"}], [])]),
    ],
)  # fmt: skip
def test_changes_compare_by_identity_where_items_have_one(before: Any, after: Any, expected: Any) -> None:
    """Lists of scalars and items sharing a key go by index; an added subtree is one change."""
    from analysis.diff import changes

    assert changes(before, after) == expected


def test_an_added_object_is_one_line_in_the_text(prod: PlanResult) -> None:
    base = prod.document()
    head = copy.deepcopy(base)
    _find(head, "kubernetes:helm.sh/v3:Release", "karpenter-controller")["inputs"]["values"]["extra"] = {
        f"field{i}": i for i in range(12)
    }
    console = Console(width=80, record=True, color_system=None)
    diff_cli.render(diff_plans(base, head), console)
    lines = [line for line in console.export_text().splitlines() if "extra" in line]
    assert len(lines) == 1 and lines[0].strip().startswith("values.extra: (none) → {")


def test_a_stack_missing_at_base_is_all_added(
    prod: PlanResult, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new stack (no stack file at BASE) diffs as every resource added, not as an error."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout")
    head = {
        **prod.document(),
        "stack": "newstack",
        "cost": {"currency": "USD", "fixedMonthly": 12.5, "pricesAsOf": "x"},
    }

    def plan_in(checkout: Path, stack: str, out: Path, project: str = "platform") -> dict[str, Any]:
        assert checkout == ROOT and stack == "newstack", "the base is not planned: it has no stack file"
        return head

    monkeypatch.setattr(diff_cli, "_plan_in", plan_in)
    out, md = tmp_path / "diff.json", tmp_path / "summary.md"
    argv = ["--stack", "newstack", "--base", "HEAD", "--json", str(out), "--markdown", str(md)]
    assert diff_cli.main(argv) == 0
    written = json.loads(out.read_text())
    assert (
        len(written["added"]) == len(head["resources"]) and not written["removed"] and not written["changed"]
    )
    assert written["base"] == "newstack@HEAD (no Pulumi.newstack.yaml: all added)"
    assert written["cost"] == {"currency": "USD", "before": 0.0, "after": 12.5, "change": 12.5}
    assert "all added" in md.read_text() and "make diff:" not in capsys.readouterr().err


# -- the deploy identity (identity/): Pulumi Cloud resources that a change replaces ------------------


def test_an_organization_change_replaces_the_pool_and_the_settings(
    identity_plans: dict[str, PlanResult],
) -> None:
    """pulumi-pulumiservice @dc76a0186fd9: AgentPool.organizationName is replaceOnChanges
    (agent_pool.go), DeploymentSettings replaces on organization, project, stack
    (deployment_settings.go Diff). They hold no data: replaced, not a stateful finding."""
    base = identity_plans["prod"].document()
    head = copy.deepcopy(base)
    pool = _find(head, "pulumiservice:index:AgentPool")
    settings = _find(head, "pulumiservice:index:DeploymentSettings")
    pool["inputs"]["organizationName"] = "new-org"
    settings["inputs"]["organization"] = "new-org"
    report = diff_plans(base, head)
    replaced = {(c.type, i.path) for c in report.changed for i in c.inputs if i.replaces}
    assert replaced == {
        ("pulumiservice:index:AgentPool", "organizationName"),
        ("pulumiservice:index:DeploymentSettings", "organization"),
    }
    # Not protected (components/deployments.py): the identity `up` replaces them.
    assert not pool["protect"] and not settings["protect"]
    assert report.findings == []


def test_replacing_a_protected_resource_is_a_finding(identity_plans: dict[str, PlanResult]) -> None:
    """The engine refuses to delete a protected resource (pulumi/pulumi pkg/resource/deploy/step.go),
    and a replacement deletes the old one: `make diff` says so before the `up` fails."""
    base = identity_plans["prod"].document()
    _find(base, "pulumiservice:index:AgentPool")["protect"] = True
    head = copy.deepcopy(base)
    _find(head, "pulumiservice:index:AgentPool")["inputs"]["organizationName"] = "new-org"
    _find(head, "pulumiservice:index:AgentPool")["inputs"]["description"] = "renamed"
    (finding,) = diff_plans(base, head).findings
    assert finding["rule"] == RULE_REPLACE_PROTECTED and "organizationName" in finding["message"]
    assert "description" not in finding["message"]


def test_cli_plans_the_identity_project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[list[str]] = []

    def fake_run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        seen.append(command)
        empty = {"stack": "prod", "resources": [], "cost": {"currency": "USD", "fixedMonthly": 0.0}}
        Path(command[command.index("--json") + 1]).write_text(json.dumps(empty))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert diff_cli.main(["--stack", "prod", "--other", "prod", "--project", "identity"]) == 0
    assert all(c[-2:] == ["--project", "identity"] for c in seen) and len(seen) == 2
