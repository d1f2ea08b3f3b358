"""The deploy role's least-privilege policy and the stack's permissions boundary, built from
platform/deploy-role.yaml (no provider call), and the one function that creates the boundary.

Outside IAM the role acts on the stack's own resources (by name, or by the stack's tag where ARNs
are generated); what cannot be scoped stays in the data file with the reason (`why`). In IAM it
may create or change a role only with the stack's permissions boundary attached (the
`iam:PermissionsBoundary` condition), never remove a boundary or change the boundary policy, and
never change the identity project's resources inside its reach: its own role (permissions, trust),
any other `<prefix>-deployments-*` role, the agent pool's token secret and its key (an admin
changes those; docs/deploy-role.md). The
boundary is everything a role of the stack may ever do: the same reach outside IAM plus what the
platform's roles need beyond it, and of IAM only PassRole to EC2 and reads. So a role the deploy
role creates, and any instance or pod running as it, can do no more than the deploy role itself.
"""

from __future__ import annotations

import fnmatch
import json
import string
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.identity import AwsIdentity

# IAM's quota on a role's inline policies, all of them together, whitespace excluded
# (IAM User Guide, "IAM and AWS STS quotas": role policy size 10,240 characters).
INLINE_POLICY_MAX = 10_240
# The same quota for a customer managed policy (the boundary): 6,144 characters.
MANAGED_POLICY_MAX = 6_144
# What the role may do to the identity project's roles (itself and any `<prefix>-deployments-*`
# role an admin creates) and to the boundary policy: nothing. Every IAM action is denied on
# them: the writes that would widen the role a push runs as (PutRolePolicy, AttachRolePolicy,
# UpdateAssumeRolePolicy, DeleteRole, the boundary's CreatePolicyVersion and SetDefaultPolicyVersion:
# IAM User Guide, "Permissions boundaries for IAM entities", the delegation example's
# DenyPermBoundaryIAMPolicyAlteration), PassRole, tagging, and the reads no run makes (the platform
# derives their ARNs, it never reads them). One wildcard instead of the list: the policy is near
# IAM's 10,240-character quota.
IDENTITY_IAM_DENY = "iam:*"
# What the boundary leaves of the agent token secret and its key: the two reads the agent hosts'
# role (bounded) boots with (components/agent.py). Every other action on them is denied, by
# NotAction (IAM User Guide, "IAM JSON policy elements: NotAction": with Deny, every action not
# listed; the Resource keeps it to the token and its key).
AGENT_TOKEN_READ = "secretsmanager:GetSecretValue"  # noqa: S105 - an action, not a secret
AGENT_TOKEN_KEY_READ = "kms:Decrypt"  # noqa: S105
# The key aliases' actions (the token key's alias is under the stack's prefix, OwnKeyAliases).
ALIAS_ACTIONS = ("kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias")
# The only IAM actions the boundary may allow (policy/rules_deploy.py fails any other): a role
# of the stack reads instance profiles and passes the node role to EC2 (no load balancer, so no
# Elastic Load Balancing service-linked role: platform/deploy-role.yaml `withheld`). No IAM write,
# so no role of the stack changes a boundary or a role.
BOUNDARY_IAM = frozenset({"iam:GetInstanceProfile", "iam:ListInstanceProfiles", "iam:PassRole"})
# The placeholders a statement's resources and condition values may use (StackScope.fill).
PLACEHOLDERS = frozenset({"partition", "account", "region", "project", "stack", "prefix", "cluster"})
# The identity project's names after the prefix: its roles and the deploy role's managed policy
# (`<prefix>-deployments-*`), which the deploy role may never change.
IDENTITY_INFIX = "-deployments-"
SERVICES_SUFFIX = f"{IDENTITY_INFIX}services"
# The boundary policy's name after the prefix (`<prefix>-boundary`): deterministic, so its ARN is
# known before it exists (the identity layer and the platform stack compute the same ARN).
BOUNDARY_SUFFIX = "-boundary"


