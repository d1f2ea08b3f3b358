"""The policy pack on the committed stacks: prod has no mandatory finding, dev only its documented
exceptions, a broken plan is caught, and the plan document carries the findings."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from rich.console import Console

from model.findings import Finding
from model.records import PlanResult, Registration
from policy.model import Level
from tools import plan_view
from tools.mocks import ROOT
from tools.policy_check import evaluate, is_production

# Findings dev may have, each a deliberate dev choice (DESIGN.md, Environments) or a documented
# platform exception; all of them advisory.
DEV_EXCEPTIONS = {
    "vpc-nat-per-az": "one NAT gateway in dev",
    "log-group-retention-one-year": "short log retention in dev",
    "eks-public-endpoint-disabled": "dev's API endpoint is public, limited to listed CIDRs",
    "argocd-admin-disabled": "the local Argo CD admin stays on in dev",
    "k8s-namespace-not-privileged": "monitoring enforces privileged for node-exporter",
    "helm-resource-requests": "dev add-ons may run without requests",
    "helm-memory-limits": "memory limits are advisory everywhere",
}


def table(findings: list[Finding]) -> str:
    return "\n".join(f"{f.level} {f.rule} {f.urn}: {f.message}" for f in findings)


def test_stacks_declare_whether_they_are_production(dev: PlanResult, prod: PlanResult) -> None:
    assert is_production(prod) and not is_production(dev)


def test_prod_has_no_mandatory_finding(prod: PlanResult) -> None:
    mandatory = [f for f in evaluate(prod) if f.level is Level.MANDATORY]
    assert not mandatory, "the prod stack violates mandatory policies:\n" + table(mandatory)


def test_dev_findings_are_advisory_and_documented(dev: PlanResult) -> None:
    findings = evaluate(dev)
    assert all(f.level is Level.ADVISORY for f in findings), table(findings)
    undocumented = [f for f in findings if f.rule not in DEV_EXCEPTIONS]
    assert not undocumented, "document these dev findings or fix them:\n" + table(undocumented)
    # Dev's deliberate economies show up, so prod-only strictness is really in force.
    assert {"vpc-nat-per-az", "log-group-retention-one-year"} <= {f.rule for f in findings}


def test_prod_rules_are_stricter_than_the_same_plan_judged_as_dev(dev: PlanResult) -> None:
    as_prod = {f.rule for f in evaluate(dev, production=True) if f.level is Level.MANDATORY}
    assert {"vpc-nat-per-az", "log-group-retention-one-year", "eks-deletion-protection"} <= as_prod
    assert {
        "kms-deletion-window",
        "secret-recovery-window",
        "helm-ha-replicas",
        "helm-pdb-enabled",
    } <= as_prod


def broken(result: PlanResult, typ: str, change: Callable[[dict[str, Any]], None]) -> tuple[PlanResult, str]:
    """A copy of the plan with the first `typ` record's inputs changed (the fixture stays intact)."""
    records: list[Registration] = []
    target = ""
    for record in result.records:
        if record.type == typ and not target:
            inputs = copy.deepcopy(record.raw_inputs)
            change(inputs)
            records.append(dataclasses.replace(record, raw_inputs=inputs))
            target = record.urn
        else:
            records.append(record)
    assert target, f"no {typ} in the plan"
    return dataclasses.replace(result, records=records), target


def _public_cluster(inputs: dict[str, Any]) -> None:
    inputs.update(endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"])


def _wildcard_policy(inputs: dict[str, Any]) -> None:
    inputs["policy"] = json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


@pytest.mark.parametrize(
    ("typ", "change", "rule"),
    [
        ("aws:kms/key:Key", lambda i: i.update(enableKeyRotation=False), "kms-key-rotation"),
        ("eks:index:Cluster", _public_cluster, "eks-public-endpoint-restricted"),
        ("aws:iam/rolePolicy:RolePolicy", _wildcard_policy, "iam-no-wildcard-action"),
        (
            "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
            lambda i: i["spec"].pop("blockDeviceMappings"),
            "node-volumes-encrypted",
        ),
        (
            "aws:ecr/lifecyclePolicy:LifecyclePolicy",
            lambda i: i.update(repository="elsewhere"),
            "ecr-lifecycle-policy",
        ),
    ],
)
def test_a_broken_prod_plan_has_the_mandatory_finding(
    prod: PlanResult, typ: str, change: Callable[[dict[str, Any]], None], rule: str
) -> None:
    result, urn = broken(prod, typ, change)
    hits = [f for f in evaluate(result) if f.rule == rule]
    assert hits and all(f.level is Level.MANDATORY for f in hits), table(evaluate(result))
    if typ != "aws:ecr/lifecyclePolicy:LifecyclePolicy":  # a stack rule names the repository
        assert {f.urn for f in hits} == {urn}


def test_plan_json_carries_the_findings_and_keeps_the_contract(
    plan_documents: dict[str, dict[str, Any]], prod: PlanResult
) -> None:
    document = plan_documents["prod"]
    jsonschema.validate(document, json.loads((ROOT / "tests" / "fixtures" / "plan.schema.json").read_text()))
    # The policy findings, in order; the deploy rehearsal (test_rehearsal_blockers.py) and the add-on
    # configuration check (test_addon_config.py) add their own.
    policy = [f for f in document["findings"] if not f["rule"].startswith(("rehearsal-", "addon-config-"))]
    assert policy == [f.document() for f in evaluate(prod)]
    assert all(f["level"] in ("mandatory", "advisory") for f in document["findings"])


def test_plan_prints_findings_after_the_tree() -> None:
    console = Console(record=True, width=200)
    findings = [
        Finding(
            "kms-key-rotation",
            Level.MANDATORY,
            "urn:pulumi:s::p::aws:kms/key:Key::k",
            "enableKeyRotation off",
        ),
        Finding("vpc-nat-per-az", Level.ADVISORY, None, "Single"),
    ]
    plan_view.render_findings([f.document() for f in findings], console)
    text = console.export_text()
    assert "kms-key-rotation" in text and "enableKeyRotation off" in text and "(stack)" in text
    assert "aws:kms/key:Key k" in text, "the resource by type and name, not its URN"
    assert "2 finding(s): 1 mandatory, 1 advisory." in text


@pytest.mark.parametrize(
    "typ", ["aws:kms/key:Key", "aws:secretsmanager/secret:Secret", "aws:cloudwatch/logGroup:LogGroup"]
)
def test_prod_state_that_would_be_deleted_with_the_stack_is_a_mandatory_finding(
    prod: PlanResult, typ: str
) -> None:
    """The program's retain_on_delete, dropped from one prod record: the offline pack catches it."""
    target = next(
        r for r in prod.records if r.type == typ and r.retain_on_delete and "deploy-agent" not in r.name
    )
    records = [dataclasses.replace(r, retain_on_delete=False) if r is target else r for r in prod.records]
    hits = [
        f for f in evaluate(dataclasses.replace(prod, records=records)) if f.rule == "prod-state-retained"
    ]
    assert [(f.urn, f.level) for f in hits] == [(target.urn, Level.MANDATORY)]
