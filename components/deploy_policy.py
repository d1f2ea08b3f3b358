"""The deploy role's least-privilege policy, built from platform/deploy-role.yaml (no provider call).

Whole services the stack manages get `<service>:*` (EC2, EKS, KMS... create resources with
generated IDs, so there is no name to scope to). IAM never does: roles, policies and instance
profiles only under the stack's name prefix, OIDC providers by their issuer, `iam:PassRole` only
to the listed services, service-linked roles only for the listed services, and the role may not
rewrite its own permissions or trust (a human admin changes those; docs/deploy-role.md).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# IAM's quota on a role's inline policies, all of them together, whitespace excluded
# (IAM User Guide, "IAM and AWS STS quotas": role policy size 10,240 characters).
INLINE_POLICY_MAX = 10_240
# What the role must never modify on itself: a push to the deploy branch could otherwise widen
# the role it runs as.
SELF_DENY = (
    "AttachRolePolicy",
    "DeleteRole",
    "DeleteRolePermissionsBoundary",
    "DeleteRolePolicy",
    "DetachRolePolicy",
    "PutRolePermissionsBoundary",
    "PutRolePolicy",
    "UpdateAssumeRolePolicy",
)


class IamGrants(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    roles: tuple[str, ...]
    policies: tuple[str, ...]
    instance_profiles: tuple[str, ...] = Field(alias="instanceProfiles")
    oidc_providers: tuple[str, ...] = Field(alias="oidcProviders")
    oidc_hosts: tuple[str, ...] = Field(alias="oidcHosts")
    managed_policies: tuple[str, ...] = Field(alias="managedPolicies")
    pass_role_to: tuple[str, ...] = Field(alias="passRoleTo")
    service_linked_roles: tuple[str, ...] = Field(alias="serviceLinkedRoles")


class DeployRoleData(BaseModel):
    """platform/deploy-role.yaml: which IAM prefixes each managed type needs, and the grants."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    policy_name: str = Field(alias="policyName", min_length=1, max_length=128)
    types: dict[str, tuple[str, ...]]
    invokes: dict[str, tuple[str, ...]]
    services: tuple[str, ...]
    reads: dict[str, str]
    iam: IamGrants


def _iam(actions: tuple[str, ...]) -> list[str]:
    return [f"iam:{a}" for a in sorted(actions)]


def deploy_policy(
    data: DeployRoleData, *, partition: str, account_id: str, region: str, prefix: str, role_arn: str
) -> str:
    """The inline policy of the deploy role `role_arn` of the stack whose physical names start `prefix`-."""
    iam = data.iam
    arn = f"arn:{partition}:iam::{account_id}"
    own = [f"{arn}:role/{prefix}-*"]
    reads: dict[str, list[str]] = {}
    for action, resource in sorted(data.reads.items()):
        reads.setdefault(resource.format(partition=partition, region=region), []).append(action)
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ManagedServices",
            "Effect": "Allow",
            "Action": [f"{s}:*" for s in sorted(data.services)],
            "Resource": "*",
        },
        *(
            {"Sid": f"Read{i}", "Effect": "Allow", "Action": actions, "Resource": resource}
            for i, (resource, actions) in enumerate(sorted(reads.items()))
        ),
        {
            "Sid": "OwnRoles",
            "Effect": "Allow",
            "Action": _iam(tuple(set(iam.roles) - {"AttachRolePolicy"})),
            "Resource": own,
        },
        {
            "Sid": "AttachKnownPolicies",
            "Effect": "Allow",
            "Action": "iam:AttachRolePolicy",
            "Resource": own,
            "Condition": {
                "ArnLike": {
                    "iam:PolicyARN": [
                        *(f"arn:{partition}:iam::aws:policy/{p}" for p in sorted(iam.managed_policies)),
                        f"{arn}:policy/{prefix}-*",
                    ]
                }
            },
        },
        {
            "Sid": "OwnPolicies",
            "Effect": "Allow",
            "Action": _iam(iam.policies),
            "Resource": [f"{arn}:policy/{prefix}-*"],
        },
        {
            "Sid": "OwnInstanceProfiles",
            "Effect": "Allow",
            "Action": _iam(iam.instance_profiles),
            "Resource": [f"{arn}:instance-profile/{prefix}-*"],
        },
        {
            "Sid": "OidcProviders",
            "Effect": "Allow",
            "Action": _iam(iam.oidc_providers),
            "Resource": [f"{arn}:oidc-provider/{h.format(region=region)}" for h in iam.oidc_hosts],
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
        {"Sid": "NotItself", "Effect": "Deny", "Action": _iam(SELF_DENY), "Resource": role_arn},
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))
