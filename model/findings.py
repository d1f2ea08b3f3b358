"""A finding: what a policy rule (policy/) or an analysis (analysis/) says about a planned resource.

Every section of the plan document that judges lists findings in this one shape, in one order
(`sort_findings`), so the plan, `make diff` and the tests read them alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from policy.model import Level


@dataclass(frozen=True)
class Finding:
    rule: str
    level: Level
    urn: str | None
    message: str

    def document(self) -> dict[str, Any]:
        """This finding in the plan document's format (plan.schema.json `findings`)."""
        return {"rule": self.rule, "level": self.level.value, "urn": self.urn, "message": self.message}


def sort_findings(findings: Sequence[Finding]) -> list[Finding]:
    """Mandatory first, then by rule, resource and message (the plan's order is deterministic)."""
    order = {Level.MANDATORY: 0, Level.ADVISORY: 1}
    return sorted(findings, key=lambda f: (order[f.level], f.rule, f.urn or "", f.message))
