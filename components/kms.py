"""A customer-managed KMS key for the platform's control-plane secrets and log groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import document
from components.identity import AwsIdentity


@dataclass(frozen=True, kw_only=True)
class EncryptionKeyArgs:
    identity: AwsIdentity
    description: str
    # Log groups (name patterns) whose data CloudWatch Logs may encrypt with this key (none: no
    # service statement; IAM policies of the key's users grant use through the account).
    log_group_patterns: tuple[str, ...]
    deletion_window_days: int
    protect: bool


class EncryptionKey(pulumi.ComponentResource):
    """A symmetric KMS key with yearly rotation and a least-privilege key policy.

    Guarantees: rotation on; the key policy lets the account's IAM policies grant use (the AWS
    default, so no principal is hard-wired) and lets CloudWatch Logs use it only for the listed
    log groups of this account and region; a deletion window (30 days in prod), and `protect`
    and `retain_on_delete` on prod (a destroyed stack leaves the key, so nothing it encrypted
    becomes unreadable; the destroy guide says how to retire it). It does not grant any role use
    of the key: each consumer's role does that.
    """

    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(self, name: str, args: EncryptionKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:kms:EncryptionKey", name, None, opts)
        ident = args.identity
        statements: list[dict[str, Any]] = [
            {
                "Sid": "AccountAdministersAndDelegatesThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{ident.partition}:iam::{ident.account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ]
        if args.log_group_patterns:
            statements.append(
                {
                    "Sid": "CloudWatchLogsForThePlatformLogGroups",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{ident.region}.{ident.dns_suffix}"},
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "ArnLike": {
                            "kms:EncryptionContext:aws:logs:arn": [
                                ident.arn("logs", f"log-group:{p}") for p in args.log_group_patterns
                            ]
                        }
                    },
                },
            )
        policy = document(*statements)
        key = aws.kms.Key(
            f"{name}-key",
            description=args.description,
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=args.deletion_window_days,
            policy=policy,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{name}",
            target_key_id=key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key_arn = key.arn
        self.key_id = key.key_id
        self.register_outputs({"key_arn": self.key_arn, "key_id": self.key_id})
