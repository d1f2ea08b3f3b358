"""docs/deploy-rehearsal.md and docs/first-deploy.md quote the rehearsal's predictions: they must be
what the plan predicts."""

from __future__ import annotations

import re

import pytest

from analysis.rehearsal import section
from model.records import PlanResult
from tools.mocks import ROOT

ROW = re.compile(
    r"^\| (?P<stack>\w+) \| (?P<create>[\d.]+) min, (?P<waves>\d+) waves \| (?P<worst>[\d.]+) min \| "
    r"(?P<destroy>[\d.]+) min, (?P<dwaves>\d+) waves \|",
    re.MULTILINE,
)


DOCS = ("deploy-rehearsal.md", "first-deploy.md")


def quoted(doc: str) -> dict[str, dict[str, float]]:
    text = (ROOT / "docs" / doc).read_text()
    return {
        m["stack"]: {k: float(m[k]) for k in ("create", "waves", "worst", "destroy", "dwaves")}
        for m in ROW.finditer(text)
    }


@pytest.mark.parametrize("doc", DOCS)
def test_the_quoted_predictions_are_the_plans(doc: str, plans: dict[str, PlanResult]) -> None:
    rows = quoted(doc)
    assert set(rows) == {"dev", "prod"}, f"docs/{doc}: one table row per shipped stack"
    for stack, row in rows.items():
        rehearsal, _ = section(plans[stack].records)
        create, destroy = rehearsal["create"], rehearsal["destroy"]
        predicted = {
            "create": create["minutes"],
            "waves": len(create["waves"]),
            "worst": create["worstCaseMinutes"],
            "destroy": destroy["minutes"],
            "dwaves": len(destroy["waves"]),
        }
        assert row == predicted, f"docs/{doc}, {stack}: update the table to {predicted}"


def test_the_row_pattern_reads_a_row() -> None:
    row = "| dev | 1.5 min, 3 waves | 9.0 min | 2.0 min, 4 waves | VPC |"
    assert [m["stack"] for m in ROW.finditer(row)] == ["dev"]
