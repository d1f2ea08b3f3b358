"""Shared fixtures: each stack's whole program, run once per session under mocks.

The stacks are the checkout's `Pulumi.<stack>.yaml` files, so a new stack file is tested the day it
lands (see docs/adding-a-stack.md).
"""

from __future__ import annotations

import pytest

from stacks.config import PlatformConfig, validate
from tools.mocks import PlanResult, project_name, run_stack, stack_config, stack_names

STACKS = tuple(stack_names())


@pytest.fixture(scope="session")
def plans() -> dict[str, PlanResult]:
    return {stack: run_stack(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def plan(request: pytest.FixtureRequest, plans: dict[str, PlanResult]) -> PlanResult:
    return plans[request.param]


@pytest.fixture
def dev(plans: dict[str, PlanResult]) -> PlanResult:
    return plans["dev"]


@pytest.fixture
def prod(plans: dict[str, PlanResult]) -> PlanResult:
    return plans["prod"]


@pytest.fixture(scope="session")
def configs() -> dict[str, PlatformConfig]:
    project = project_name()
    out = {}
    for stack in STACKS:
        raw, _ = stack_config(stack, project)
        out[stack] = validate(raw, project, stack, f"Pulumi.{stack}.yaml")
    return out
