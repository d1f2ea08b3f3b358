"""`rehearsal-role-before-policies`: a resource that hands a role to an AWS service comes after the
role's policies (the VPC flow log did not: components/network.py)."""

from __future__ import annotations

import dataclasses

import pytest

from analysis.graph import build
from analysis.rehearsal import section
from analysis.role_order import RULE, findings
from model.records import PlanResult, Registration


def flow_log_without_its_policy(plan: PlanResult) -> list[Registration]:
    """The plan as it was before the fix: the flow log depends on the role, not its policy."""
    (policy,) = [r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("flow-logs")]
    return [
        dataclasses.replace(r, dependencies=[d for d in r.dependencies if d != policy.urn])
        if r.type == "aws:ec2/flowLog:FlowLog"
        else r
        for r in plan.records
    ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_role_is_handed_over_after_its_policies(stack: str, plans: dict[str, PlanResult]) -> None:
    plan = plans[stack]
    assert findings(build(plan.records, plan.lookups)) == []


def test_a_flow_log_before_its_roles_policy_is_a_finding(dev: PlanResult, identity_plans) -> None:
    _, found = section(flow_log_without_its_policy(dev), dev.lookups, identity_plans["dev"].records)
    (finding,) = [f for f in found if f.rule == RULE]
    assert finding.urn == dev.one("aws:ec2/flowLog:FlowLog").urn
    assert "eks-platform-dev-network-flow-logs" in finding.message and finding.level.value == "advisory"


def test_the_roles_own_parts_and_access_entries_are_not_judged(dev: PlanResult) -> None:
    """The Karpenter node role's access entry names it (`principalArn`) before its policy
    attachments: EKS does not act as that role, so no finding."""
    graph = build(dev.records, dev.lookups)
    (entry,) = [
        r for r in dev.of_type("aws:eks/accessEntry:AccessEntry") if r.name.endswith("karpenter-node")
    ]
    role = next(r for r in dev.of_type("aws:iam/role:Role") if r.name.endswith("karpenter-node"))
    attachments = [
        r.urn
        for r in dev.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if role.urn in r.dependencies
    ]
    assert role.urn in entry.dependencies and attachments
    assert not set(attachments) & graph.ancestors(entry.urn)
    assert [f for f in findings(graph) if f.urn == entry.urn] == []
