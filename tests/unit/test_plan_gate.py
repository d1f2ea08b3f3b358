"""`python -m tools.plan --gate`, the pre-run command of every Pulumi Deployments run
(components/deployments.py gate_command): exit 0 on a plan without a mandatory finding, 1 with one
(printed, with the verdict line), 2 on an invalid stack file."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rich.console import Console

from model.findings import Finding
from policy.model import Level
from tools import plan as plan_cli
from tools.mocks import run_program, stack_config


@pytest.mark.usefixtures("cli_on_session_plans")
def test_a_plan_without_a_mandatory_finding_passes_the_gate(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_cli.main(["--stack", "dev", "--gate"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("Verdict: 0 mandatory"), out
    # Only the blocking findings and the verdict: no summary, cost table or rehearsal.
    assert not [line for line in out if "advisory " in line and not line.startswith("Verdict")]


@pytest.mark.usefixtures("cli_on_session_plans")
def test_a_mandatory_finding_fails_the_gate_and_is_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = plan_cli.analyse

    def with_mandatory(*args: Any, **kwargs: Any) -> plan_cli.Analysis:
        plan = real(*args, **kwargs)
        finding = Finding("gate-test-rule", Level.MANDATORY, None, "a deploy would fail here")
        plan.document["findings"].append(finding.document())
        return plan

    monkeypatch.setattr(plan_cli, "analyse", with_mandatory)
    assert plan_cli.main(["--stack", "dev", "--gate"]) == 1
    out = capsys.readouterr().out
    assert "mandatory gate-test-rule" in out and "a deploy would fail here" in out
    assert out.splitlines()[-1].startswith("Verdict: 1 mandatory"), out


def test_an_invalid_stack_file_fails_the_gate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = stack_config("dev")
    raw["aws:region"] = "eu-wst-1"
    monkeypatch.setattr(plan_cli, "run_stack", lambda stack: run_program(stack, raw))
    assert plan_cli.main(["--stack", "dev", "--gate"]) == 2
    assert "Invalid configuration" in capsys.readouterr().err


def test_the_bootstrap_deployment_passes_the_gate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Step 2 of a private stack's destroy (docs/deploy-path.md) commits `deployments.bootstrap:
    true`, and the agents' deployment runs the gate first (components/deployments.py). The
    bootstrap program declares no Kubernetes object, so the NetworkPolicies' flows are not judged
    there: judging the table's pods against no policy failed that run with 37 mandatory
    `netpol-required-flows` findings (review 19, round 3), and prod could not be destroyed."""
    raw, secret_keys = stack_config("prod")
    key = "eks-platform:deployments"
    raw[key] = json.dumps(json.loads(raw.get(key, "{}")) | {"bootstrap": True})
    monkeypatch.setattr(plan_cli, "run_stack", lambda stack: run_program(stack, raw, secret_keys=secret_keys))
    monkeypatch.setattr(plan_cli, "stack_config", lambda stack, project=None: (raw, secret_keys))
    assert plan_cli.main(["--stack", "prod", "--gate"]) == 0, capsys.readouterr().out
    assert capsys.readouterr().out.splitlines()[-1].startswith("Verdict: 0 mandatory")


def test_the_bootstrap_plan_says_its_flows_are_not_judged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    raw, secret_keys = stack_config("prod")
    key = "eks-platform:deployments"
    raw[key] = json.dumps(json.loads(raw.get(key, "{}")) | {"bootstrap": True})
    monkeypatch.setattr(plan_cli, "run_stack", lambda stack: run_program(stack, raw, secret_keys=secret_keys))
    monkeypatch.setattr(plan_cli, "stack_config", lambda stack, project=None: (raw, secret_keys))
    out = tmp_path / "plan.json"
    assert plan_cli.main(["--stack", "prod", "--quiet", "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    assert not [r for r in document["resources"] if r["type"].startswith("kubernetes:")]
    assert document["networkPolicies"]["flows"] == []
    assert "bootstrap" in document["networkPolicies"]["notJudged"]
    assert not [f for f in document["findings"] if f["rule"].startswith("netpol-")]


def test_a_stack_file_holding_a_secret_plans_gates_and_loads_for_every_tool(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/secrets.md and first-deploy.md have alertReceiverUrl set with `pulumi config set
    --secret`, which writes `{secure: v1:...}` into the stack file. The offline tools validate the
    file as the program does, secret keys included: before, they reported "must be a secret" for
    it, and the gate (every Deployments run), `make plan`, `make destroy` (its guard) and `make
    destroy-prepare` all stopped with exit 2."""
    from tools import destroy_guard, mocks, stackcli

    read = mocks.read_stack_file

    def with_secret(path: Any) -> dict[str, Any]:
        document = read(path)
        if path.name == "Pulumi.dev.yaml":
            document["config"]["eks-platform:alertReceiverUrl"] = {"secure": "v1:AAAABBBBCCCC"}
        return document

    monkeypatch.setattr(mocks, "read_stack_file", with_secret)
    _, secret_keys = stack_config("dev")
    assert secret_keys == ["eks-platform:alertReceiverUrl"], "the secure value reaches the tools"
    assert stackcli.load_config("dev", Console(stderr=True)) is not None
    assert plan_cli.main(["--stack", "dev", "--gate"]) == 0, capsys.readouterr().err
    assert "must be a secret" not in capsys.readouterr().err
    assert destroy_guard.main(["--stack", "prod"]) == 0, capsys.readouterr().err
