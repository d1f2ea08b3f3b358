"""docs/retiring-a-stack.md tells how to remove, for real, what a prod destroy retains, and what a
rebuild of the same stack does with it: every retained resource of the prod plan must be named in
its removal steps, with the command for its type, and in its rebuild table, saying what the
replayed rebuild (destroy, then up: analysis/internals.py `destroyed`) does with it."""

from __future__ import annotations

import dataclasses
import re

import pytest

from analysis.internals import destroyed
from analysis.rehearsal import section
from model.records import Account, PlanResult
from tests.unit.rehearsal_plans import mutate
from tools.mocks import ROOT, run_stack

DOC = ROOT / "docs" / "retiring-a-stack.md"
FLOW_LOGS = "/aws/vpc/eks-platform-prod-network/flow-logs"
SECRET = "aws:secretsmanager/secret:Secret"
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


# -- what a rebuild of the same stack does with each retained name ---------------------------

REBUILD = "## Rebuilding a stack of the same name"


def rebuild_rows(text: str | None = None) -> list[tuple[str, str, str]]:
    """(names, what a rebuild does, what a person does) per row of the doc's rebuild table."""
    text = DOC.read_text() if text is None else text
    assert REBUILD in text, f"{DOC.name}: the rebuild section is missing"
    section = text.split(REBUILD, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) == 3 and not set(cells[0]) <= {"-", "|"}:
            rows.append((cells[0], cells[1], cells[2]))
    return rows[1:]  # without the header


def documented_rebuild(prod: PlanResult, rebuilt: PlanResult, text: str | None = None) -> list[str]:
    """Every retained resource whose row says otherwise than the replayed rebuild does."""
    rows = rebuild_rows(text)
    again = {r.urn: r for r in rebuilt.records}  # same stack, same URNs
    wrong = []
    urns = {r.name: r.urn for r in prod.records if r.retain_on_delete}
    for logical, name in retained_names(prod).items():
        row = [r for r in rows if name in r[0]]
        if len(row) != 1:
            wrong.append(f"{name}: {len(row)} rows")
            continue
        said = row[0][1]
        adopted = again[urns[logical]].import_id is not None
        if not said.startswith("**adopted**" if adopted else "**not adopted**"):
            wrong.append(
                f"{name}: the replay {'adopts' if adopted else 'creates it anew'}, the doc says {said[:30]!r}"
            )
    return wrong


def test_every_retained_prod_name_says_what_a_rebuild_does(prod: PlanResult) -> None:
    """The rebuild column is what tests/unit/test_internals.py's replay does (destroy, then up)."""
    rebuilt = run_stack("prod", destroyed(prod.records, Account()))
    assert not documented_rebuild(prod, rebuilt)
    # The replay decides: a doc that says the flow-log group is created anew, or a key adopted, is caught.
    text = DOC.read_text()
    flow = text.replace("| **adopted**, like the control-plane group", "| **not adopted**, created again")
    keys = text.replace("| **not adopted**: a key has no name", "| **adopted**: a key has no name")
    assert [w.split(":")[0] for w in documented_rebuild(prod, rebuilt, flow)] == [FLOW_LOGS]
    assert len(documented_rebuild(prod, rebuilt, keys)) == 3


def test_a_name_a_rebuild_cannot_adopt_is_documented_with_what_the_plan_says(prod: PlanResult) -> None:
    """A fixed-name secret deleted with a recovery window cannot be adopted; the doc's row gives the
    commands the plan's finding gives (analysis/prerequisites.py reserved_names)."""
    (secret,) = [r for r in prod.of_type(SECRET) if r.get("name") == "eks-platform-prod/argocd-oidc"]
    windowed = mutate(
        prod, lambda r: dataclasses.replace(r, retain_on_delete=False), lambda r: r.urn == secret.urn
    )
    (finding,) = [f for f in section(windowed.records, windowed.lookups)[1] if f.urn == secret.urn]
    commands = [
        c.replace(secret.get("name"), "<name>") for c in re.findall(r"`(aws [^`]*)`", finding.message)
    ]
    assert len(commands) == 2
    (row,) = [r for r in rebuild_rows() if r[1].startswith("**cannot be adopted**")]
    assert all(c in row[2] for c in commands), (commands, row[2])


def test_the_identity_stacks_retained_resources_have_their_removal_step_too() -> None:
    """The deploy identity (identity/) is destroyed in step 5; what it retains is removed in section 2."""
    from tools.plan import run_identity

    steps, names = removal_steps(), retained_names(run_identity("prod"))
    assert names, "the identity retains its agent token's key in prod"
    assert not sorted(name for name in names.values() if name not in steps)
    assert "make destroy PROJECT=identity STACK=prod" in DOC.read_text()


def test_the_repository_step_names_every_file_make_new_stack_adds() -> None:
    """Step 7 undoes `make new-stack`: each file it creates or edits, named for prod with the
    service as <service>, is in the step (deleting only the stack files leaves `make test` red)."""
    from tools import new_stack

    text = DOC.read_text()
    step = text.split("7. The repository:", 1)[1].split("## ", 1)[0]
    changes = new_stack.plan_changes("retired", "prod")
    services = sorted(p.name for p in (ROOT / "services").iterdir() if p.is_dir())  # code or not yet
    expected = set()
    for path in [*changes.created, *changes.edited]:
        relative = path.relative_to(ROOT).as_posix().replace("retired", "prod")
        for service in services:
            relative = relative.replace(f"/{service}/", "/<service>/").replace(f"/{service}-", "/<service>-")
        # A GitOps folder is named as a folder: its Applications go with it.
        expected.add(
            relative.rsplit("/", 1)[0] + "/" if relative.startswith("platform/gitops/") else relative
        )
    missing = sorted(name for name in expected if f"`{name}`" not in step)
    assert not missing, f"{DOC.name} step 7 does not name {missing}"
