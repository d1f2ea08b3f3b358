"""The deploy role: the one identity that must create infrastructure, judged by its own rules.

Its inline policy (named DEPLOY_POLICY_NAME) and the stack's permissions boundary (a managed policy
named `<prefix>-boundary`), both built by components/deploy_policy.py, grant services on the
stack's names (`secretsmanager:*` on `secret:<prefix>/*`) and `ec2:*` on "*", which the workload
rules `iam-no-service-wildcard` and `iam-no-unscoped-write` forbid; they skip these two policies and
`deploy-role-least-privilege` holds them to what matters for a deploying identity instead: IAM only
on named resources, role writes only with the boundary condition, PassRole and service-linked roles
only with their service conditions, no wildcard resource for an action that can be scoped, nothing
account-level, and within IAM's size limits. `deploy-role-bounded-roles` checks the other side:
every role in the plan carries a permissions boundary, pulumi-eks creates no role of its own, and
no role policy grants what the boundary takes away.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from policy import iamdoc
from policy.model import Context, Level, Resource, RuleSet, Source
from policy.props import document, get
from policy.resource_types import EKS_CLUSTER, IAM_POLICY, IAM_ROLE, IAM_ROLE_POLICY

rules = RuleSet()
# The inline policy name the deploy role's policy carries (platform/deploy-role.yaml policyName;
# a unit test keeps the two equal).
DEPLOY_POLICY_NAME = "platform-deploy"
# The stack's permissions boundary is the managed policy named `<prefix>` + this suffix
# (components/deploy_policy.py BOUNDARY_SUFFIX; a unit test keeps the two equal).
BOUNDARY_SUFFIX = "-boundary"
# IAM quota "Role policy size": all inline policies of a role, whitespace excluded.
INLINE_POLICY_MAX = 10_240
# IAM quota "Managed policy size": 6,144 characters, whitespace excluded.
MANAGED_POLICY_MAX = 6_144
# Role writes that change what a role may do, and that IAM conditions with iam:PermissionsBoundary
# (IAM User Guide, "Permissions boundaries for IAM entities"; Service Authorization Reference, IAM).
BOUNDED_ROLE_WRITES = frozenset(
    a.lower()
    for a in (
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:PutRolePermissionsBoundary",
    )
)
# Services whose resources the stack names (or tags), so "*" is never needed for their writes and
# data reads (Service Authorization Reference: each has resource-level permissions).
SCOPABLE_SERVICES = frozenset({"secretsmanager", "kms", "logs", "ecr", "sqs", "eks", "events", "autoscaling"})
# What a bounded role may hold of IAM: passing a role (conditioned), a service-linked role
# (conditioned) and reads.
BOUNDARY_IAM = re.compile(r"^iam:(PassRole|CreateServiceLinkedRole|Get\w+|List\w+)$", re.IGNORECASE)
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
    """The deploy role's inline policy, or the stack's permissions boundary."""
    if typ == IAM_ROLE_POLICY:
        return bool(get(props, "name") == DEPLOY_POLICY_NAME)
    return is_boundary_policy(typ, props)


def is_boundary_policy(typ: str, props: Mapping[str, Any]) -> bool:
    return typ == IAM_POLICY and str(get(props, "name") or "").endswith(BOUNDARY_SUFFIX)


def compact_size(policy: Any) -> int:
    """The policy's size as IAM counts it (whitespace excluded)."""
    text = policy if isinstance(policy, str) else str(policy)
    return len(re.sub(r"\s", "", text))


def _iam_problems(statement: Mapping[str, Any], *, boundary: bool = False) -> Iterator[str]:
    sid = get(statement, "Sid", "(no Sid)")
    iam = [a for a in iamdoc.actions(statement) if a.lower().startswith("iam:")]
    if boundary:  # a ceiling: reads of any IAM resource are harmless there (Karpenter lists profiles)
        iam = [a for a in iam if not iamdoc.split(a)[1].startswith(("Get", "List"))]
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
        if action.lower() in BOUNDED_ROLE_WRITES and "iam:permissionsboundary" not in keys:
            yield (
                f"statement {sid} allows {action} without an iam:PermissionsBoundary condition: "
                "a role it writes could hold any policy"
            )


def _unscoped_problems(statement: Mapping[str, Any], *, boundary: bool = False) -> Iterator[str]:
    """Writes and data reads on "*" of a service whose resources the stack names or tags (in the
    boundary, a ceiling, reads are fine: nodes pull AWS's own add-on images from other accounts)."""
    if "*" not in iamdoc.resources(statement) or iamdoc.has_scoping_condition(statement):
        return
    sid = get(statement, "Sid", "(no Sid)")
    for action in iamdoc.actions(statement):
        service, verb = iamdoc.split(action)
        if boundary and iamdoc.is_read(action):
            continue
        if service in SCOPABLE_SERVICES and not verb.startswith(("Describe", "List")):
            yield f'statement {sid} grants {action} on "*": scope it to the stack\'s names or tags'


