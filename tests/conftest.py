"""Shared fixtures: each stack's whole program, run once per session under mocks.

The stacks are the checkout's `Pulumi.<stack>.yaml` files, so a new stack file is tested the day it
lands (see docs/adding-a-stack.md).
"""

from __future__ import annotations

import functools
import gc
import json
import os
from typing import Any

import pytest

from model.records import PlanResult
from stacks.config import PlatformConfig, validate
from tests.skips import pytest_terminal_summary  # noqa: F401 (a hook: pytest finds it here)
from tools.mocks import project_name, run_stack, stack_config, stack_names

STACKS = tuple(stack_names())


def pytest_configure(config: pytest.Config) -> None:
    """moto loads its catalogue of public AMIs into every region's EC2 backend it starts (a third of
    the moto tests' time); the tests launch from an image ID of their own, which moto does not
    check unless MOTO_ENABLE_AMI_VALIDATION is set (moto/settings.py)."""
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    _share_botocore_models()


def _share_botocore_models() -> None:
    """Every boto3 Session (a test's, moto's, the tool's under test) builds its own botocore loader,
    which parses each service's JSON model again: ec2's alone is megabytes, and the parsing was
    about 4 s of the suite. One loader per data path serves every session the same models (the
    clients only read them; one session's clients already share them this way)."""
    import botocore.session  # type: ignore[import-untyped]

    botocore.session.create_loader = functools.cache(botocore.session.create_loader)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The SDKs' modules are imported by now: keep the cyclic GC from walking them again and again
    (gc.freeze moves what exists to a generation it never scans; nothing of it is garbage)."""
    gc.freeze()


@pytest.fixture(scope="session")
def plans() -> dict[str, PlanResult]:
    out = {stack: run_stack(stack) for stack in STACKS}
    gc.freeze()  # the plans live as long as the session
    return out


@pytest.fixture(scope="session")
def identity_plans() -> dict[str, PlanResult]:
    """Each stack's identity project (identity/) under the same mock engine."""
    from tools.plan import run_identity

    return {stack: run_identity(stack) for stack in STACKS}


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


@pytest.fixture(scope="session")
def plan_documents(
    plans: dict[str, PlanResult], configs: dict[str, PlatformConfig]
) -> dict[str, dict[str, Any]]:
    """Each stack's plan document as `make plan JSON=...` writes it (every analysis of
    tools.plan.analyse, through JSON), from the session's plans: tests that only read the written
    document share it. tests/unit/test_plan_cli.py runs the command itself."""
    from tools import plan as plan_cli

    return {
        stack: json.loads(json.dumps(plan_cli.analyse(plans[stack], configs[stack]).document, default=str))
        for stack in STACKS
    }
