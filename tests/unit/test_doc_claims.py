"""What the docs and `make help` say the commands do is what the Makefile, CI and the plan do."""

from __future__ import annotations

import re

import pytest

from analysis.rehearsal import rehearse
from model.records import PlanResult
from tools.mocks import ROOT

MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
# What each of `make test`'s steps runs, as the docs name it.
TOOLS = {"ruff": "lint", "mypy": "typecheck", "checkov": "scan", "pytest": "unit"}
# The Makefile's own variables (`:=`) and the interpreter that builds .venv; every other variable a
# recipe reads is one a user sets on the command line (`make plan STACK=prod`).
# Variables the Makefile derives itself (`:=` or `=`, never `?=`) and make's own (CURDIR): not knobs.
INTERNAL = set(re.findall(r"^([A-Z_]+) :?= ", MAKEFILE, re.MULTILINE)) | {"PYTHON", "CURDIR"}


def read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def prerequisites(target: str) -> list[str]:
    found = re.search(rf"^{re.escape(target)}:([^=\n]*)$", MAKEFILE, re.MULTILINE)
    assert found, f"no rule for {target} in the Makefile"
    return [p for p in found.group(1).split() if not p.startswith("$(")]


def recipe(target: str, makefile: str = MAKEFILE) -> str:
    """The recipe of `target` (a rule may name several targets: `preview up destroy:`)."""
    rule = re.search(
        rf"^(?:[a-z -]* )?{re.escape(target)}(?: [a-z -]*)?:.*\n((?:\t.*\n)*)", makefile, re.MULTILINE
    )
    assert rule, f"no rule for {target} in the Makefile"
    return rule.group(1)


def help_entries(makefile: str = MAKEFILE) -> dict[str, str]:
    """Each target's `make help` entry (its line and the indented lines that continue it)."""
    lines = re.findall(r'^\t@echo "(.*)"$', makefile, re.MULTILINE)
    entries: dict[str, str] = {}
    current: list[str] = []
    names: list[str] = []
    for line in lines:
        if (found := re.match(r"  make ([a-z|-]+)", line)) is not None:
            current = [line]
            for target in found.group(1).split("|"):
                entries[target] = "\n".join(current)
            names = found.group(1).split("|")
        elif line.startswith("    ") and current:
            current.append(line)
            for target in names:
                entries[target] = "\n".join(current)
        else:
            current = []
    return entries


def test_make_help_says_what_make_test_runs() -> None:
    steps = prerequisites("test")
    described = re.search(r"make test +([a-z +]+):", help_entries()["test"])
    assert described and described.group(1).split(" + ") == steps, help_entries()["test"]


@pytest.mark.parametrize("page", ["README.md", "docs/offline-plan.md"])
def test_quick_start_comments_list_the_steps_of_make_test(page: str) -> None:
    """`make test   # ruff, mypy, checkov ..., the whole pytest suite`: every step, in order."""
    (line,) = re.findall(r"^make test +#(.*)$", read(page), re.MULTILINE)
    named = list(dict.fromkeys(TOOLS[t] for t in re.findall(r"\b(ruff|mypy|checkov|pytest)\b", line)))
    assert named == prerequisites("test"), f"{page}: {line.strip()}"


def test_readme_and_testing_list_the_targets_of_make_test_in_order() -> None:
    (row,) = re.findall(r"^\| `make test` \|(.*)$", read("README.md"), re.MULTILINE)
    assert re.findall(r"`make ([a-z]+)`", row) == prerequisites("test"), row
    sentence = re.search(r"`make test` runs, in order: (.*?\))\.", read("docs/testing.md"), re.DOTALL)
    assert sentence, "docs/testing.md no longer says what `make test` runs"
    paragraph = sentence.group(1)
    assert re.findall(r"`make ([a-z]+)`", paragraph) == prerequisites("test"), paragraph


def test_policy_rendered_places_the_scan_where_make_test_runs_it() -> None:
    claim = re.search(
        r"`make test` runs it after ([a-z ,]+), before the unit tests", read("docs/policy-rendered.md")
    )
    assert claim, "docs/policy-rendered.md no longer says when `make test` runs the scan"
    steps = prerequisites("test")
    before = re.split(r", | and ", claim.group(1))
    assert before == steps[: steps.index("scan")] and steps.index("scan") < steps.index("unit")


def test_testing_doc_says_ci_plans_every_stack_as_the_workflow_does() -> None:
    workflow = read(".github/workflows/infra-ci.yml")
    assert re.search(
        r"for file in Pulumi\.\*\.yaml; do\n(?:.*\n){0,4}.*make plan STACK=\"\$stack\"", workflow
    )
    bullet = read("docs/testing.md").split("- **`infra-ci.yml`**", 1)[1].split("\n- **", 1)[0]
    assert "every stack file" in bullet and not re.search(r"STACK=[a-z]", bullet), bullet


def test_every_phony_target_has_a_help_entry_and_every_entry_a_target() -> None:
    phony = {t for line in re.findall(r"^\.PHONY:(.*)$", MAKEFILE, re.MULTILINE) for t in line.split()}
    assert set(help_entries()) == phony - {"help"}


def knob_mismatches(makefile: str = MAKEFILE) -> list[tuple[str, set[str], set[str]]]:
    """(target, variables its help entry names, variables its recipe reads) wherever they differ."""
    out = []
    for target, entry in help_entries(makefile).items():
        named = set(re.findall(r"\b([A-Z_]+)=", entry))
        read_by_recipe = set(re.findall(r"\$\(([A-Z_]+)\)", recipe(target, makefile))) - INTERNAL
        if named != read_by_recipe:
            out.append((target, named, read_by_recipe))
    return out


def test_each_help_entry_names_the_variables_its_recipe_reads() -> None:
    """`make plan [STACK=..] [JSON=..]`: each knob named is read by the recipe, each knob read is named."""
    assert knob_mismatches() == []


def test_help_check_fires_on_a_knob_named_but_ignored_or_read_but_unnamed() -> None:
    named_only = MAKEFILE.replace("make scan [JSON=plan.json]", "make scan [JSON=plan.json] [TREE=1]")
    assert knob_mismatches(named_only) == [("scan", {"JSON", "TREE"}, {"JSON"})]
    unnamed = MAKEFILE.replace("make diagram STACK=<stack> [OUT=file.md]", "make diagram STACK=<stack>")
    assert knob_mismatches(unnamed) == [("diagram", {"STACK"}, {"STACK", "OUT"})]


def test_readme_first_up_minutes_are_the_plans(plans: dict[str, PlanResult]) -> None:
    """The README's rounded figure is within a minute of every stack's predicted first `up`."""
    claim = re.search(r"first `up` takes \(about (\d+) minutes for either stack\)", read("README.md"))
    assert claim, "README.md no longer states the first `up`'s minutes as 'about N minutes for either stack'"
    stated = int(claim.group(1))
    predicted = {stack: rehearse(plan.records, plan.lookups).create.minutes for stack, plan in plans.items()}
    assert all(abs(minutes - stated) < 1 for minutes in predicted.values()), (
        f"README.md says about {stated} minutes; the plan predicts {predicted}"
    )
