"""Compare the pinned EKS add-on versions with the newest AWS offers (needs the AWS CLI + credentials).

    python -m tools.addon_versions --stack dev

Read-only: prints a table and exits 1 when a pin is behind, so a scheduled job can flag it.
Bumping stays a reviewed edit of platform/eks-addons.yaml.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

from rich.console import Console
from rich.table import Table

from stacks.config import PlatformConfig, validate
from stacks.data import addon_versions
from tools.mocks import project_name, stack_config


def newest(aws_cli: str, addon: str, kubernetes_version: str, region: str) -> str:
    out = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [
            aws_cli,
            "eks",
            "describe-addon-versions",
            "--region",
            region,
            "--addon-name",
            addon,
            "--kubernetes-version",
            kubernetes_version,
            "--output",
            "json",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    versions = json.loads(out)["addons"][0]["addonVersions"]
    return str(versions[0]["addonVersion"])  # AWS lists the newest first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make addon-versions", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    args = parser.parse_args(argv)
    console = Console()
    aws_cli = shutil.which("aws")
    if aws_cli is None:
        console.print("[red]The AWS CLI is not installed[/]; this check asks the EKS API.")
        return 2
    project = project_name()
    raw, _ = stack_config(args.stack, project)
    cfg: PlatformConfig = validate(raw, project, args.stack, f"Pulumi.{args.stack}.yaml")
    k8s = cfg.cluster.kubernetes_version
    table = Table(title=f"EKS add-ons for Kubernetes {k8s} ({cfg.region})")
    for column in ("add-on", "pinned", "newest", ""):
        table.add_column(column)
    behind = 0
    for addon, pinned in addon_versions(k8s).items():
        latest = newest(aws_cli, addon, k8s, cfg.region)
        behind += latest != pinned
        table.add_row(addon, pinned, latest, "" if latest == pinned else "[yellow]bump[/]")
    console.print(table)
    return 1 if behind else 0


if __name__ == "__main__":
    sys.exit(main())