class Statement(BaseModel):
    """One statement of the data file (Allow, or Deny under `denies`); `why` is required when it
    reaches "*"."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    sid: str = Field(pattern=r"^[A-Za-z0-9]+$")
    actions: tuple[str, ...] = Field(min_length=1)
    # Exactly one of the two: the resources it applies to, or (a Deny only) every resource but
    # these (IAM JSON policy elements: NotResource).
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = Field(default=(), alias="notResources")
    condition: dict[str, dict[str, str | tuple[str, ...]]] | None = None
    why: str | None = None
    # False: the boundary does not copy this statement of the role (boundary.extra holds a
    # broader one the platform's roles need).
    boundary: bool = True

    @model_validator(mode="after")
    def _resources_or_not_resources(self) -> Statement:
        if bool(self.resources) == bool(self.not_resources):
            raise ValueError(f"statement {self.sid}: give exactly one of `resources` and `notResources`")
        return self

    @model_validator(mode="after")
    def _known_placeholders(self) -> Statement:
        values = [*self.resources, *self.not_resources]
        for entries in (self.condition or {}).values():
            values.extend(entries)  # keys too: aws:ResourceTag/kubernetes.io/cluster/{cluster}
            for v in entries.values():
                values.extend([v] if isinstance(v, str) else v)
        used = {name for v in values for _, name, _, _ in string.Formatter().parse(v) if name is not None}
        if unknown := sorted(used - PLACEHOLDERS):
            raise ValueError(
                f"statement {self.sid} uses {', '.join('{' + u + '}' for u in unknown)}: "
                f"the placeholders are {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}"
            )
        return self

    @model_validator(mode="after")
    def _unscoped_needs_a_reason(self) -> Statement:
        if "*" in self.resources and not (self.why or "").strip():
            raise ValueError(
                f'statement {self.sid} grants {", ".join(self.actions)} on "*": say `why` it '
                "cannot be scoped to the stack's names or tags"
            )
        return self


class IamGrants(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    roles: tuple[str, ...]
    bounded_roles: tuple[str, ...] = Field(alias="boundedRoles", min_length=1)
    policies: tuple[str, ...]
    instance_profiles: tuple[str, ...] = Field(alias="instanceProfiles")
    oidc_providers: tuple[str, ...] = Field(alias="oidcProviders")
    oidc_hosts: tuple[str, ...] = Field(alias="oidcHosts")
    managed_policies: tuple[str, ...] = Field(alias="managedPolicies")
    pass_role_to: tuple[str, ...] = Field(alias="passRoleTo")
    service_linked_roles: tuple[str, ...] = Field(alias="serviceLinkedRoles")


class BoundaryData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    extra: tuple[Statement, ...]
    denies: tuple[Statement, ...]
    # Every action of each attachable AWS managed policy, and what the boundary withholds of them
    # on purpose (an action pattern -> the reason).
    managed_policy_actions: dict[str, tuple[str, ...]] = Field(alias="managedPolicyActions")
    withheld: dict[str, str]


class DeployRoleData(BaseModel):
    """platform/deploy-role.yaml: which IAM prefixes each managed type needs, and the grants."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    policy_name: str = Field(alias="policyName", min_length=1, max_length=128)
    types: dict[str, tuple[str, ...]]
    invokes: dict[str, tuple[str, ...]]
    # Provider calls that name no resource, with the IAM actions they make: each must be allowed on
    # "*" (a grant on the stack's own ARNs does not cover a list call).
    unscoped_calls: dict[str, tuple[str, ...]] = Field(alias="unscopedCalls")
    statements: tuple[Statement, ...]
    denies: tuple[Statement, ...]
    iam: IamGrants
    boundary: BoundaryData

    @model_validator(mode="after")
    def _not_resources_only_deny(self) -> DeployRoleData:
        if allows := [s.sid for s in (*self.statements, *self.boundary.extra) if s.not_resources]:
            raise ValueError(
                f"statements {', '.join(allows)}: notResources only in a Deny (denies, boundary.denies); "
                "an Allow of every resource but a few is not least privilege"
            )
        return self

    @model_validator(mode="after")
    def _managed_policies_are_described(self) -> DeployRoleData:
        attachable, described = set(self.iam.managed_policies), set(self.boundary.managed_policy_actions)
        if attachable != described:
            raise ValueError(
                "boundary.managedPolicyActions must describe exactly iam.managedPolicies: "
                f"missing {sorted(attachable - described)}, extra {sorted(described - attachable)}"
            )
        return self