@rules.resource(
    "deploy-role-least-privilege",
    types=(IAM_ROLE_POLICY, IAM_POLICY),
    description=(
        "The deploy role's policy and the permissions boundary name their IAM resources, write "
        "roles only with the boundary condition, condition PassRole and service-linked roles, use "
        'no "*" for an action the stack can scope, grant nothing account-level and fit IAM\'s size limits.'
    ),
    sources=(
        Source("aws-docs", "IAM User Guide: grant least privilege; iam:PassedToService, iam:AWSServiceName"),
        Source("aws-docs", "IAM User Guide: IAM and AWS STS quotas (role policy size 10,240)"),
        Source("aws-docs", "IAM User Guide: Permissions boundaries for IAM entities (delegation example)"),
        Source("aws-docs", "Service Authorization Reference: resource types and condition keys per action"),
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
    boundary = is_boundary_policy(typ, props)
    for statement in iamdoc.statements(policy):
        if not iamdoc.allows(statement):
            continue
        for action in iamdoc.actions(statement):
            if action in ("*", "*:*") or ACCOUNT_LEVEL.match(action):
                yield f"allows {action}: account-level, never for the deploy role"
            elif boundary and action.lower().startswith("iam:") and not BOUNDARY_IAM.match(action):
                yield f"the permissions boundary allows {action}: a bounded role could change IAM"
        yield from _iam_problems(statement, boundary=boundary)
        yield from _unscoped_problems(statement, boundary=boundary)
    limit = MANAGED_POLICY_MAX if boundary else INLINE_POLICY_MAX
    if (size := compact_size(policy)) > limit:
        yield f"the policy has {size} characters; IAM allows {limit} for this policy"


def _matches(patterns: list[str], value: str, *, actions: bool) -> bool:
    """IAM wildcard matching; action names are case-insensitive, resources are not."""
    if actions:
        return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def outside_boundary(policy: Any, boundary: Any) -> list[str]:
    """(Sid, action, resource) of the policy's Allow statements the boundary does not allow: no
    boundary Allow matches both, or a boundary Deny does. Conditions are not compared: the
    boundary's are tag and service conditions the stack's own resources meet."""
    allows = [s for s in iamdoc.statements(boundary) if iamdoc.allows(s)]
    denies = [s for s in iamdoc.statements(boundary) if get(s, "Effect") == "Deny"]

    def hit(s: Mapping[str, Any], action: str, resource: str) -> bool:
        return _matches(iamdoc.actions(s), action, actions=True) and _matches(
            iamdoc.resources(s), resource, actions=False
        )

    return [
        f"{get(s, 'Sid', '(no Sid)')}: {action} on {resource}"
        for s in iamdoc.statements(policy)
        if iamdoc.allows(s)
        for action in iamdoc.actions(s)
        for resource in iamdoc.resources(s)
        if not any(hit(b, action, resource) for b in allows) or any(hit(d, action, resource) for d in denies)
    ]


def _trusts_pulumi_deployments(props: Mapping[str, Any]) -> bool:
    """A role Pulumi Deployments assumes: the deploy identity, applied by admins, not bounded."""
    return any(
        str(p).endswith(":oidc-provider/api.pulumi.com/oidc")
        for s in iamdoc.statements(get(props, "assumeRolePolicy"))
        for p in iamdoc.principals(s, "Federated")
    )


# pulumi-eks (nodejs/eks/cluster/cluster.ts at v4.3.0..v4.4.0, unchanged) creates IAM roles of its
# own, which cannot carry a boundary (its ServiceRole has no such input): the cluster's service
# role unless `serviceRole` is given, the default node group's instance role unless
# `skipDefaultNodeGroup` (or when `createInstanceRole`), and Auto Mode's node role.
def _eks_own_roles(props: Mapping[str, Any]) -> Iterator[str]:
    if not get(props, "serviceRole"):
        yield "no serviceRole: pulumi-eks creates the cluster's service role without the boundary"
    if get(props, "createInstanceRole") or not get(props, "skipDefaultNodeGroup"):
        yield "pulumi-eks creates an instance role without the boundary: skip the default node group"
    if get(get(props, "autoMode") or {}, "enabled"):
        yield "EKS Auto Mode: pulumi-eks creates the node role without the boundary"


@rules.stack(
    "deploy-role-bounded-roles",
    description=(
        "Every IAM role the stack creates carries a permissions boundary (the deploy role may "
        "create roles only with it), every role policy stays inside the boundary, and pulumi-eks "
        "is given the roles it would otherwise create."
    ),
    sources=(
        Source("aws-docs", "IAM User Guide: Permissions boundaries for IAM entities"),
        Source("platform", "docs/deploy-role.md"),
    ),
    prod=Level.MANDATORY,
    dev=Level.MANDATORY,
)
def bounded_roles(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[str | None, str]]:
    # Only stacks a deploy role applies (its policy, or a bounded role, is in the plan): a stack
    # without Deployments is applied by an admin and has no boundary to carry.
    roles = [r for r in resources if r.type == IAM_ROLE and not _trusts_pulumi_deployments(r.props)]
    deployed = any(is_deploy_policy(r.type, r.props) for r in resources) or any(
        get(r.props, "permissionsBoundary") for r in roles
    )
    if not deployed:
        return
    for role in roles:
        if not get(role.props, "permissionsBoundary"):
            yield (
                role.urn,
                (
                    f"role {get(role.props, 'name') or role.urn} has no permissionsBoundary: the deploy "
                    "role cannot create it, and an unbounded role is a way to account admin"
                ),
            )
    for cluster in (r for r in resources if r.type == EKS_CLUSTER):
        for problem in _eks_own_roles(cluster.props):
            yield cluster.urn, problem
    # What a role's inline policy grants beyond the boundary, the role is denied at runtime.
    for boundary in (r for r in resources if is_boundary_policy(r.type, r.props)):
        for policy in (
            r for r in resources if r.type == IAM_ROLE_POLICY and not is_deploy_policy(r.type, r.props)
        ):
            for grant in outside_boundary(get(policy.props, "policy"), get(boundary.props, "policy")):
                yield (
                    policy.urn,
                    f"{grant} is outside the permissions boundary: the role is denied it at runtime",
                )
