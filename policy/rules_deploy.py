"""The deploy role: the one identity that must create infrastructure, judged by its own rules.

Its inline policy (named DEPLOY_POLICY_NAME) and the stack's permissions boundary (a managed policy
named `<prefix>-boundary`), both built by components/deploy_policy.py, grant services on the
stack's names (`secretsmanager:*` on `secret:<prefix>/*`) and `ec2:*` on "*", which the workload
rules `iam-no-service-wildcard` and `iam-no-unscoped-write` forbid; they skip these two policies and
`deploy-role-least-privilege` holds them to what matters for a deploying identity instead: IAM only
on named resources, role writes only with the boundary condition, PassRole and service-linked roles
only with their service conditions, no wildcard resource for an action that can be scoped, nothing
account-level, within IAM's size limits, and kept off the identity project's resources inside
its reach (its own role and any `<prefix>-deployments-*` role, the agent token secret and its key,
the boundary, Pulumi's OIDC provider: `identity_reach`). `deploy-role-bounded-roles` checks the
other side: every role in the plan but the write role carries a permissions boundary, pulumi-eks
creates no role of its own, and no role policy grants what the boundary takes away.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from policy import iamdoc
from policy.model import Context, Level, Resource, RuleSet, Source
from policy.props import document, get, items
from policy.resource_types import EKS_CLUSTER, IAM_POLICY, IAM_ROLE, IAM_ROLE_POLICY

rules = RuleSet()
# The inline policy name the deploy role's policy carries (platform/deploy-role.yaml policyName;
# a unit test keeps the two equal).
DEPLOY_POLICY_NAME = "platform-deploy"
# The stack's permissions boundary is the managed policy named `<prefix>` + this suffix
# (components/deploy_policy.py BOUNDARY_SUFFIX; a unit test keeps the two equal).
BOUNDARY_SUFFIX = "-boundary"
# The deploy role's managed policy of grants outside IAM is `<prefix>` + this suffix
# (components/deploy_policy.py SERVICES_SUFFIX; a unit test keeps the two equal).
SERVICES_SUFFIX = "-deployments-services"
# Pulumi Deployments' OIDC provider, and the end of the subject of a preview (`...:operation:preview:
# scope:write`, components/deploy_roles.py): the write role's trust accepts other operations.
PULUMI_OIDC_PROVIDER = ":oidc-provider/api.pulumi.com/oidc"
PREVIEW_SUBJECT = ":operation:preview:scope:write"
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
# Services whose resources the deploy role reaches by the stack's tag only (generated IDs): a write
# on "*" needs an aws:ResourceTag / aws:RequestTag condition (EC2 supports both on most actions:
# Service Authorization Reference, EC2). Not in the boundary, whose EC2 ceiling serves the
# controllers' own resources (platform/deploy-role.yaml Ec2Ceiling).
TAG_SCOPED_SERVICES = frozenset({"ec2"})
# What a bounded role may hold of IAM: passing a role (conditioned) and reads.
BOUNDARY_IAM = re.compile(r"^iam:(PassRole|Get\w+|List\w+)$", re.IGNORECASE)
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
    """The deploy role's inline policy, its managed policy of grants outside IAM, or the stack's
    permissions boundary."""
    if typ == IAM_ROLE_POLICY:
        return bool(get(props, "name") == DEPLOY_POLICY_NAME)
    return is_boundary_policy(typ, props) or is_services_policy(typ, props)


def is_services_policy(typ: str, props: Mapping[str, Any]) -> bool:
    return typ == IAM_POLICY and str(get(props, "name") or "").endswith(SERVICES_SUFFIX)


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


def _retag_problems(statement: Mapping[str, Any]) -> Iterator[str]:
    """ec2:CreateTags that can put the stack's tags on an existing resource: the stack's
    tag-conditioned ec2:* then owns it (stop another stack's instance, change its user data, attach
    its volume). Allowed inside a create call (`ec2:CreateAction`), on what already carries a named
    tag (aws:ResourceTag), or on security groups (the VPC's untagged default group is adopted; the
    residual is in docs/deploy-role.md)."""
    if not any(_matches([a], "ec2:CreateTags", actions=True) for a in iamdoc.actions(statement)):
        return
    keys = {key for _, key, _ in iamdoc.conditions(statement)}
    if "ec2:CreateAction" in keys or any(k.lower().startswith("aws:resourcetag/") for k in keys):
        return
    if all(r.endswith(":security-group/*") for r in iamdoc.resources(statement)):
        return
    sid = get(statement, "Sid", "(no Sid)")
    yield (
        f"statement {sid} allows ec2:CreateTags on existing resources: a push could tag another "
        "stack's resource into its own reach; condition it on ec2:CreateAction"
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
        elif service in TAG_SCOPED_SERVICES and not boundary and not verb.startswith("Describe"):
            yield f'statement {sid} grants {action} on "*" with no tag condition: require the stack\'s tag'


@rules.resource(
    "deploy-role-least-privilege",
    types=(IAM_ROLE_POLICY, IAM_POLICY),
    description=(
        "The deploy role's policy and the permissions boundary name their IAM resources, write "
        "roles only with the boundary condition, condition PassRole and service-linked roles, use "
        'no "*" for an action the stack can scope, grant nothing account-level, fit IAM\'s size limits, '
        "and leave the identity project's resources alone (the deploy role and any role under "
        "`<prefix>-deployments-`, the agent token secret and its key, the boundary, Pulumi's OIDC "
        "provider). The boundary keeps its service wildcards to the stack's region and denies changes "
        "to EC2 resources and load balancers that carry neither the stack's tag nor its cluster's, "
        "and nothing its controllers need."
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
    yield from _grant_problems(policy, boundary=boundary)
    if is_services_policy(typ, props):
        yield from _services_problems(policy)
    elif boundary:
        # The deploy role may PutRolePolicy on any bounded role of the stack, so what the boundary
        # allows of the identity, a push can give itself through that role.
        yield from identity_reach(policy, boundary_name=str(get(props, "name")))
        yield from foreign_reach(policy)
    else:
        # The inline policy holds every IAM grant and every Deny of the role; its grants outside
        # IAM are in the managed policy, so here they count as granted (the worst case) and the
        # Denies must stop each probe on their own.
        yield from identity_reach(policy, granted=outside_iam)
        yield from other_stacks_reach(policy, granted=outside_iam)
    limit = INLINE_POLICY_MAX if typ == IAM_ROLE_POLICY else MANAGED_POLICY_MAX
    if (size := compact_size(policy)) > limit:
        yield f"the policy has {size} characters; IAM allows {limit} for this policy"


def _grant_problems(policy: Any, *, boundary: bool) -> Iterator[str]:
    """Each Allow statement judged on its own (account-level, IAM, "*", re-tagging)."""
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
        if not boundary:
            yield from _retag_problems(statement)


def _services_problems(policy: Any) -> Iterator[str]:
    """The deploy role's managed policy grants outside IAM only; its Denies are the inline policy's."""
    for statement in iamdoc.statements(policy):
        if get(statement, "Effect") == "Deny" or any(
            a.lower().startswith("iam:") for a in iamdoc.actions(statement)
        ):
            sid = get(statement, "Sid", "(no Sid)")
            yield (
                f"statement {sid} of the deploy role's managed policy is a Deny or an IAM grant: "
                "both stay in its inline policy, where the probes see them together"
            )


def _matches(patterns: list[str], value: str, *, actions: bool) -> bool:
    """IAM wildcard matching; action names are case-insensitive, resources are not."""
    if actions:
        return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


# The identity project's resources of a stack (components/deploy_roles.py kept_off), inside the
# deploy role's prefix and tag, which its policy must keep it from changing: (what, probes). A
# probe is (action, resource template, request context); {p} partition, {a} account, {r} region,
# {x} the stack's prefix. Derived from the role's own name, `<prefix>-deployments-deploy`.
IDENTITY_SUFFIX = "-deployments-deploy"
_ROLE_WRITES = ("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole")
IDENTITY_PROBES: tuple[tuple[str, tuple[tuple[str, str, dict[str, list[str]]], ...]], ...] = (
    ("deploy role", tuple((w, "arn:{p}:iam::{a}:role/{x}-deployments-deploy", {}) for w in _ROLE_WRITES)),
    (
        "roles under `<prefix>-deployments-` (any role an admin creates there)",
        tuple((w, "arn:{p}:iam::{a}:role/{x}-deployments-new", {}) for w in (*_ROLE_WRITES, "iam:PassRole")),
    ),
    (
        "agent token secret",
        tuple(
            (w, "arn:{p}:secretsmanager:{r}:{a}:secret:{x}/deploy-agent-token-AbCdEf", {})
            for w in (
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:DeleteSecret",
            )
        ),
    ),
    (
        "agent token key",
        tuple(
            (
                w,
                "arn:{p}:kms:{r}:{a}:key/00000000-0000-0000-0000-000000000000",
                {"kms:ResourceAliases": ["alias/{x}-deploy-agent-token"]},
            )
            for w in ("kms:Decrypt", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion")
        )
        + tuple(
            (w, "arn:{p}:kms:{r}:{a}:alias/{x}-deploy-agent-token", {})
            for w in ("kms:DeleteAlias", "kms:UpdateAlias")
        ),
    ),
    (
        "permissions boundary",
        tuple(
            (w, "arn:{p}:iam::{a}:policy/{x}-boundary", {})
            for w in (
                "iam:CreatePolicyVersion",
                "iam:SetDefaultPolicyVersion",
                "iam:DeletePolicy",
                "iam:TagPolicy",
            )
        ),
    ),
    (
        "Pulumi OIDC provider",
        tuple(
            (w, "arn:{p}:iam::{a}:oidc-provider/api.pulumi.com/oidc", {})
            for w in ("iam:DeleteOpenIDConnectProvider", "iam:UpdateOpenIDConnectProviderThumbprint")
        ),
    ),
)
_OWN_ROLE = re.compile(r"^arn:([a-z-]+):iam::(\d{12}):role/(.+)" + re.escape(IDENTITY_SUFFIX) + "$")
# The agent hosts' role (bounded) reads the pool token at boot (components/agent.py), so the
# boundary allows these two on the token; every other probe it must deny.
AGENT_READS = frozenset({"secretsmanager:GetSecretValue", "kms:Decrypt"})
_ACCOUNT = re.compile(r"^arn:([a-z-]+):[a-z0-9-]+:[a-z0-9-]*:(\d{12}):")
_REGIONAL = re.compile(r"^arn:[a-z-]+:(?:secretsmanager|kms|logs):([a-z0-9-]+):\d{12}:")


def _deny_applies(
    statement: Mapping[str, Any], context: Mapping[str, list[str]], *, negated: bool = False
) -> bool:
    """Whether a Deny's conditions hold for the request `context`. The string and ARN equality
    and pattern operators are evaluated; with `negated`, also `Null` and `StringNotEquals` (true
    when the key is absent: IAM User Guide, "Condition operators", negated matching) and
    `StringNotLike` (with `ForAnyValue:`, false for an empty set: "Single-valued vs. multivalued
    context keys"), for a
    context that lists every key the request has. Any other condition (or, without `negated`, a
    key the context lacks) counts as not holding, so an unknown Deny never hides an Allow."""
    for operator, key, values in iamdoc.conditions(statement):
        op = operator.split(":", 1)[1] if operator.startswith("ForAnyValue:") else operator
        given = context.get(key, [])
        if op in ("StringEquals", "ArnEquals"):
            ok = any(v in values for v in given)
        elif op in ("StringLike", "ArnLike"):
            ok = any(fnmatch.fnmatchcase(v, p) for v in given for p in values)
        elif negated and op == "Null":
            ok = (not given) == (values == ["true"])
        elif negated and op == "StringNotEquals":
            ok = not any(v in values for v in given)
        elif negated and op == "StringNotLike":
            unmatched = [v for v in given if not any(fnmatch.fnmatchcase(v, p) for p in values)]
            # ForAnyValue: some value matches no pattern (an empty set: none); plain: no value matches.
            ok = bool(unmatched) if operator.startswith("ForAnyValue:") else len(unmatched) == len(given)
        else:
            ok = False
        if not ok:
            return False
    return True


def _resource_hit(statement: Mapping[str, Any], resource: str) -> bool:
    """Whether `resource` is in the statement: listed under Resource, or not listed under
    NotResource (IAM User Guide, "IAM JSON policy elements: NotResource")."""
    not_resource = get(statement, "NotResource")
    if not_resource is not None:
        return not _matches([str(r) for r in items(not_resource)], resource, actions=False)
    return _matches(iamdoc.resources(statement), resource, actions=False)


def _action_hit(statement: Mapping[str, Any], action: str) -> bool:
    """Whether `action` is in the statement: listed under Action, or not listed under NotAction
    (IAM User Guide, "IAM JSON policy elements: NotAction")."""
    not_action = get(statement, "NotAction")
    if not_action is not None:
        return not _matches([str(a) for a in items(not_action)], action, actions=True)
    return _matches(iamdoc.actions(statement), action, actions=True)


def outside_iam(action: str) -> bool:
    """An action the deploy role's managed policy may grant (not IAM, not STS)."""
    return not action.lower().startswith(("iam:", "sts:"))


def permits(
    policy: Any,
    action: str,
    resource: str,
    context: Mapping[str, list[str]],
    *,
    negated: bool = False,
    granted: Callable[[str], bool] | None = None,
) -> bool:
    """Whether `policy` allows `action` on `resource`: an Allow matches (its conditions assumed
    met: the worst case), or `granted` says another policy of the role grants it, and no Deny that
    holds for `context` matches (`negated`: _deny_applies)."""

    def hit(s: Mapping[str, Any]) -> bool:
        return _action_hit(s, action) and _resource_hit(s, resource)

    docs = iamdoc.statements(policy)
    if not (granted and granted(action)) and not any(iamdoc.allows(s) and hit(s) for s in docs):
        return False
    return not any(
        get(s, "Effect") == "Deny" and hit(s) and _deny_applies(s, context, negated=negated) for s in docs
    )


def _owner(policy: Any, boundary_name: str | None) -> tuple[str, str, str] | None:
    """(partition, account, prefix) of the stack: from the deploy role's own ARN (AssumeItself),
    or, for the boundary (named `<prefix>-boundary`), from its name and any account ARN in it."""
    if boundary_name is None:
        own = next(
            (
                m
                for s in iamdoc.statements(policy)
                if iamdoc.allows(s)
                for r in iamdoc.resources(s)
                if (m := _OWN_ROLE.match(r))
            ),
            None,
        )
        return (own.group(1), own.group(2), own.group(3)) if own else None
    account = next(
        (m for s in iamdoc.statements(policy) for r in iamdoc.resources(s) if (m := _ACCOUNT.match(r))), None
    )
    return (
        (account.group(1), account.group(2), boundary_name.removesuffix(BOUNDARY_SUFFIX)) if account else None
    )


def _region(policy: Any) -> str:
    """The stack's region, from the first regional ARN of the policy ("*" when it names none)."""
    found = (
        m.group(1)
        for s in iamdoc.statements(policy)
        for r in iamdoc.resources(s)
        if (m := _REGIONAL.match(r))
    )
    return next(found, "*")


def identity_reach(
    policy: Any, *, boundary_name: str | None = None, granted: Callable[[str], bool] | None = None
) -> Iterator[str]:
    """What the deploy policy (or, given its name, the boundary) lets a role change of the
    identity project's resources."""
    owner = _owner(policy, boundary_name)
    if owner is None:
        return  # the role's own ARN (AssumeItself) is not in the policy: nothing to derive from
    partition, account, prefix = owner
    fill = {"p": partition, "a": account, "r": _region(policy), "x": prefix}
    for what, probes in IDENTITY_PROBES:
        for action, template, context in probes:
            if boundary_name and action in AGENT_READS:
                continue
            resource = template.format(**fill)
            ctx = {k: [v.format(**fill) for v in vs] for k, vs in context.items()}
            if permits(policy, action, resource, ctx, granted=granted):
                who = "any role of the stack (the boundary)" if boundary_name else "the deploy role"
                yield (
                    f"lets {who} {action} on {resource}: the identity project's {what}, "
                    "which only admins change (make up PROJECT=identity)"
                )


# What the boundary must deny on resources of another stack or cluster (no `platform:stack` tag of
# the stack, no `kubernetes.io/cluster/<cluster>` tag; review 19, round 2), where its ceiling
# allows the service on "*": (action, resource template; {p} partition, {r} region, {a} account).
FOREIGN_PROBES: tuple[tuple[str, str], ...] = (
    *(
        (a, "arn:{p}:ec2:{r}:{a}:instance/i-0f0f0f0f0f0f0f0f0")
        for a in (
            "ec2:TerminateInstances",
            "ec2:StopInstances",
            "ec2:ModifyInstanceAttribute",
            "ec2:AssociateIamInstanceProfile",
            "ec2:CreateTags",
        )
    ),
    *(
        (a, "arn:{p}:ec2:{r}:{a}:volume/vol-0f0f0f0f0f0f0f0f0")
        for a in ("ec2:DeleteVolume", "ec2:AttachVolume")
    ),
    *(
        (a, "arn:{p}:ec2:{r}:{a}:security-group/sg-0f0f0f0f0f0f0f0f0")
        for a in ("ec2:AuthorizeSecurityGroupIngress", "ec2:DeleteSecurityGroup")
    ),
    ("ec2:DeleteVpc", "arn:{p}:ec2:{r}:{a}:vpc/vpc-0f0f0f0f0f0f0f0f0"),
    ("ec2:CreateRoute", "arn:{p}:ec2:{r}:{a}:route-table/rtb-0f0f0f0f0f0f0f0f0"),
    ("ec2:CreateLaunchTemplateVersion", "arn:{p}:ec2:{r}:{a}:launch-template/lt-0f0f0f0f0f0f0f0f0"),
    (
        "elasticloadbalancing:DeleteLoadBalancer",
        "arn:{p}:elasticloadbalancing:{r}:{a}:loadbalancer/net/x/0f0f",
    ),
    ("elasticloadbalancing:RegisterTargets", "arn:{p}:elasticloadbalancing:{r}:{a}:targetgroup/x/0f0f"),
    # Review 19, round 4: what `ec2:*` left to every role of the stack besides the above. A new
    # root volume from any AMI boots another team's instance as its role; the account's EBS and
    # metadata defaults and serial console are region-wide settings; endpoints, ACLs, route table
    # associations and traffic mirrors reach other VPCs' traffic.
    ("ec2:CreateReplaceRootVolumeTask", "arn:{p}:ec2:{r}:{a}:instance/i-0f0f0f0f0f0f0f0f0"),
    ("ec2:AttachVolume", "arn:{p}:ec2:{r}:{a}:instance/i-0f0f0f0f0f0f0f0f0"),
    ("ec2:ModifyEbsDefaultKmsKeyId", "*"),
    ("ec2:DisableEbsEncryptionByDefault", "*"),
    ("ec2:ModifyInstanceMetadataDefaults", "*"),
    ("ec2:EnableSerialConsoleAccess", "*"),
    ("ec2:DeleteVpcEndpoints", "arn:{p}:ec2:{r}:{a}:vpc-endpoint/vpce-0f0f0f0f0f0f0f0f0"),
    ("ec2:ModifyVpcAttribute", "arn:{p}:ec2:{r}:{a}:vpc/vpc-0f0f0f0f0f0f0f0f0"),
    ("ec2:CreateNetworkAclEntry", "arn:{p}:ec2:{r}:{a}:network-acl/acl-0f0f0f0f0f0f0f0f0"),
    ("ec2:ReplaceRouteTableAssociation", "arn:{p}:ec2:{r}:{a}:route-table/rtb-0f0f0f0f0f0f0f0f0"),
    ("ec2:CreateTrafficMirrorSession", "arn:{p}:ec2:{r}:{a}:network-interface/eni-0f0f0f0f0f0f0f0f0"),
    ("elasticloadbalancing:AddTags", "arn:{p}:elasticloadbalancing:{r}:{a}:loadbalancer/net/x/0f0f"),
    ("elasticloadbalancing:CreateRule", "arn:{p}:elasticloadbalancing:{r}:{a}:listener/net/x/0f0f/0f0f"),
    # Review 19, round 5: launching, or making an interface, into another team's network.
    ("ec2:RunInstances", "arn:{p}:ec2:{r}:{a}:subnet/subnet-0f0f0f0f0f0f0f0f0"),
    ("ec2:RunInstances", "arn:{p}:ec2:{r}:{a}:security-group/sg-0f0f0f0f0f0f0f0f0"),
    ("ec2:CreateFleet", "arn:{p}:ec2:{r}:{a}:subnet/subnet-0f0f0f0f0f0f0f0f0"),
    ("ec2:CreateNetworkInterface", "arn:{p}:ec2:{r}:{a}:subnet/subnet-0f0f0f0f0f0f0f0f0"),
    # Round 6: a group in another team's VPC, or another team's group onto an interface.
    ("ec2:CreateSecurityGroup", "arn:{p}:ec2:{r}:{a}:vpc/vpc-0f0f0f0f0f0f0f0f0"),
    ("ec2:ModifyNetworkInterfaceAttribute", "arn:{p}:ec2:{r}:{a}:security-group/sg-0f0f0f0f0f0f0f0f0"),
)
# What no role of the stack may do whatever the tags (foreign_reach probes it with none).
NEVER_PROBES: tuple[tuple[str, str], ...] = (
    # A volume from a snapshot: the platform takes none, and another team's is its data.
    ("ec2:CreateVolume", "arn:{p}:ec2:{r}:{a}:snapshot/snap-0f0f0f0f0f0f0f0f0"),
)
# What those denies must leave to the stack's own controllers (Karpenter, the EBS CSI driver, the
# VPC CNI, the control plane): (action, resource template, request context; {c} the cluster). A
# negated condition also holds for a call that names no resource (no resource tag), so a Deny
# that matched a Describe, or a create's new resource, would stop them all.
OWN_PROBES: tuple[tuple[str, str, dict[str, list[str]]], ...] = (
    ("ec2:DescribeInstances", "*", {}),
    ("ec2:RunInstances", "arn:{p}:ec2:{r}:{a}:instance/*", {}),
    ("ec2:CreateLaunchTemplate", "arn:{p}:ec2:{r}:{a}:launch-template/*", {}),
    ("ec2:CreateTags", "arn:{p}:ec2:{r}:{a}:instance/*", {"ec2:CreateAction": ["RunInstances"]}),
    ("ec2:CreateTags", "arn:{p}:ec2:{r}:{a}:network-interface/eni-0f0f0f0f0f0f0f0f0", {}),
    ("ec2:DeleteNetworkInterface", "arn:{p}:ec2:{r}:{a}:network-interface/eni-0f0f0f0f0f0f0f0f0", {}),
    *(
        (a, r, {"aws:ResourceTag/kubernetes.io/cluster/{c}": ["owned"]})
        for a, r in FOREIGN_PROBES
        if a != "ec2:CreateTags"
    ),
)
# Services whose writes the boundary allows on "*" (the controllers' own resources): only in the
# stack's region.
REGIONAL_SERVICES = frozenset({"ec2", "elasticloadbalancing"})
_CLUSTER_ARN = re.compile(r"^arn:([a-z-]+):eks:([a-z0-9-]+):(\d{12}):cluster/([^/*?]+)$")


# What the deploy role must never do to a resource another stack or project of the platform
# tagged, or a key someone else named (review 19, round 3): re-tag it into its own tag scope, or
# change another cluster's IRSA provider. (action, resource template, request context).
_OTHER = {
    "aws:ResourceTag/platform:stack": ["another-stack"],
    "aws:ResourceTag/platform:project": ["another"],
}
OTHER_STACK_PROBES: tuple[tuple[str, str, dict[str, list[str]]], ...] = (
    ("ec2:CreateTags", "arn:{p}:ec2:{r}:{a}:security-group/sg-0f0f0f0f0f0f0f0f0", _OTHER),
    ("ec2:CreateTags", "arn:{p}:ec2:{r}:{a}:instance/i-0f0f0f0f0f0f0f0f0", _OTHER),
    ("kms:TagResource", "arn:{p}:kms:{r}:{a}:key/00000000-0000-0000-0000-000000000000", _OTHER),
    (
        "kms:TagResource",
        "arn:{p}:kms:{r}:{a}:key/00000000-0000-0000-0000-000000000000",
        {"kms:ResourceAliases": ["alias/someone-elses-key"]},
    ),
    (
        "iam:DeleteOpenIDConnectProvider",
        "arn:{p}:iam::{a}:oidc-provider/oidc.eks.{r}.amazonaws.com/id/0F0F",
        _OTHER,
    ),
    (
        "iam:RemoveClientIDFromOpenIDConnectProvider",
        "arn:{p}:iam::{a}:oidc-provider/oidc.eks.{r}.amazonaws.com/id/0F0F",
        _OTHER,
    ),
)


def other_stacks_reach(policy: Any, *, granted: Callable[[str], bool] | None = None) -> Iterator[str]:
    """What the deploy policy lets the role do to another stack's tagged resources (OTHER_STACK_PROBES)."""
    owner = _owner(policy, None)
    if owner is None:
        return
    fill = {"p": owner[0], "a": owner[1], "r": _region(policy)}
    for action, template, context in OTHER_STACK_PROBES:
        resource = template.format(**fill)
        if permits(policy, action, resource, context, negated=True, granted=granted):
            yield (
                f"lets the deploy role {action} on {resource} with {context}: a resource another stack, "
                "project or owner tagged or named; deny it (NoOtherStacks, NoOtherProjects, "
                "NoOthersAliasedKeys)"
            )


def foreign_reach(boundary: Any) -> Iterator[str]:
    """What the permissions boundary lets any role of the stack do outside it: a service wildcard
    on "*" in any region, or a change to another stack's EC2 resources or load balancers; and what
    its denies take from the stack's own controllers."""
    docs = iamdoc.statements(boundary)
    for s in docs:
        if not (iamdoc.allows(s) and "*" in iamdoc.resources(s)):
            continue
        sid = get(s, "Sid", "(no Sid)")
        actions = iamdoc.actions(s)
        if wildcards := [a for a in actions if a.endswith(":*")]:
            yield (
                f'statement {sid} allows {", ".join(wildcards)} on "*": list the actions the platform\'s '
                "roles use (a service wildcard in the boundary hands every role of the stack the service)"
            )
        regional = [a for a in actions if iamdoc.split(a)[0] in REGIONAL_SERVICES and not iamdoc.is_read(a)]
        keys = {key.lower() for _, key, _ in iamdoc.conditions(s)}
        if regional and "aws:requestedregion" not in keys:
            yield (
                f'statement {sid} allows {", ".join(regional)} on "*" in every region: condition it on '
                "aws:RequestedRegion (the stack's region)"
            )
    cluster = next(
        (m for s in docs if iamdoc.allows(s) for r in iamdoc.resources(s) if (m := _CLUSTER_ARN.match(r))),
        None,
    )
    if cluster is None:
        return  # no cluster of the stack in the boundary: nothing of its own to probe
    fill = {"p": cluster.group(1), "r": cluster.group(2), "a": cluster.group(3), "c": cluster.group(4)}
    for action, template in (*FOREIGN_PROBES, *NEVER_PROBES):
        resource = template.format(**fill)
        if permits(boundary, action, resource, {}, negated=True):
            yield (
                f"lets any role of the stack (the boundary) {action} on {resource}, a resource of "
                f"neither the stack nor its cluster: deny it where it has neither tag"
            )
    for action, template, context in OWN_PROBES:
        resource = template.format(**fill)
        if not any(iamdoc.allows(s) and _action_hit(s, action) and _resource_hit(s, resource) for s in docs):
            continue  # not in the boundary's allowlist at all: nothing a Deny could take away
        ctx = {k.format(**fill): v for k, v in context.items()}
        if not permits(boundary, action, resource, ctx, negated=True):
            yield (
                f"denies {action} on {resource} with {ctx or 'no tags'} to the stack's own controllers: "
                "a Deny on foreign resources must name only actions on existing, tagged resources"
            )


def outside_boundary(policy: Any, boundary: Any) -> list[str]:
    """(Sid, action, resource) of the policy's Allow statements the boundary does not allow: no
    boundary Allow matches both, or a boundary Deny does. Conditions are not compared: the
    boundary's are tag and service conditions the stack's own resources meet; a conditional Deny
    (the agent token key's, by alias) counts only when its condition holds with no context."""
    allows = [s for s in iamdoc.statements(boundary) if iamdoc.allows(s)]
    denies = [s for s in iamdoc.statements(boundary) if get(s, "Effect") == "Deny" and _deny_applies(s, {})]

    def hit(s: Mapping[str, Any], action: str, resource: str) -> bool:
        return _action_hit(s, action) and _matches(iamdoc.resources(s), resource, actions=False)

    return [
        f"{get(s, 'Sid', '(no Sid)')}: {action} on {resource}"
        for s in iamdoc.statements(policy)
        if iamdoc.allows(s)
        for action in iamdoc.actions(s)
        for resource in iamdoc.resources(s)
        if not any(hit(b, action, resource) for b in allows) or any(hit(d, action, resource) for d in denies)
    ]


def _is_the_write_role(props: Mapping[str, Any]) -> bool:
    """The deploy (write) role: Pulumi Deployments may assume it for an operation other than a
    preview. It is the one role not bounded: it creates the stack's bounded roles, which the
    boundary (no IAM write) would forbid it, and admins apply it (the identity project). A role
    Pulumi may assume for `operation:preview` only is not exempt: it writes nothing, so nothing
    keeps it from carrying the boundary."""
    for s in iamdoc.statements(get(props, "assumeRolePolicy")):
        if not any(str(p).endswith(PULUMI_OIDC_PROVIDER) for p in iamdoc.principals(s, "Federated")):
            continue
        subjects = [v for _, key, values in iamdoc.conditions(s) if key.endswith(":sub") for v in values]
        if not subjects or any(not v.endswith(PREVIEW_SUBJECT) for v in subjects):
            return True
    return False


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
        "create roles only with it; only the deploy role itself, which admins apply, is exempt), "
        "every role policy stays inside the boundary, and pulumi-eks is given the roles it would "
        "otherwise create."
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
    roles = [r for r in resources if r.type == IAM_ROLE and not _is_the_write_role(r.props)]
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
