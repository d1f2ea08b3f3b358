"""`python -m tools.plan --gate`, the pre-run command of every Pulumi Deployments run
(components/deployments.py gate_command): exit 0 on a plan without a mandatory finding, 1 with one
(printed, with the verdict line), 2 on an invalid stack file."""

from __future__ import annotations

from typing import Any

import pytest

from model.findings import Finding
from policy.model import Level
from tools import plan as plan_cli
from tools.mocks import run_program, stack_config


def test_a_plan_without_a_mandatory_finding_passes_the_gate(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_cli.main(["--stack", "dev", "--gate"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("Verdict: 0 mandatory"), out
    # Only the blocking findings and the verdict: no summary, cost table or rehearsal.
    assert not [line for line in out if "advisory " in line and not line.startswith("Verdict")]


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
