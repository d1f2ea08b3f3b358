"""IAM: identity policies (what a role may do) and trust policies (who may become the role).

Precise, not noisy: read-only calls on "*" (Karpenter's ec2:Describe*, ecr:GetAuthorizationToken,
pricing:GetProducts) are fine; writes and data reads on "*" are not, unless a tag or ViaService
condition scopes them. KMS key policies use `kms:*` for the account root by design and are not
identity policies, so these rules do not read them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from policy import iamdoc
from policy.model import Context, Level, Resource, RuleSet, Source, bpg, checkov
from policy.props import get, items
from policy.resource_types import (
    EKS_ADDON,
    IAM_ATTACHMENTS,
    IAM_GROUP_POLICY,
    IAM_POLICY,
    IAM_ROLE,
    IAM_ROLE_POLICY,
    IAM_USER_POLICY,
    POD_IDENTITY,
)
from policy.rules_deploy import is_deploy_policy

rules = RuleSet()
M, A = Level.MANDATORY, Level.ADVISORY
IDENTITY = (IAM_ROLE, IAM_ROLE_POLICY, IAM_POLICY, IAM_USER_POLICY, IAM_GROUP_POLICY)
SENSITIVE = frozenset({"iam", "kms", "secretsmanager", "sts", "organizations"})
ADMIN_POLICIES = ("AdministratorAccess", "IAMFullAccess")
POD_TAGS = ("aws:RequestTag/kubernetes-namespace", "aws:RequestTag/kubernetes-service-account")
CLUSTER_SCOPE = ("aws:RequestTag/eks-cluster-arn", "aws:RequestTag/eks-cluster-name", "aws:SourceArn")
# Services acting for the account on a resource (confused deputy), not compute that runs as the role.
DEPUTY_SERVICES = re.compile(
    r"^(vpc-flow-logs|delivery\.logs|logs(\.[a-z0-9-]+)?|events|scheduler|sns|s3|cloudtrail|config)\.amazonaws\.com$"
)
# A Pulumi Deployments subject may wildcard only the operation after a pinned org/project/stack.
PULUMI_SUB = re.compile(r"pulumi:deploy:org:[^*?:]+:project:[^*?:]+:stack:[^*?:]+:\*")
# GitHub Actions: the `sub` claim (repo:<owner>/<repo>:ref:<ref>) is one for every workflow of a
# branch; `job_workflow_ref` names the workflow file that defines the job (AWS STS evaluates it
# since January 2026: "AWS STS supports validation of identity provider claims").
GITHUB_ISSUER = "token.actions.githubusercontent.com"
GITHUB_WORKFLOW_REF = f"{GITHUB_ISSUER}:job_workflow_ref"
WORKFLOW_REF = re.compile(r"[\w.-]+/[\w.-]+/\.github/workflows/[\w.-]+\.ya?ml@refs/(heads|tags)/[^*?]+")


def _identity_statements(typ: str, props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if typ == IAM_ROLE:
        docs = [get(p, "policy") for p in items(get(props, "inlinePolicies"))]
    else:
        docs = [get(props, "policy")]
    return [s for doc in docs for s in iamdoc.statements(doc) if iamdoc.allows(s)]


def _trust(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in iamdoc.statements(get(props, "assumeRolePolicy")) if iamdoc.allows(s)]


@rules.resource(
    "iam-no-wildcard-action",
    types=IDENTITY,
    description='No identity policy allows every action ("*") or everything-but (NotAction).',
    sources=checkov("CKV_AWS_63", "CKV_AWS_62"),
    prod=M,
    dev=M,
)
def wildcard_action(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for statement in _identity_statements(typ, props):
        if {"*", "*:*"} & set(iamdoc.actions(statement)):
            yield f'statement {get(statement, "Sid", "(no Sid)")} allows Action "*"'
        if get(statement, "NotAction") is not None:
            yield f"statement {get(statement, 'Sid', '(no Sid)')} allows NotAction (everything else)"


@rules.resource(
    "iam-no-service-wildcard",
    types=IDENTITY,
    description="No `service:*` grants; no wildcard writes on iam, kms, secretsmanager, sts, organizations.",
    sources=checkov("CKV_AWS_286", "CKV_AWS_289"),
    prod=M,
    dev=M,
)
def service_wildcard(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if is_deploy_policy(typ, props):
        return  # judged by deploy-role-least-privilege (policy/rules_deploy.py)
    for statement in _identity_statements(typ, props):
        for action in iamdoc.actions(statement):
            service, verb = iamdoc.split(action)
            if verb == "*" or (
                service in SENSITIVE and ("*" in verb or "?" in verb) and not iamdoc.is_read(action)
            ):
                yield f"{action} grants a whole family of {service} actions"


@rules.resource(
    "iam-no-unscoped-write",
    types=IDENTITY,
    description='Writes and data reads name their resources; "*" only for reads or tag-scoped statements.',
    sources=checkov("CKV_AWS_355", "CKV_AWS_290", "CKV_AWS_288"),
    prod=M,
    dev=M,
)
def unscoped_write(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if is_deploy_policy(typ, props):
        return  # judged by deploy-role-least-privilege (policy/rules_deploy.py)
    for statement in _identity_statements(typ, props):
        if "*" not in iamdoc.resources(statement) or iamdoc.has_scoping_condition(statement):
            continue
        if writes := [
            a for a in iamdoc.actions(statement) if not iamdoc.is_read(a) and a not in ("*", "*:*")
        ]:
            yield f'{", ".join(writes)} on Resource "*": name the resources or add a tag condition'


@rules.resource(
    "iam-no-admin-managed-policy",
    types=(*IAM_ATTACHMENTS, IAM_ROLE),
    description="AdministratorAccess or IAMFullAccess is attached only where the trust is very narrow.",
    sources=checkov("CKV_AWS_274"),
    prod=A,
    dev=A,
)
def admin_policy(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    arns = items(get(props, "managedPolicyArns")) if typ == IAM_ROLE else [get(props, "policyArn")]
    for arn in arns:
        if str(arn).rsplit("/", 1)[-1] in ADMIN_POLICIES:
            who = get(props, "role") or get(props, "name") or "a principal"
            yield f"{arn} is attached to {who}: anyone who can assume it administers the account"


@rules.resource(
    "iam-trust-no-public-principal",
    types=(IAM_ROLE,),
    description='No trust policy lets any AWS principal ("*") assume the role.',
    sources=checkov("CKV_AWS_60"),
    prod=M,
    dev=M,
)
def trust_public(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for statement in _trust(props):
        if iamdoc.public_principal(statement):
            yield 'the trust policy allows Principal "*"'


def _workflow_problems(statement: Mapping[str, Any]) -> Iterator[str]:
    """A GitHub trust names the workflow files whose jobs may assume the role, exactly."""
    found = [(op, v) for op, key, v in iamdoc.conditions(statement) if key.lower() == GITHUB_WORKFLOW_REF]
    if not found:
        yield (
            f"no {GITHUB_WORKFLOW_REF} condition: every workflow of the repository's branch "
            "(the same `sub`) can assume the role"
        )
    for op, values in found:
        if op != "StringEquals":
            yield f"{GITHUB_WORKFLOW_REF} is matched with {op}; name the workflow files with StringEquals"
        for value in values:
            if not WORKFLOW_REF.fullmatch(str(value)):
                yield f"{GITHUB_WORKFLOW_REF} {value} is not <owner>/<repo>/.github/workflows/<file>@<ref>"


def _subject_problems(issuer: str, statement: Mapping[str, Any]) -> Iterator[str]:
    if issuer == GITHUB_ISSUER:
        yield from _workflow_problems(statement)
    sub, aud = f"{issuer}:sub".lower(), f"{issuer}:aud".lower()
    found = [(op, values) for op, key, values in iamdoc.conditions(statement) if key.lower() == sub]
    if not any(key.lower() == aud for _, key, _ in iamdoc.conditions(statement)):
        yield f"no {issuer}:aud condition"
    if not found:
        yield f"no {issuer}:sub condition: any identity of {issuer} can assume the role"
    for op, values in found:
        if op == "StringEquals":
            continue
        if op != "StringLike":
            yield f"{issuer}:sub is matched with {op}; use StringEquals"
            continue
        for value in values:
            wild = "*" in value or "?" in value
            if wild and (issuer.startswith("oidc.eks.") or not PULUMI_SUB.fullmatch(value)):
                yield f"{issuer}:sub {value} is a wildcard; pin the subject with StringEquals"


@rules.resource(
    "iam-trust-web-identity-scoped",
    types=(IAM_ROLE,),
    description=(
        "Web-identity (OIDC) trusts pin the audience and the exact subject (service account, repo); "
        "GitHub trusts also the workflow files (job_workflow_ref)."
    ),
    sources=(
        *bpg("Security > Identity and access: scope the IRSA trust policy to the service account"),
        Source("aws-docs", "IAM User Guide: configuring a role for GitHub OIDC"),
        Source("aws-docs", "IAM User Guide: available keys for GitHub OIDC federation (job_workflow_ref)"),
    ),
    prod=M,
    dev=M,
)
def trust_web_identity(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for statement in _trust(props):
        for provider in iamdoc.principals(statement, "Federated"):
            if ":oidc-provider/" in provider:
                yield from _subject_problems(provider.split(":oidc-provider/", 1)[1], statement)


@rules.resource(
    "iam-trust-pod-identity-scoped",
    types=(IAM_ROLE,),
    description="Pod Identity trusts pin the cluster, namespace and service account through session tags.",
    sources=(
        *bpg("Security > Identity and access: EKS Pod Identities"),
        Source("aws-docs", "EKS User Guide: Pod Identity session tags (ABAC)"),
    ),
    prod=M,
    dev=M,
)
def trust_pod_identity(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for statement in _trust(props):
        if "pods.eks.amazonaws.com" not in iamdoc.principals(statement, "Service"):
            continue
        for key in POD_TAGS:
            values = iamdoc.condition_values(statement, key)
            if not values or any("*" in v or "?" in v for v in values):
                yield f"no exact StringEquals on {key}: any pod in the account may be bound to the role"
        if not any(iamdoc.condition_values(statement, key) for key in CLUSTER_SCOPE):
            yield "no StringEquals on aws:RequestTag/eks-cluster-arn: any cluster in the account may use it"


@rules.resource(
    "iam-trust-confused-deputy",
    types=(IAM_ROLE,),
    description="Roles for AWS services acting on the account's behalf check aws:SourceAccount or SourceArn.",
    sources=(Source("aws-docs", "IAM User Guide: the confused deputy problem"),),
    prod=A,
    dev=A,
)
def confused_deputy(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for statement in _trust(props):
        for service in iamdoc.principals(statement, "Service"):
            keys = {key.lower() for _, key, _ in iamdoc.conditions(statement)}
            if DEPUTY_SERVICES.match(service) and not keys & {"aws:sourceaccount", "aws:sourcearn"}:
                yield f"{service} may assume the role for any account's resources (no aws:SourceAccount)"


def _role_name(arn: Any) -> str:
    return str(arn).rsplit(":role/", 1)[-1].rsplit("/", 1)[-1]


@rules.stack(
    "iam-pod-identity-matches-trust",
    description="Each Pod Identity association binds the same namespace and service account its role trusts.",
    sources=(*bpg("Security > Identity and access: EKS Pod Identities"),),
    prod=M,
    dev=M,
)
def association_matches_trust(
    resources: Sequence[Resource], ctx: Context
) -> Iterator[tuple[str | None, str]]:
    trusts = {get(r.props, "name"): _trust(r.props) for r in resources if r.type == IAM_ROLE}
    bindings: list[tuple[Resource, Any, Any, Any]] = []
    for r in resources:
        if r.type == POD_IDENTITY:
            bindings.append(
                (r, get(r.props, "roleArn"), get(r.props, "namespace"), get(r.props, "serviceAccount"))
            )
        elif r.type == EKS_ADDON:
            for assoc in items(get(r.props, "podIdentityAssociations")):
                bindings.append((r, get(assoc, "roleArn"), None, get(assoc, "serviceAccount")))
    for resource, arn, namespace, account in bindings:
        for statement in trusts.get(_role_name(arn), []):
            if "pods.eks.amazonaws.com" not in iamdoc.principals(statement, "Service"):
                continue
            for key, bound in zip(POD_TAGS, (namespace, account), strict=True):
                trusted = iamdoc.condition_values(statement, key)
                if bound is not None and trusted is not None and bound not in trusted:
                    yield (
                        resource.urn,
                        f"binds {key.rsplit('-', 1)[-1]} {bound} but role {_role_name(arn)} trusts {trusted}",
                    )


@rules.stack(
    "iam-trust-github-workflow-one-role",
    description="No GitHub workflow file is trusted by two roles: each service's CI role trusts its files.",
    sources=(
        Source("aws-docs", "IAM User Guide: available keys for GitHub OIDC federation (job_workflow_ref)"),
    ),
    prod=M,
    dev=M,
)
def github_workflow_one_role(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[str | None, str]]:
    trusted_by: dict[str, list[Resource]] = {}
    for r in resources:
        if r.type != IAM_ROLE:
            continue
        for statement in _trust(r.props):
            for workflow in iamdoc.condition_values(statement, GITHUB_WORKFLOW_REF) or []:
                trusted_by.setdefault(str(workflow), []).append(r)
    for workflow, roles in sorted(trusted_by.items()):
        names = sorted({str(get(r.props, "name")) for r in roles})
        if len(names) > 1:
            yield roles[0].urn, f"{workflow} can assume {len(names)} roles: {', '.join(names)}"