@dataclass(frozen=True, kw_only=True)
class StackScope:
    """The names the stack's resources carry: what the policies are scoped to."""

    partition: str
    account_id: str
    region: str
    project: str
    stack: str
    # The stack's physical-name prefix (`<project>-<stack>`).
    prefix: str
    cluster_name: str

    def fill(self, text: str) -> str:
        return text.format(
            partition=self.partition,
            account=self.account_id,
            region=self.region,
            project=self.project,
            stack=self.stack,
            prefix=self.prefix,
            cluster=self.cluster_name,
        )

    @property
    def iam_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}"


@dataclass(frozen=True, kw_only=True)
class DeployIdentity:
    """The identity project's resources of a stack (components/deploy_roles.py kept_off) that lie
    inside the deploy role's reach (its prefix, its tag) and that it must never change: a push could
    otherwise widen its own role, or read or replace the agent pool's token. Every role named
    `<prefix>-deployments-*` is denied by that pattern (identity_denies), this one by name too where
    a clipped name escapes it."""

    # The deploy role itself: the kubeconfig assumes it again.
    role_arn: str
    # The agent pool's token secret (name) and its own key (alias, `alias/...`).
    token_secret_name: str
    token_key_alias: str


def stack_scope(
    identity: AwsIdentity, *, region: str, project: str, stack: str, prefix: str, cluster_name: str
) -> StackScope:
    """The scope of a stack in `identity`'s account and the stack's `region`: the identity project
    and the platform stack compute the same one, so they agree on every derived ARN."""
    return StackScope(
        partition=identity.partition,
        account_id=identity.account_id,
        region=region,
        project=project,
        stack=stack,
        prefix=prefix,
        cluster_name=cluster_name,
    )


def boundary_arn(scope: StackScope) -> str:
    """The boundary policy's ARN (`arn:<partition>:iam::<account>:policy/<prefix>-boundary`)."""
    return f"{scope.iam_arn}:policy/{scope.prefix}{BOUNDARY_SUFFIX}"


def _iam(actions: tuple[str, ...] | list[str]) -> list[str]:
    return [f"iam:{a}" for a in sorted(actions)]


def _statement(s: Statement, scope: StackScope, effect: str = "Allow") -> dict[str, Any]:
    out: dict[str, Any] = {
        "Sid": s.sid,
        "Effect": effect,
        "Action": list(s.actions),
    }
    if s.not_resources:
        out["NotResource"] = [scope.fill(r) for r in s.not_resources]
    else:
        out["Resource"] = [scope.fill(r) for r in s.resources]
    if s.condition:
        out["Condition"] = {
            op: {
                scope.fill(k): scope.fill(v) if isinstance(v, str) else [scope.fill(x) for x in v]
                for k, v in kv.items()
            }
            for op, kv in s.condition.items()
        }
    return out


def _document(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))


def services_policy_name(prefix: str) -> str:
    """The deploy role's managed policy of grants outside IAM (`<prefix>-deployments-services`):
    under `<prefix>-deployments-`, whose policies the role's own Deny keeps it from changing."""
    return f"{prefix}{SERVICES_SUFFIX}"


def services_policy(data: DeployRoleData, scope: StackScope) -> str:
    """The deploy role's grants outside IAM (the data file's `statements`), as a customer managed
    policy attached to the role (up to 6,144 characters). The inline policy (deploy_policy) keeps
    every IAM grant and every Deny, which apply to these grants too (IAM evaluates all of a role's
    policies together): the two together fit a long stack name and region where one inline policy
    (10,240 characters for all of a role's inline policies) no longer did."""
    return _document([_statement(s, scope) for s in data.statements])


