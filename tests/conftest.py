"""Shared fixtures: each stack's whole program, run once per session under mocks.

The stacks are the checkout's `Pulumi.<stack>.yaml` files, so a new stack file is tested the day it
lands (see docs/adding-a-stack.md).

Under pytest-xdist the controller imports this file too, and only the workers run tests: the SDKs
(the program, the offline engine, the config's models) are imported where a fixture needs them, so
the controller starts the workers about 0.7 s sooner.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import pickle
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from model.records import PlanResult
from tests.skips import pytest_terminal_summary  # noqa: F401 (a hook: pytest finds it here)
from tools.checkout import stack_names
from tools.process import exit_now

if TYPE_CHECKING:
    from stacks.config import PlatformConfig

STACKS = tuple(stack_names())
T = TypeVar("T")


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


# Modules with a test of several seconds in one piece: a copy of the checkout that both `make new-*`
# commands change and subprocesses plan (module fixtures), a plan of a revision in a git worktree,
# `make destroy-prepare`; and the catalog service's tests, whose SIGTERM test waits out a 1 s drain
# (testpaths put them last). They run first, so that under pytest-xdist the worker that takes them
# starts them while the other worker still has the rest of the suite to share, rather than one
# worker running them at the end while the other idles. Order only: nothing is skipped or merged.
SLOW_FIRST = (
    "tests/unit/test_new_commands.py",
    "tests/unit/test_diff.py",
    "tests/unit/test_destroy_path.py",
    "services/catalog/tests/test_catalog_app.py",
)
# Modules that share a warm-up each process pays once: moto's backends and botocore's service models
# (a worker's first moto-backed test took about 1 s more than the next), and the ephemeral stack's
# plan (test_integration_setup.planned). Right after SLOW_FIRST they fall in the first batch of
# consecutive tests pytest-xdist hands one worker (a quarter of its share), so that worker pays the
# warm-ups and the other does not. Order only, as above.
ONE_WORKER = (
    "tests/unit/test_integration_helpers.py",
    "tests/unit/test_integration_setup.py",
    "tests/unit/test_ami_versions.py",
    "tests/unit/test_addon_versions.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {module: i for i, module in enumerate((*SLOW_FIRST, *ONE_WORKER))}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    """Collection imports the SDKs and the program (about 1.3 s of each worker's start): the cyclic
    GC is off meanwhile, since its passes over a heap that only grows freed nothing (0.3 s of it).
    Then what was imported is frozen, out of the GC's scans for the rest of the session (gc.freeze
    moves what exists to a generation it never scans; nothing of it is garbage)."""
    gc.disable()
    try:
        return (yield)
    finally:
        gc.freeze()
        gc.enable()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """A pytest-xdist worker whose session is over has sent the controller everything (its last
    event, `workerfinished`, goes at its sessionfinish): it exits without the interpreter's teardown
    of the SDKs and the session's plans, which the controller waited for before its summary."""
    output: dict[str, Any] | None = getattr(config, "workeroutput", None)
    if output is not None:
        exit_now(int(output.get("exitstatus", 0)))


def once_per_run(name: str, request: pytest.FixtureRequest, compute: Callable[[], T]) -> T:
    """`compute()` for a session fixture, once per run rather than once per pytest-xdist worker:
    the first worker to finish it leaves a pickle in the run's temporary folder (its workers share
    it; the name carries the run's ID), and a worker that needs it later loads that. A worker that
    needs it while no one has finished computes it too (no waiting: that would idle its core)."""
    worker: dict[str, Any] | None = getattr(request.config, "workerinput", None)
    if worker is None:  # no xdist, or its controller
        return compute()
    run = request.getfixturevalue("tmp_path_factory").getbasetemp().parent
    path = run / f"once-per-run-{worker['testrunuid']}-{name}.pickle"
    if path.exists():
        with path.open("rb") as f:
            found: T = pickle.load(f)  # written by this run's own workers
        return found
    value = compute()
    partial = path.with_name(f"{path.name}.{worker['workerid']}")
    partial.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    partial.replace(path)  # whole or absent: a reader never sees half a file
    return value


@pytest.fixture(scope="session")
def plans(request: pytest.FixtureRequest) -> dict[str, PlanResult]:
    from tools.mocks import run_stack

    out = once_per_run("plans", request, lambda: {stack: run_stack(stack) for stack in STACKS})
    gc.freeze()  # the plans live as long as the session
    return out


@pytest.fixture(scope="session")
def identity_plans(request: pytest.FixtureRequest) -> dict[str, PlanResult]:
    """Each stack's identity project (identity/) under the same mock engine."""
    from tools.plan import run_identity

    return once_per_run("identity-plans", request, lambda: {stack: run_identity(stack) for stack in STACKS})


def cli_reads_session_plans(mp: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """For a test of what `make plan` does with a plan (its views, its gate, its JSON and what reads
    it, its exit codes): the command's planning of a committed stack and of its identity project
    returns the session's plans of the same stack files, which it only reads, instead of running the
    program again (about 0.3 s of CPU a run). tests/unit/test_plan.py and test_determinism.py run
    the command whole."""
    from tools import plan as plan_cli

    mp.setattr(plan_cli, "run_stack", request.getfixturevalue("plans").__getitem__)
    mp.setattr(plan_cli, "run_identity", request.getfixturevalue("identity_plans").__getitem__)


@pytest.fixture
def cli_on_session_plans(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    cli_reads_session_plans(monkeypatch, request)


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
    from stacks.config import validate
    from tools.mocks import project_name, stack_config

    project = project_name()
    out = {}
    for stack in STACKS:
        raw, _ = stack_config(stack, project)
        out[stack] = validate(raw, project, stack, f"Pulumi.{stack}.yaml")
    return out


@pytest.fixture(scope="session")
def plan_documents(
    plans: dict[str, PlanResult], configs: dict[str, PlatformConfig], request: pytest.FixtureRequest
) -> dict[str, dict[str, Any]]:
    """Each stack's plan document as `make plan JSON=...` writes it (every analysis of
    tools.plan.analyse, through JSON), from the session's plans: tests that only read the written
    document share it. tests/unit/test_plan_cli.py runs the command itself."""
    from tools import plan as plan_cli

    def documents() -> dict[str, dict[str, Any]]:
        return {
            stack: json.loads(
                json.dumps(plan_cli.analyse(plans[stack], configs[stack]).document, default=str)
            )
            for stack in STACKS
        }

    return once_per_run("plan-documents", request, documents)
