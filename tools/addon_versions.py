"""Compare the pinned EKS add-on versions with the newest AWS offers (needs AWS credentials).

    python -m tools.addon_versions --stack dev

Read-only (boto3 `eks.describe_addon_versions`, paginated): prints a table and exits 1 when a pin
is behind, so a scheduled job can flag it. Without credentials, or when AWS refuses the call, it
prints AWS's own error text and exits 2, without a traceback. Bumping stays a reviewed edit of
platform/eks-addons.yaml.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stacks.data import addon_versions
from tools.stackcli import load_config


def version_key(version: str) -> tuple[int, ...]:
    """Order EKS add-on versions (`v1.21.1-eksbuild.2`) by their numbers, build number last."""
    return tuple(int(n) for n in re.findall(r"\d+", version))


def newest(eks: Any, addon: str, kubernetes_version: str) -> str | None:
    """The newest version of `addon` that AWS offers for `kubernetes_version`, or None if none."""
    versions = [
        v["addonVersion"]
        for page in eks.get_paginator("describe_addon_versions").paginate(
            addonName=addon, kubernetesVersion=kubernetes_version
        )
        for entry in page["addons"]
        if entry["addonName"] == addon
        for v in entry["addonVersions"]
    ]
    return max(versions, key=version_key) if versions else None


def compare(eks: Any, kubernetes_version: str, pins: dict[str, str]) -> list[tuple[str, str, str | None]]:
    """(add-on, pinned, newest) for every pin, sorted by add-on name."""
    return [(addon, pins[addon], newest(eks, addon, kubernetes_version)) for addon in sorted(pins)]


def main(argv: list[str] | None = None, session: boto3.Session | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make addon-versions", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    args = parser.parse_args(argv)
    console, errors = Console(), Console(stderr=True)
    cfg = load_config(args.stack, errors)
    if cfg is None:
        return 2
    k8s = cfg.cluster.kubernetes_version
    eks = (session or boto3.Session()).client("eks", region_name=cfg.region)
    try:
        rows = compare(eks, k8s, addon_versions(k8s))
    except (ClientError, BotoCoreError) as err:
        errors.print(
            f"[red]AWS refused the add-on lookup[/]: {escape(str(err))}", highlight=False, soft_wrap=True
        )
        return 2
    table = Table(title=f"EKS add-ons for Kubernetes {k8s} ({cfg.region})")
    for column in ("add-on", "pinned", "newest", ""):
        table.add_column(column, no_wrap=True)
    behind = 0
    for addon, pinned, latest in rows:
        if latest is None:
            status = "[red]not offered[/]"
        elif version_key(latest) > version_key(pinned):
            status = "[yellow]bump[/]"
        else:
            status = ""
        behind += bool(status)
        table.add_row(addon, pinned, latest or "-", status)
    console.print(table)
    return 1 if behind else 0


if __name__ == "__main__":
    sys.exit(main())
