"""IAM policy documents shared by the components, built as plain JSON (no provider call).

`aws.iam.get_policy_document` is a provider invoke; building the JSON here keeps documents
readable in the offline plan and in tests, and costs no round trip.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

# IAM role names are limited to 64 characters.
ROLE_NAME_MAX = 64


def clip(name: str, limit: int = ROLE_NAME_MAX) -> str:
    """Clip a physical name to an AWS length limit, keeping it unique with a stable hash."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9]}-{digest}"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def service_trust(service: str, account_id: str | None = None, *, tag_session: bool = False) -> str:
    """Trust policy for an AWS service principal.

    `account_id` adds the confused-deputy guard `aws:SourceAccount`; pass it only for services
    that send that key (VPC flow logs do; EKS and EC2 do not, and the condition would then deny).
    """
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": ["sts:AssumeRole", "sts:TagSession"] if tag_session else ["sts:AssumeRole"],
    }
    if account_id:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account_id}}
    return document(statement)


def pod_identity_trust(account_id: str, cluster_arn: str, namespace: str, service_account: str) -> str:
    """Trust policy for EKS Pod Identity, bound to one service account of one cluster.

    Pod Identity tags every session with the cluster ARN, namespace and service account; the
    conditions match those tags, so no other pod, cluster or account can assume the role.
    """
    return document(
        {
            "Effect": "Allow",
            "Principal": {"Service": "pods.eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {
                "StringEquals": {
                    "aws:SourceAccount": account_id,
                    "aws:RequestTag/eks-cluster-arn": cluster_arn,
                    "aws:RequestTag/kubernetes-namespace": namespace,
                    "aws:RequestTag/kubernetes-service-account": service_account,
                }
            },
        }
    )


def irsa_trust(
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer_url: pulumi.Input[str],
    namespace: str,
    service_account: str,
) -> pulumi.Output[str]:
    """Trust policy for IRSA bound to exactly one Kubernetes service account."""

    def build(args: list[str]) -> str:
        arn, url = args
        issuer = url.removeprefix("https://")
        return document(
            {
                "Effect": "Allow",
                "Principal": {"Federated": arn},
                "Action": ["sts:AssumeRoleWithWebIdentity"],
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                        f"{issuer}:aud": "sts.amazonaws.com",
                    }
                },
            }
        )

    return pulumi.Output.all(oidc_provider_arn, oidc_issuer_url).apply(build)


def managed_policy(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"


def role_with_policies(
    name: str,
    trust: pulumi.Input[str],
    partition: str,
    managed: Sequence[str],
    parent: pulumi.Resource,
    *,
    permissions_boundary: pulumi.Input[str] | None,
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """An IAM role (physical name = logical name, clipped) with AWS-managed policies attached,
    bounded by `permissions_boundary` (the stack's boundary: components/deploy_policy.py).

    Returns the attachments too, so that consumers can `depends_on` them: a role is only usable
    once its policies are attached.
    """
    role = aws.iam.Role(
        name,
        name=clip(name),
        assume_role_policy=trust,
        permissions_boundary=permissions_boundary,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy.rsplit('/', 1)[-1]}",
            role=role.name,
            policy_arn=managed_policy(partition, policy),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for policy in managed
    ]
    return role, attachments


def pod_identity_role(
    name: str,
    *,
    account_id: str,
    cluster_name: pulumi.Input[str],
    cluster_arn: str,
    namespace: str,
    service_account: str,
    policy: pulumi.Input[str],
    parent: pulumi.Resource,
    permissions_boundary: pulumi.Input[str] | None,
) -> tuple[aws.iam.Role, aws.eks.PodIdentityAssociation]:
    """A role for one Kubernetes service account through EKS Pod Identity, with its inline policy.

    The association waits for the policy, so the pod never starts with a role that cannot act yet.
    Pass the cluster's name as the cluster's Output, so the association is created after the
    cluster (a plain string orders nothing, and EKS answers "cluster not found").
    """
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        name,
        name=clip(name),
        assume_role_policy=pod_identity_trust(account_id, cluster_arn, namespace, service_account),
        permissions_boundary=permissions_boundary,
        opts=child,
    )
    inline = aws.iam.RolePolicy(name, role=role.id, policy=policy, opts=child)
    association = aws.eks.PodIdentityAssociation(
        name,
        cluster_name=cluster_name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.arn,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[inline]),
    )
    return role, association
