"""Facts about the AWS account and region the stack deploys into, read once per run."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True, kw_only=True)
class AwsIdentity:
    account_id: str
    partition: str
    region: str
    dns_suffix: str
    availability_zones: tuple[str, ...]

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )


def lookup(provider: aws.Provider) -> AwsIdentity:
    """Ask the provider (or, offline, the mock engine) for the account, partition and AZs."""
    opts = pulumi.InvokeOptions(provider=provider)
    caller = aws.get_caller_identity(opts=opts)
    partition = aws.get_partition(opts=opts)
    region = aws.get_region(opts=opts)
    zones = aws.get_availability_zones(
        state="available",
        filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
        opts=opts,
    )
    return AwsIdentity(
        account_id=caller.account_id,
        partition=partition.partition,
        region=region.region,
        dns_suffix=partition.dns_suffix,
        availability_zones=tuple(sorted(zones.names)),
    )


@dataclass(frozen=True, kw_only=True)
class Existing:
    """A fixed-name resource the account already holds, e.g. one a destroy retained or EKS recreated."""

    # What `import_` takes for its type: the name, or for a secret its ARN (the ID the provider sets
    # on create: terraform-provider-aws internal/service/secretsmanager/secret.go `d.SetId(ARN)`).
    import_id: str
    # The KMS key that encrypts what it holds, for a type that cannot change it in place
    # (an ECR repository's encryption_configuration is ForceNew: internal/service/ecr/repository.go).
    kms_key_arn: str | None = None


def _log_group(name: str, opts: pulumi.InvokeOptions) -> Existing | None:
    found = aws.cloudwatch.get_log_groups(log_group_name_prefix=name, opts=opts)
    if name not in (found.log_group_names or []):
        return None
    # `get_log_group` fails when there is none, hence the list first.
    aws.cloudwatch.get_log_group(name=name, opts=opts)
    return Existing(import_id=name)


def _repository(name: str, opts: pulumi.InvokeOptions) -> Existing | None:
    if name not in (aws.ecr.get_repositories(opts=opts).names or []):
        return None
    held = aws.ecr.get_repository(name=name, opts=opts)
    keys = [c.kms_key for c in held.encryption_configurations or [] if c.kms_key]
    return Existing(import_id=name, kms_key_arn=keys[0] if keys else None)


def _secret(name: str, opts: pulumi.InvokeOptions) -> Existing | None:
    # ListSecrets leaves out secrets scheduled for deletion, and the provider reads one as not found
    # (secret.go findSecretByID: `DeletedDate != nil` -> NotFound), so such a secret is never
    # adopted: the create then fails "already scheduled for deletion" (analysis/prerequisites.py
    # reserved_names says so before it happens). The name filter matches prefixes: compare exactly.
    found = aws.secretsmanager.get_secrets(
        filters=[aws.secretsmanager.GetSecretsFilterArgs(name="name", values=[name])], opts=opts
    )
    if name not in (found.names or []):
        return None
    return Existing(import_id=aws.secretsmanager.get_secret(name=name, opts=opts).arn)


_FINDERS = {
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:ecr/repository:Repository": _repository,
    "aws:secretsmanager/secret:Secret": _secret,
}


def existing(type_: str, name: str, opts: pulumi.InvokeOptions) -> Existing | None:
    """The resource of this type and exact name the account already holds, if any.

    A destroy leaves what is `retain_on_delete` (and EKS recreates its control-plane log group), so
    the next `up` of the same stack must adopt it or fail on the name (ResourceAlreadyExistsException,
    RepositoryAlreadyExistsException, ResourceExistsException). The program imports what this finds,
    and the engine then updates it to what the program declares in the same deployment
    (pulumi/pulumi#19339, pulumi v3.174.0+). The settings are read as well, so the plan records what
    the import adopts and analysis/internals.py can judge the difference: one the provider replaces on
    would replace what it just adopted. Components pass `InvokeOptions(parent=self)`: the invoke
    then uses the component's provider.
    """
    return _FINDERS[type_](name, opts)


def log_group_exists(provider: aws.Provider, name: str) -> bool:
    """Whether a CloudWatch log group of exactly this name exists (e.g. one EKS recreated)."""
    return (
        existing("aws:cloudwatch/logGroup:LogGroup", name, pulumi.InvokeOptions(provider=provider))
        is not None
    )
