"""The rules as pulumi_policy policies (what `pulumi preview --policy-pack policy` runs).

Production or not: the pack process starts with the stack's config in PULUMI_CONFIG (the CLI
passes it to policy packs), so `eks-platform:production` sets each policy's enforcement level when
the pack is built: a rule's `prod` level on a production stack, its `dev` level elsewhere, and
DISABLED where a rule does not apply outside production. A policy config property `production`
(`--policy-pack-config`) overrides the flag the rules see, not the levels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.model import Context, Level, Resource, ResourceRule, StackRule
from policy.props import truthy
from policy.rules import RULES

PROJECT = "eks-platform"
CONFIG_SCHEMA = PolicyConfigSchema(
    properties={"production": {"type": "boolean", "description": "Apply the production rules."}}
)


def stack_is_production(environ: Mapping[str, str] = os.environ) -> bool:
    """`<project>:production` from the stack config the CLI hands the pack (absent: not production)."""
    try:
        config = json.loads(environ.get("PULUMI_CONFIG") or "{}")
    except ValueError:
        return False
    project = environ.get("PULUMI_PROJECT", PROJECT)
    return isinstance(config, dict) and truthy(str(config.get(f"{project}:production", "false")))


def _level(level: Level | None) -> EnforcementLevel:
    if level is None:
        return EnforcementLevel.DISABLED
    return EnforcementLevel.MANDATORY if level is Level.MANDATORY else EnforcementLevel.ADVISORY


def _context(config: Mapping[str, Any], production: bool) -> Context:
    flag = config.get("production")
    return Context(production=production if flag is None else bool(flag))


def _resource_policy(rule: ResourceRule, production: bool) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type in rule.types:
            ctx = _context(args.get_config(), production)
            for message in rule.check(args.resource_type, args.props, ctx):
                report(message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=_level(rule.level(production)),
        config_schema=CONFIG_SCHEMA,
        tags=[str(s) for s in rule.sources],
    )


def _stack_policy(rule: StackRule, production: bool) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        ctx = _context(args.get_config(), production)
        resources = [
            Resource(r.resource_type, r.urn, r.name, r.props, protect=bool(r.opts and r.opts.protect))
            for r in args.resources
        ]
        for urn, message in rule.check(resources, ctx):
            report(message, urn)

    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=_level(rule.level(production)),
        config_schema=CONFIG_SCHEMA,
        tags=[str(s) for s in rule.sources],
    )


def policies(production: bool) -> list[Policy]:
    """One pulumi_policy policy per rule, at the levels of a production stack or of any other."""
    return [
        _resource_policy(rule, production)
        if isinstance(rule, ResourceRule)
        else _stack_policy(rule, production)
        for rule in RULES
    ]