def deploy_policy(data: DeployRoleData, scope: StackScope, *, identity: DeployIdentity) -> str:
    """The inline policy of the deploy role (`identity.role_arn`) of the stack `scope`: its IAM
    grants and every Deny; the grants outside IAM are services_policy's."""
    role_arn = identity.role_arn
    iam = data.iam
    arn = scope.iam_arn
    own = [f"{arn}:role/{scope.prefix}-*"]
    bounded = {"StringEquals": {"iam:PermissionsBoundary": boundary_arn(scope)}}
    statements: list[dict[str, Any]] = [
        {"Sid": "OwnRoles", "Effect": "Allow", "Action": _iam(iam.roles), "Resource": own},
        {
            "Sid": "OwnRolesBounded",
            "Effect": "Allow",
            "Action": _iam(tuple(set(iam.bounded_roles) - {"AttachRolePolicy"})),
            "Resource": own,
            "Condition": bounded,
        },
        {
            "Sid": "AttachKnownPolicies",
            "Effect": "Allow",
            "Action": "iam:AttachRolePolicy",
            "Resource": own,
            "Condition": {
                **bounded,
                "ArnLike": {
                    "iam:PolicyARN": [
                        *(f"arn:{scope.partition}:iam::aws:policy/{p}" for p in sorted(iam.managed_policies)),
                        f"{arn}:policy/{scope.prefix}-*",
                    ]
                },
            },
        },
        {
            "Sid": "OwnPolicies",
            "Effect": "Allow",
            "Action": _iam(iam.policies),
            "Resource": [f"{arn}:policy/{scope.prefix}-*"],
        },
        {
            "Sid": "OwnInstanceProfiles",
            "Effect": "Allow",
            "Action": _iam(iam.instance_profiles),
            "Resource": [f"{arn}:instance-profile/{scope.prefix}-*"],
        },
        {
            "Sid": "OidcProviders",
            "Effect": "Allow",
            "Action": _iam(iam.oidc_providers),
            "Resource": [f"{arn}:oidc-provider/{h.format(region=scope.region)}" for h in iam.oidc_hosts],
        },
        {
            "Sid": "PassOwnRoles",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": own,
            "Condition": {"StringEquals": {"iam:PassedToService": sorted(iam.pass_role_to)}},
        },
        {
            "Sid": "ServiceLinkedRoles",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": f"{arn}:role/aws-service-role/*",
            "Condition": {"StringEquals": {"iam:AWSServiceName": sorted(iam.service_linked_roles)}},
        },
        # The kubeconfig's `aws eks get-token --role-arn` assumes this role again, and nothing else.
        {"Sid": "AssumeItself", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn},
        *identity_denies(scope, identity),
        *(_statement(s, scope, "Deny") for s in data.denies),
        # No role of the stack loses its boundary, and the boundary itself never changes: only an
        # admin applies a change to it (docs/deploy-role.md).
        {
            "Sid": "KeepBoundaries",
            "Effect": "Deny",
            "Action": "iam:DeleteRolePermissionsBoundary",
            "Resource": "*",
        },
    ]
    return _document(statements)


def identity_denies(
    scope: StackScope, identity: DeployIdentity, *, in_boundary: bool = False
) -> list[dict[str, Any]]:
    """The identity project's resources inside the stack's reach, denied: the deploy role itself
    (and any role named `<prefix>-deployments-*`), the pool's token secret and its key, and the
    boundary policy. Both the deploy role's policy and the boundary carry them: the
    deploy role may PutRolePolicy on any bounded role of the stack (the agent hosts' role, whose
    user data it controls), and the boundary's own grants (`secretsmanager:*` on `<prefix>/*`,
    `kms:*` on the stack's tagged keys, PassRole on `<prefix>-*`) reach the token, its key and the
    identity roles. `in_boundary` leaves the agent hosts' two reads of the token (AGENT_TOKEN_READ,
    AGENT_TOKEN_KEY_READ: the deploy role, which writes the hosts' user data, could read it through
    them anyway), and drops what the boundary never allows in the first place (its only IAM
    allows are BOUNDARY_IAM; the pack fails any other, policy/rules_deploy.py): of the identity
    roles only PassRole is denied, the boundary policy needs no Deny of its own, and the token key's
    alias none (the boundary allows no alias action). The boundary is
    a managed policy, held to 6,144 characters (MANAGED_POLICY_MAX)."""
    token, key = (
        ({"NotAction": AGENT_TOKEN_READ}, {"NotAction": AGENT_TOKEN_KEY_READ})
        if in_boundary
        else ({"Action": "secretsmanager:*"}, {"Action": "kms:*"})
    )
    role_actions = "iam:PassRole" if in_boundary else IDENTITY_IAM_DENY
    arn = scope.iam_arn
    secrets = f"arn:{scope.partition}:secretsmanager:{scope.region}:{scope.account_id}"
    kms = f"arn:{scope.partition}:kms:{scope.region}:{scope.account_id}"
    denies: list[dict[str, Any]] = [
        {
            "Sid": "NotTheDeployIdentity",
            "Effect": "Deny",
            "Action": role_actions,
            # Any role an admin creates under `<prefix>-deployments-`, and the deploy role by name
            # only where its clipped name escapes the pattern: the policy is near IAM's
            # 10,240-character quota, and a longer stack name repeats in every ARN.
            "Resource": sorted(
                {
                    pattern := f"{arn}:role/{scope.prefix}{IDENTITY_INFIX}*",
                    *([] if fnmatch.fnmatchcase(identity.role_arn, pattern) else [identity.role_arn]),
                }
            ),
        },
        {
            "Sid": "NotTheAgentToken",
            "Effect": "Deny",
            **token,
            "Resource": f"{secrets}:secret:{identity.token_secret_name}-*",
        },
        {
            "Sid": "NotTheAgentTokenKey",
            "Effect": "Deny",
            **key,
            "Resource": f"{kms}:key/*",
            "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": identity.token_key_alias}},
        },
    ]
    if in_boundary:
        # The boundary allows no alias action (OwnKeyAliases is the deploy role's alone) and no
        # IAM action on a policy: neither Deny below would stop anything there.
        return denies
    return [
        *denies,
        {
            "Sid": "NotTheAgentTokenKeyAlias",
            "Effect": "Deny",
            "Action": list(ALIAS_ACTIONS),
            "Resource": f"{kms}:{identity.token_key_alias}",
        },
        {
            # The boundary, and the deploy role's own managed policy
            # (`<prefix>-deployments-services`) with any other under that name.
            "Sid": "KeepTheBoundaryPolicy",
            "Effect": "Deny",
            "Action": IDENTITY_IAM_DENY,
            "Resource": [boundary_arn(scope), f"{arn}:policy/{scope.prefix}{IDENTITY_INFIX}*"],
        },
    ]


def boundary_policy(data: DeployRoleData, scope: StackScope, *, identity: DeployIdentity) -> str:
    """The stack's permissions boundary: the most any role the stack creates may ever do, never
    the identity project's resources (identity_denies). Of IAM it allows only BOUNDARY_IAM, so no
    role of the stack can remove its boundary or change the boundary policy: that needs no Deny
    (an action the boundary does not allow is denied; IAM User Guide, "Permissions boundaries for
    IAM entities", the effective permissions are the intersection)."""
    statements: list[dict[str, Any]] = [
        *(_statement(s, scope) for s in (*data.statements, *data.boundary.extra) if s.boundary),
        *(_statement(s, scope, "Deny") for s in data.boundary.denies),
        *identity_denies(scope, identity, in_boundary=True),
    ]
    return _document(statements)


def create_boundary(
    data: DeployRoleData, scope: StackScope, *, identity: DeployIdentity, opts: pulumi.ResourceOptions
) -> aws.iam.Policy:
    """The boundary as a customer managed policy named `<prefix>-boundary` (ARN: boundary_arn).

    One call, no component of its own: the identity project creates it next to the deploy role
    (components/deploy_roles.py), applied by admins; the platform stack only derives its ARN, so
    the deploy role never creates or changes the boundary it is held to.
    """
    return aws.iam.Policy(
        f"{scope.prefix}{BOUNDARY_SUFFIX}",
        name=f"{scope.prefix}{BOUNDARY_SUFFIX}",
        description=f"Permissions boundary of every role {scope.prefix} creates (docs/deploy-role.md)",
        policy=boundary_policy(data, scope, identity=identity),
        opts=opts,
    )


def policy_sizes(
    data: DeployRoleData, scope: StackScope, *, identity: DeployIdentity
) -> dict[str, tuple[int, int]]:
    """Each policy of the stack's deploy identity: its size as IAM counts it (whitespace excluded)
    and IAM's quota for it. `make new-stack` refuses a name that does not fit (a stack name and its
    region repeat in every ARN), before anything is written."""
    docs = {
        f"the deploy role's inline policy {data.policy_name}": (
            deploy_policy(data, scope, identity=identity),
            INLINE_POLICY_MAX,
        ),
        f"the deploy role's managed policy {services_policy_name(scope.prefix)}": (
            services_policy(data, scope),
            MANAGED_POLICY_MAX,
        ),
        f"the permissions boundary {scope.prefix}{BOUNDARY_SUFFIX}": (
            boundary_policy(data, scope, identity=identity),
            MANAGED_POLICY_MAX,
        ),
    }
    return {name: (len("".join(text.split())), limit) for name, (text, limit) in docs.items()}
