"""What `production: true` changes lives in one place (stacks/profile.py): the validators and the
phases read it, so changing an entry there changes the stack, and nothing else decides it."""

from __future__ import annotations

import dataclasses

import pytest

from model.records import PlanResult
from stacks import profile
from stacks.config import PROJECT, ConfigError, validate
from stacks.profile import PRODUCTION, STANDARD, StackProfile
from tools.mocks import stack_config


def _prod_without_protect() -> dict[str, str]:
    raw, _ = stack_config("prod")
    raw[f"{PROJECT}:protect"] = "false"
    return raw


def test_a_production_requirement_is_the_profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="must protect its state"):
        validate(_prod_without_protect(), PROJECT, "prod", "Pulumi.prod.yaml")
    monkeypatch.setattr(profile, "PRODUCTION", dataclasses.replace(PRODUCTION, requires_protect=False))
    assert validate(_prod_without_protect(), PROJECT, "prod", "Pulumi.prod.yaml").production


def test_every_entry_is_documented_and_differs_between_the_profiles() -> None:
    for f in dataclasses.fields(StackProfile):
        assert f.metadata.get("doc"), f"{f.name}: no documentation (docs/configuration.md shows it)"
        assert getattr(PRODUCTION, f.name) != getattr(STANDARD, f.name), f.name


def test_the_plans_are_built_with_their_profile(plans: dict[str, PlanResult]) -> None:
    for stack, expected in (("dev", STANDARD), ("prod", PRODUCTION)):
        plan = plans[stack]
        keys = {r.inputs["deletionWindowInDays"] for r in plan.of_type("aws:kms/key:Key")}
        secrets = plan.of_type("aws:secretsmanager/secret:Secret")
        assert keys == {expected.kms_deletion_window_days}, stack
        assert {r.inputs["recoveryWindowInDays"] for r in secrets} == {expected.secret_recovery_window_days}
