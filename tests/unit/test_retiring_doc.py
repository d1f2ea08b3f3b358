"""docs/retiring-a-stack.md tells how to remove, for real, what a prod destroy retains: every
retained resource of the prod plan must be named in its removal steps, with the command for its type."""

from __future__ import annotations

import pytest

from tools.mocks import ROOT, PlanResult

DOC = ROOT / "docs" / "retiring-a-stack.md"
# The AWS CLI command that really deletes each retained type (section 2 of the doc).
DELETE = {
    "aws:secretsmanager/secret:Secret": "aws secretsmanager delete-secret",
    "aws:cloudwatch/logGroup:LogGroup": "aws logs delete-log-group",
    "aws:ecr/repository:Repository": "aws ecr delete-repository",
    "aws:kms/key:Key": "aws kms schedule-key-deletion",
}


def removal_steps() -> str:
    text = DOC.read_text()
    assert "## 2. Remove what was retained" in text, f"{DOC.name}: the removal section is missing"
    return text.split("## 2. Remove what was retained", 1)[1]


def retained_names(plan: PlanResult) -> dict[str, str]:
    """Retained resource -> the name an operator types: its AWS name, a key's alias."""
    aliases = {a.get("targetKeyId"): a.get("name") for a in plan.of_type("aws:kms/alias:Alias")}
    names: dict[str, str] = {}
    for r in plan.records:
        if not r.retain_on_delete:
            continue
        assert r.type in DELETE, f"{r.type} {r.name} is retained: add its removal to {DOC.name}"
        if r.type == "aws:kms/key:Key":
            (alias,) = [name for target, name in aliases.items() if r.name in str(target)]
            names[r.name] = alias
        elif r.type == "aws:ecr/repository:Repository":
            names[r.name] = str(r.get("name")).rsplit("/", 1)[0] + "/<service>"
        else:
            names[r.name] = str(r.get("name"))
    return names


def test_every_retained_prod_resource_has_its_removal_step(prod: PlanResult) -> None:
    steps = removal_steps()
    names = retained_names(prod)
    assert names, "the prod plan retains nothing: docs/retiring-a-stack.md is stale"
    missing = sorted(f"{res}: {name}" for res, name in names.items() if name not in steps)
    assert not missing, f"{DOC.name} does not say how to remove {missing}"
    for typ in {r.type for r in prod.records if r.retain_on_delete}:
        assert DELETE[typ] in steps, f"{DOC.name}: no `{DELETE[typ]}` for {typ}"


@pytest.mark.parametrize("drop", ["eks-platform-prod/argocd-oidc", "/aws/eks/eks-platform-prod/cluster"])
def test_a_retained_name_missing_from_the_steps_is_caught(prod: PlanResult, drop: str) -> None:
    steps = removal_steps().replace(drop, "")
    names = retained_names(prod)
    assert drop in names.values()
    assert [n for n in names.values() if n not in steps] == [drop]
