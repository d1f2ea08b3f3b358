"""The policy pack, offline: evaluate every rule of `policy/` on a planned stack.

    findings = evaluate(run_stack("prod"))

The rules are the same functions CrossGuard runs (policy/crossguard.py); this adapter only feeds
them the offline engine's records (inputs with secrets shown as "[secret]") and the stack's
`eks-platform:production` flag, and turns violations into findings at the rule's level for that
kind of stack. Rules that do not apply outside production are skipped there, as CrossGuard
disables them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from model.findings import Finding, sort_findings
from model.records import PlanResult
from policy import rules_rendered
from policy.model import Context, Resource
from policy.props import truthy
from policy.rules import RESOURCE_RULES, STACK_RULES
from tools.mocks import stack_config


def is_production(result: PlanResult) -> bool:
    """The stack file's `<project>:production` (absent means false, as in stacks/config.py)."""
    raw, _ = stack_config(result.stack, result.project)
    return truthy(raw.get(f"{result.project}:production", "false"))


def evaluate_resources(resources: Sequence[Resource], production: bool) -> list[Finding]:
    """Findings for a list of resources: mandatory first, then by rule and resource."""
    ctx = Context(production=production)
    findings: list[Finding] = []
    for rule in RESOURCE_RULES:
        level = rule.level(production)
        if level is None:
            continue
        for resource in resources:
            for message in rule.evaluate(resource.type, resource.props, ctx):
                findings.append(Finding(rule.name, level, resource.urn, message))
    for stack_rule in STACK_RULES:
        level = stack_rule.level(production)
        if level is None:
            continue
        for urn, message in stack_rule.evaluate(resources, ctx):
            findings.append(Finding(stack_rule.name, level, urn, message))
    return sort_findings(findings)


def evaluate_rendered(rendered: Sequence[Mapping[str, Any]], production: bool) -> list[Finding]:
    """Findings of policy/rules_rendered.py on the plan's rendered Helm objects."""
    return sort_findings([Finding(*f) for f in rules_rendered.evaluate(rendered, production)])


def evaluate(result: PlanResult, *, production: bool | None = None) -> list[Finding]:
    """Findings for a planned stack; `production` defaults to the stack file's flag."""
    resources = [
        Resource(r.type, r.urn, r.name, r.inputs, protect=r.protect, retain_on_delete=r.retain_on_delete)
        for r in result.records
    ]
    return evaluate_resources(resources, is_production(result) if production is None else production)
