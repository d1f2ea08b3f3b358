"""Prod's destroy path (docs/deploy-path.md "Destroy"): unprotect what the bootstrap run drops,
the bootstrap deployment on the agents, then `make destroy` from a workstation."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from analysis.destroy_path import destroy_path, unprotect_before_bootstrap
from model.records import PlanResult
from tests.unit.test_deploy_path import make
from tools.destroy_path import run_bootstrap

CRDS = "eks-platform-prod-monitoring-crds"


@pytest.fixture(scope="module")
def bootstrap_prod() -> PlanResult:
    return run_bootstrap("prod")


def test_the_bootstrap_run_drops_the_protected_crds_release(prod: PlanResult, bootstrap_prod) -> None:
    """The procedure as documented before: keep `protect` through the bootstrap run. The engine
    refuses to delete a protected resource (pulumi/pulumi pkg/resource/deploy/step.go
    deleteProtectedError): the plan names the step and the release."""
    _, found = destroy_path(prod.records, bootstrap_prod.records, private=True, prepared=[])
    blamed = {str(f.urn).rsplit("::", 1)[-1] for f in found if f.rule == "destroy-path-protected-drop"}
    assert CRDS in blamed
    assert all(f.level.value == "mandatory" for f in found)
    assert all("step 2 (the bootstrap deployment" in f.message for f in found)


def test_step_one_unprotects_exactly_what_may_go(prod: PlanResult, bootstrap_prod) -> None:
    urns = unprotect_before_bootstrap(prod.records, bootstrap_prod.records)
    names = {u.rsplit("::", 1)[-1] for u in urns}
    assert CRDS in names
    by_urn = {r.urn: r for r in prod.records}
    assert all(by_urn[u].protect for u in urns)
    # Nothing the bootstrap keeps: the cluster, the VPC and the agents stay protected.
    kept = {r.urn for r in bootstrap_prod.records}
    assert not set(urns) & kept
    doc, found = destroy_path(prod.records, bootstrap_prod.records, private=True)
    assert found == [] and doc["unprotect"] == sorted(urns)


def test_a_protected_unretained_aws_resource_dropped_by_bootstrap_is_refused(
    prod: PlanResult, bootstrap_prod
) -> None:
    """Step 1 never lifts protection from something the run would really delete."""
    kept = {r.urn for r in bootstrap_prod.records}
    victim = next(r for r in prod.records if r.urn not in kept and r.type == "aws:sqs/queue:Queue")
    records = [dataclasses.replace(r, protect=True) if r is victim else r for r in prod.records]
    assert victim.urn not in unprotect_before_bootstrap(records, bootstrap_prod.records)
    _, found = destroy_path(records, bootstrap_prod.records, private=True)
    assert [f.urn for f in found if f.rule == "destroy-path-protected-drop"] == [victim.urn]
    assert "would really be deleted" in found[0].message


def test_a_kubernetes_object_left_for_the_workstation_is_a_finding(prod: PlanResult, bootstrap_prod) -> None:
    release = next(r for r in prod.records if r.name == CRDS)
    _, found = destroy_path(prod.records, [*bootstrap_prod.records, release], private=True)
    assert [f.rule for f in found] == ["destroy-path-needs-kubernetes"]
    assert "step 3 (make destroy from a workstation)" in found[0].message


def test_the_prod_plan_carries_the_destroy_path(plan_documents) -> None:
    doc = plan_documents["prod"]["rehearsal"]["destroyPath"]
    assert any(u.endswith(CRDS) for u in doc["unprotect"])
    assert not [f for f in plan_documents["prod"]["findings"] if f["rule"].startswith("destroy-path-")]
    # dev's endpoint is reachable: one `make destroy` (and dev refuses `bootstrap: true`).
    assert "destroyPath" not in plan_documents["dev"]["rehearsal"]


# `stack output` fails (no cluster needed here); `state unprotect` prints its URNs.
FAKE_PULUMI = '#!/bin/sh\necho "pulumi $*"\n'


@pytest.mark.skipif(not os.path.exists("/usr/bin/make"), reason="make is not installed")
def test_make_destroy_prepare_unprotects_the_planned_list(tmp_path: Path) -> None:
    run = make("destroy-prepare", {"pulumi": FAKE_PULUMI, "aws": FAKE_PULUMI}, tmp_path, "STACK=prod")
    assert run.returncode == 0, run.stdout + run.stderr
    (line,) = [x for x in run.stdout.splitlines() if x.startswith("pulumi state unprotect")]
    assert line.startswith("pulumi state unprotect --yes --stack prod urn:pulumi:prod::")
    assert CRDS in line and "eks:index:Cluster" not in line
    refused = make("destroy-prepare", {"pulumi": FAKE_PULUMI, "aws": FAKE_PULUMI}, tmp_path / "d")
    assert refused.returncode != 0 and "unprotect" not in refused.stdout
