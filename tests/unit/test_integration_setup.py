"""The integration harness itself, offline: its stack config stays valid and it skips honestly."""

from __future__ import annotations

import json

import pytest

from stacks.config import PROJECT, validate
from tests.integration.conftest import OPT_IN, it_config, missing_prerequisite
from tools.mocks import run_program


def raw_config() -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in it_config("eu-west-1").items()}


def test_the_ephemeral_stack_config_is_valid_and_small() -> None:
    cfg = validate(raw_config(), PROJECT, "it-0000abcd", "integration config")
    assert cfg.network.nat_strategy == "single" and not cfg.production and not cfg.protect
    assert cfg.deployments.enabled is False and cfg.delivery.services == ()
    assert cfg.capacity_report().max_nodes <= 40


def test_the_ephemeral_stack_plans_offline() -> None:
    result = run_program("it-0000abcd", raw_config())
    assert not any(r.protect for r in result.records), "an ephemeral stack must be destroyable"
    assert result.outputs["clusterName"] == "eks-platform-it-0000abcd"


def test_skips_unless_asked_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OPT_IN, raising=False)
    assert "make integration" in (missing_prerequisite() or "")


def test_names_the_missing_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OPT_IN, "1")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert "`pulumi` CLI is not installed" in (missing_prerequisite() or "")
