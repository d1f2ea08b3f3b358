"""Compare the system nodes' pinned EKS AMI release with the one AWS recommends (needs AWS credentials).

    python -m tools.ami_versions --stack prod

Read-only: one SSM GetParameter of the public parameter
`/aws/service/eks/optimized-ami/<kubernetes>/amazon-linux-2023/<arch>/standard/recommended/release_version`
(the path pulumi_aws 7.51.1 documents on `eks.NodeGroup` under "Tracking the latest EKS Node Group
AMI releases"), for the stack's Kubernetes version and architecture. Prints pinned vs current and
exits 1 when the pin is behind, so a scheduled job can flag it. Without credentials, or when AWS
refuses the call, it prints AWS's own error text and exits 2, without a traceback. Bumping stays a
reviewed edit of `systemNodeGroup.amiReleaseVersion` in the stack file (docs/upgrades.md).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tools.addon_versions import version_key
from tools.stackcli import load_config


def parameter_name(kubernetes_version: str, architecture: str) -> str:
    """The public SSM parameter holding the recommended AL2023 standard release for a version."""
    return (
        f"/aws/service/eks/optimized-ami/{kubernetes_version}/amazon-linux-2023/"
        f"{architecture}/standard/recommended/release_version"
    )


def current_release(ssm: Any, kubernetes_version: str, architecture: str) -> str:
    """The release AWS recommends today (`1.35.6-20260714`)."""
    reply = ssm.get_parameter(Name=parameter_name(kubernetes_version, architecture))
    return str(reply["Parameter"]["Value"])


def status(pinned: str | None, current: str) -> str:
    """ "" when the pin is current (or newer), "bump" when it is behind, "latest" when unpinned."""
    if pinned is None:
        return "latest"
    return "bump" if version_key(current) > version_key(pinned) else ""


def main(argv: list[str] | None = None, session: boto3.Session | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make ami-versions", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    args = parser.parse_args(argv)
    console, errors = Console(), Console(stderr=True)
    cfg = load_config(args.stack, errors)
    if cfg is None:
        return 2
    nodes = cfg.system_node_group
    if nodes.ami_family != "AL2023":
        errors.print(
            f"Pulumi.{args.stack}.yaml: systemNodeGroup.amiFamily is {nodes.ami_family}; this tool "
            "reads the AL2023 parameter only",
            highlight=False,
            soft_wrap=True,
        )
        return 2
    k8s = cfg.cluster.kubernetes_version
    ssm = (session or boto3.Session()).client("ssm", region_name=cfg.region)
    try:
        current = current_release(ssm, k8s, nodes.architecture)
    except (ClientError, BotoCoreError) as err:
        errors.print(
            f"[red]AWS refused the AMI release lookup[/]: {escape(str(err))}", highlight=False, soft_wrap=True
        )
        return 2
    pinned = nodes.ami_release_version
    state = status(pinned, current)
    table = Table(title=f"System node AMI release, Kubernetes {k8s} {nodes.architecture} ({cfg.region})")
    for column in ("stack", "pinned", "current", ""):
        table.add_column(column, no_wrap=True)
    shown = {"bump": "[yellow]bump[/]", "latest": "follows the latest", "": ""}[state]
    table.add_row(args.stack, pinned or "-", current, shown)
    console.print(table)
    return 1 if state == "bump" else 0


if __name__ == "__main__":
    sys.exit(main())
