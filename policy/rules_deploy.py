"""The deploy role: the one identity that must create infrastructure, judged by its own rule.

Its inline policy (named DEPLOY_POLICY_NAME, built by components/deploy_policy.py) grants whole
services the stack manages (`ec2:*` on "*"), which the workload rules `iam-no-service-wildcard` and
`iam-no-unscoped-write` forbid; they skip that one policy and this rule holds it to what matters
for a deploying identity instead: IAM only on named resources, PassRole and service-linked roles
only with their service conditions, nothing account-level, and within IAM's size limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policy import iamdoc
from policy.model import Context, Level, RuleSet, Source
from policy.props import document, get
from policy.resource_types import IAM_ROLE_POLICY

rules = RuleSet()
# The inline policy name the deploy role's policy carries (platform/deploy-role.yaml policyName;
# a unit test keeps the two equal).
DEPLOY_POLICY_NAME = "platform-deploy"
# IAM quota "Role policy size": all inline policies of a role, whitespace excluded.
INLINE_POLICY_MAX = 10_240
# Account-level administration and long-lived credentials: never for a deploying identity.
ACCOUNT_LEVEL = re.compile(
    r"^(organizations|account|billing|aws-portal|sso|identitystore):|"
    r"^iam:(\*|.*AccountPasswordPolicy|.*AccountAlias|CreateUser|DeleteUser|CreateAccessKey|UpdateAccessKey|"
    r"CreateLoginProfile|UpdateLoginProfile|CreateGroup|AddUserToGroup|.*UserPolicy|.*GroupPolicy|"
    r"CreateSAMLProvider|UpdateSAMLProvider|.*VirtualMFADevice|SetSecurityTokenServicePreferences)$",
    re.IGNORECASE,
)
# What a condition must pin for these IAM actions, which name no resource of their own.
REQUIRED_CONDITION = {
    "iam:passrole": "iam:PassedToService",
    "iam:createservicelinkedrole": "iam:AWSServiceName",
}
# An IAM resource ARN naming something: a type, then a name of at least one character before any wildcard.
NAMED_IAM = re.compile(r"^arn:[a-z-]+:iam::(\d{12}|aws):[a-z-]+/[^*?]+[^*?/]*\*?$")


def is_deploy_policy(typ: str, props: Mapping[str, Any]) -> bool:
    return typ == IAM_ROLE_POLICY and get(props, "name") == DEPLOY_POLICY_NAME


def compact_size(policy: Any) -> int:
    """The policy's size as IAM counts it (whitespace excluded)."""
    text = policy if isinstance(policy, str) else str(policy)
    return len(re.sub(r"\s", "", text))


def _iam_problems(statement: Mapping[str, Any]) -> Iterator[str]:
    sid = get(statement, "Sid", "(no Sid)")
    iam = [a for a in iamdoc.actions(statement) if a.lower().startswith("iam:")]
    if not iam:
        return
    if any("*" in a or "?" in a for a in iam):
        yield f"statement {sid} grants IAM actions by wildcard; list them"
    for resource in iamdoc.resources(statement):
        if not NAMED_IAM.match(resource):
            yield f"statement {sid} grants {', '.join(iam)} on {resource}: name the stack's own resources"
    keys = {key.lower() for _, key, _ in iamdoc.conditions(statement)}
    for action in iam:
        needed = REQUIRED_CONDITION.get(action.lower())
        if needed and needed.lower() not in keys:
            yield f"statement {sid} allows {action} without a {needed} condition"


@rules.resource(
    "deploy-role-least-privilege",
    types=(IAM_ROLE_POLICY,),
    description=(
        "The deploy role's policy names its IAM resources, conditions PassRole and service-linked "
        "roles, grants nothing account-level and fits IAM's size limit."
    ),
    sources=(
        Source("aws-docs", "IAM User Guide: grant least privilege; iam:PassedToService, iam:AWSServiceName"),
        Source("aws-docs", "IAM User Guide: IAM and AWS STS quotas (role policy size 10,240)"),
        Source("platform", "docs/deploy-role.md"),
    ),
    prod=Level.MANDATORY,
    dev=Level.MANDATORY,
)
def deploy_role(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if not is_deploy_policy(typ, props):
        return
    policy = get(props, "policy")
    if document(policy) is None:
        return  # not known yet (preview of a new stack): judged on the next run
    for statement in iamdoc.statements(policy):
        if not iamdoc.allows(statement):
            continue
        for action in iamdoc.actions(statement):
            if action in ("*", "*:*") or ACCOUNT_LEVEL.match(action):
                yield f"allows {action}: account-level, never for the deploy role"
        yield from _iam_problems(statement)
    if (size := compact_size(policy)) > INLINE_POLICY_MAX:
        yield f"the policy has {size} characters; IAM allows {INLINE_POLICY_MAX} for a role's inline policies"
