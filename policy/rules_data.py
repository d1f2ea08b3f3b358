"""Data at rest: KMS keys, ECR repositories, Secrets Manager, SQS and CloudWatch log groups."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from policy import iamdoc
from policy.model import Context, Level, Resource, RuleSet, Source, bpg, checkov, cis
from policy.props import falsy, get, truthy
from policy.resource_types import (
    AWS_VPC,
    AWSX_VPC,
    ECR_LIFECYCLE,
    ECR_REPOSITORY,
    EKS_CLUSTER,
    KMS_KEY,
    KMS_KEY_POLICY,
    LOG_GROUP,
    SM_SECRET,
    SQS_QUEUE,
    SQS_QUEUE_POLICY,
)

rules = RuleSet()
M, A = Level.MANDATORY, Level.ADVISORY
STATE_WINDOWS = Source("platform", "DESIGN.md Environments (prod: 30-day KMS/secret windows)")
IMAGES = bpg("Security > Image security")


@rules.resource(
    "kms-key-rotation",
    types=(KMS_KEY,),
    description="Symmetric customer-managed KMS keys rotate automatically.",
    sources=(*checkov("CKV_AWS_7"), *bpg("Security > Data encryption and secrets management")),
    prod=M,
    dev=M,
)
def key_rotation(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    spec = get(props, "customerMasterKeySpec") or get(props, "keySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and not truthy(get(props, "enableKeyRotation")):
        yield "enableKeyRotation is not true"


@rules.resource(
    "kms-deletion-window",
    types=(KMS_KEY,),
    description="A production key waits 30 days before deletion (time to notice and cancel).",
    sources=(Source("aws-docs", "KMS Developer Guide: deleting KMS keys (waiting period)"), STATE_WINDOWS),
    prod=M,
    dev=None,
)
def deletion_window(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    days = get(props, "deletionWindowInDays", 30)  # AWS's default is 30
    if not isinstance(days, int | float) or days < 30:
        yield f"deletionWindowInDays is {days}, below 30"


@rules.resource(
    "kms-policy-no-public-principal",
    types=(KMS_KEY, KMS_KEY_POLICY),
    description='No key policy statement allows Principal "*" without a condition.',
    sources=checkov("CKV_AWS_33"),
    prod=M,
    dev=M,
)
def key_policy_public(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for statement in iamdoc.statements(get(props, "policy")):
        if (
            iamdoc.allows(statement)
            and iamdoc.public_principal(statement)
            and not get(statement, "Condition")
        ):
            yield f"statement {get(statement, 'Sid', '(no Sid)')} allows any principal to use the key"


@rules.resource(
    "ecr-immutable-tags",
    types=(ECR_REPOSITORY,),
    description="Image tags are immutable, so a deployed tag always means the same image.",
    sources=(*checkov("CKV_AWS_51"), *IMAGES),
    prod=M,
    dev=M,
)
def immutable_tags(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    mutability = get(props, "imageTagMutability", "MUTABLE")
    if not str(mutability).startswith("IMMUTABLE"):
        yield f"imageTagMutability is {mutability}"


@rules.resource(
    "ecr-scan-on-push",
    types=(ECR_REPOSITORY,),
    description="Every pushed image is scanned for vulnerabilities.",
    sources=(*checkov("CKV_AWS_163"), *cis("5.1.1")),
    prod=M,
    dev=M,
)
def scan_on_push(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if not truthy(get(props, "imageScanningConfiguration.scanOnPush")):
        yield "imageScanningConfiguration.scanOnPush is not true"


@rules.resource(
    "ecr-kms-encryption",
    types=(ECR_REPOSITORY,),
    description="Repositories are encrypted with KMS rather than the default AES256.",
    sources=checkov("CKV_AWS_136"),
    prod=M,
    dev=A,
)
def ecr_kms(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    kind = get(props, "encryptionConfigurations.0.encryptionType", "AES256")
    if not str(kind).startswith("KMS"):
        yield f"encryptionType is {kind}"


@rules.resource(
    "ecr-customer-managed-key",
    types=(ECR_REPOSITORY,),
    description="Repositories are encrypted with a customer-managed KMS key, not the AWS-managed aws/ecr.",
    sources=(Source("aws-docs", "ECR User Guide: Encryption at rest (customer managed key)"),),
    prod=M,
    dev=A,
)
def ecr_cmk(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if str(get(props, "encryptionConfigurations.0.encryptionType", "AES256")).startswith("KMS") and not get(
        props, "encryptionConfigurations.0.kmsKey"
    ):
        yield "encrypted with the AWS-managed aws/ecr key (no kmsKey)"


STATEFUL = (AWSX_VPC, AWS_VPC, EKS_CLUSTER, KMS_KEY, ECR_REPOSITORY, SM_SECRET, LOG_GROUP)


@rules.stack(
    "prod-state-protected",
    description=(
        "Prod state that cannot be recreated (VPC, cluster, keys, registries, secrets, logs) is protected."
    ),
    sources=(
        Source("platform", "DESIGN.md Environments (prod: protect)"),
        Source("pulumi-docs", "Resource options: protect"),
    ),
    prod=M,
    dev=None,
)
def state_protected(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[str | None, str]]:
    for r in resources:
        if r.type in STATEFUL and not r.protect:
            yield r.urn, f"{r.type} is not protected: a destroy or a rename deletes it"


# What holds data that cannot be recreated: kept in the account by a prod destroy.
RETAINED = (KMS_KEY, ECR_REPOSITORY, SM_SECRET, LOG_GROUP)
# Credentials, not data: a destroyed stack's Deployments agent token must not outlive it.
NOT_RETAINED_SECRETS = ("/deploy-agent-token",)


@rules.stack(
    "prod-state-retained",
    description=(
        "A prod destroy leaves the keys, registries, secrets and log groups in the account "
        "(retain_on_delete), except credentials. Checked by the offline plan only: CrossGuard "
        "does not see the option."
    ),
    sources=(
        Source("pulumi-docs", "Resource options: retainOnDelete"),
        Source("platform", "docs/retiring-a-stack.md (what prod keeps, how to remove it)"),
    ),
    prod=M,
    dev=None,
)
def state_retained(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[str | None, str]]:
    for r in resources:
        if r.type not in RETAINED or r.retain_on_delete is not False:
            continue  # not data, or unknown (CrossGuard)
        if r.type == SM_SECRET and str(get(r.props, "name") or "").endswith(NOT_RETAINED_SECRETS):
            continue
        yield r.urn, f"{r.type} is deleted with the stack: set retain_on_delete in prod"


@rules.stack(
    "ecr-lifecycle-policy",
    description="Every repository has a lifecycle policy that expires old and untagged images.",
    sources=(Source("aws-docs", "ECR User Guide: lifecycle policies"), *IMAGES),
    prod=M,
    dev=A,
)
def lifecycle_policy(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[str | None, str]]:
    covered = {get(r.props, "repository") for r in resources if r.type == ECR_LIFECYCLE}
    for repo in (r for r in resources if r.type == ECR_REPOSITORY):
        if get(repo.props, "name") not in covered:
            yield repo.urn, f"repository {get(repo.props, 'name')} has no lifecycle policy"


@rules.resource(
    "secret-kms-cmk",
    types=(SM_SECRET,),
    description="Secrets Manager secrets are encrypted with a customer-managed KMS key.",
    sources=(*checkov("CKV_AWS_149"), *cis("4.4.2")),
    prod=M,
    dev=M,
)
def secret_cmk(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    key = get(props, "kmsKeyId")
    if not key or str(key).endswith("alias/aws/secretsmanager"):
        yield "kmsKeyId is not a customer-managed key"


@rules.resource(
    "secret-recovery-window",
    types=(SM_SECRET,),
    description=(
        "A deleted production secret stays recoverable for 30 days; a credential re-issued with its "
        "owner (the agent pool's token) is deleted at once, so a rebuild can reuse its name."
    ),
    sources=(
        Source("aws-docs", "Secrets Manager User Guide: delete a secret (recovery window)"),
        STATE_WINDOWS,
    ),
    prod=M,
    dev=None,
)
def recovery_window(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if str(get(props, "name") or "").endswith(NOT_RETAINED_SECRETS):
        return  # a credential re-issued with its pool: a window would only block a rebuild
    days = get(props, "recoveryWindowInDays", 30)  # AWS's default is 30; 0 deletes at once
    if not isinstance(days, int | float) or days < 30:
        yield f"recoveryWindowInDays is {days}, below 30"


@rules.resource(
    "sqs-encryption",
    types=(SQS_QUEUE,),
    description="Queues are encrypted at rest (SSE-SQS or KMS).",
    sources=checkov("CKV_AWS_27"),
    prod=M,
    dev=M,
)
def sqs_encryption(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if not truthy(get(props, "sqsManagedSseEnabled")) and not get(props, "kmsMasterKeyId"):
        yield "neither sqsManagedSseEnabled nor kmsMasterKeyId is set"


@rules.resource(
    "sqs-tls-only",
    types=(SQS_QUEUE_POLICY,),
    description="Queue policies deny requests that do not use TLS (aws:SecureTransport false).",
    sources=(Source("aws-docs", "SQS Developer Guide: security best practices (enforce TLS)"),),
    prod=A,
    dev=A,
)
def sqs_tls(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for statement in iamdoc.statements(get(props, "policy")):
        if get(statement, "Effect") == "Deny" and any(
            key.lower() == "aws:securetransport" and any(falsy(v) for v in values)
            for _, key, values in iamdoc.conditions(statement)
        ):
            return
    yield "no statement denies requests without TLS"


@rules.resource(
    "log-group-retention",
    types=(LOG_GROUP,),
    description="Log groups set a retention period (never-expire logs cost forever).",
    sources=checkov("CKV_AWS_66"),
    prod=M,
    dev=M,
)
def log_retention(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if not get(props, "retentionInDays"):
        yield "retentionInDays is not set: logs never expire"


@rules.resource(
    "log-group-retention-one-year",
    types=(LOG_GROUP,),
    description="Logs are kept for at least a year (audit and incident timelines).",
    sources=checkov("CKV_AWS_338"),
    prod=M,
    dev=A,
)
def log_retention_year(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    days = get(props, "retentionInDays")
    if isinstance(days, int | float) and 0 < days < 365:
        yield f"retentionInDays is {days}, below 365"


@rules.resource(
    "log-group-kms",
    types=(LOG_GROUP,),
    description="Log groups are encrypted with a customer-managed KMS key.",
    sources=checkov("CKV_AWS_158"),
    prod=M,
    dev=M,
)
def log_kms(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if not get(props, "kmsKeyId"):
        yield "kmsKeyId is not set"
