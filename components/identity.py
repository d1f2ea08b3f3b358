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


def log_group_exists(provider: aws.Provider, name: str) -> bool:
    """Whether a CloudWatch log group of exactly this name exists (e.g. one EKS recreated).

    When it does, the program imports it, and the engine then updates it to what the program
    declares in the same deployment (pulumi/pulumi#19339, pulumi v3.174.0+). The group's own
    settings are read too (`get_log_group`, which fails when there is none, hence the list first),
    so the plan records what the import adopts and analysis/internals.py can judge the difference:
    one the provider replaces on (its class) would replace the group it just adopted.
    """
    opts = pulumi.InvokeOptions(provider=provider)
    found = aws.cloudwatch.get_log_groups(log_group_name_prefix=name, opts=opts)
    if name not in (found.log_group_names or []):
        return False
    aws.cloudwatch.get_log_group(name=name, opts=opts)
    return True
