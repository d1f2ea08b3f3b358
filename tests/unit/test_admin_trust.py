"""`identity-admins-differ`: the cluster's admin access entries (platform) and the deploy role's
operators (identity project's trust) are the same roles, `cluster.adminRoleArns`."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from analysis.admin_trust import RULE, findings, operators
from analysis.graph import build
from analysis.rehearsal import section
from model.records import PlanResult, Registration

NEW_ADMIN = "arn:aws:iam::123456789012:role/new-admins"


def with_inputs(r: Registration, change: dict) -> Registration:
    inputs = copy.deepcopy(r.raw_inputs)
    inputs.update(change)
    return dataclasses.replace(r, raw_inputs=inputs)


def platform_with_extra_admin(plan: PlanResult) -> list[Registration]:
    cluster = plan.one("eks:index:Cluster")
    entries = copy.deepcopy(cluster.raw_inputs["accessEntries"])
    entries["admin-new"] = entries["deploy"] | {"principalArn": NEW_ADMIN}
    return [with_inputs(r, {"accessEntries": entries}) if r is cluster else r for r in plan.records]


def identity_with_extra_operator(identity: PlanResult) -> list[Registration]:
    out = []
    for r in identity.records:
        if not (r.type == "aws:iam/role:Role" and r.name.endswith("deployments-deploy")):
            out.append(r)
            continue
        trust = json.loads(r.get("assumeRolePolicy"))
        for statement in trust["Statement"]:
            if statement["Action"] == "sts:AssumeRole":
                statement["Condition"]["ArnEquals"]["aws:PrincipalArn"].append(NEW_ADMIN)
        out.append(with_inputs(r, {"assumeRolePolicy": json.dumps(trust)}))
    return out


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_shipped_stacks_name_the_same_admins_in_both_projects(
    stack: str, plans: dict[str, PlanResult], identity_plans: dict[str, PlanResult], configs
) -> None:
    plan, identity = plans[stack], identity_plans[stack]
    role = identity.outputs["deployRoleArn"]
    trusted = operators(identity.records, role)
    assert trusted is not None and trusted - {role} == set(configs[stack].cluster.admin_role_arns)
    assert findings(build(plan.records, plan.lookups), identity.records) == []


def test_an_admin_added_to_the_platform_only_is_a_finding(dev: PlanResult, identity_plans) -> None:
    _, found = section(platform_with_extra_admin(dev), dev.lookups, identity_plans["dev"].records)
    (finding,) = [f for f in found if f.rule == RULE]
    assert f"entry only {NEW_ADMIN}; trust only none" in finding.message
    assert finding.level.value == "advisory"


def test_a_role_left_in_the_trust_is_a_finding(dev: PlanResult, identity_plans) -> None:
    identity = identity_with_extra_operator(identity_plans["dev"])
    (finding,) = findings(build(dev.records, dev.lookups), identity)
    assert f"entry only none; trust only {NEW_ADMIN}" in finding.message
