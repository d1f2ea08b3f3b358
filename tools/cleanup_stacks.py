"""Find and destroy ephemeral integration stacks left behind by crashed runs; report leftovers.

    python -m tools.cleanup_stacks [--older-than HOURS] [--dry-run]

Needs the Pulumi CLI (logged in to the backend the tests used), the AWS CLI and credentials.
Only stacks named `it-*` of this project are touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from tools.mocks import ROOT

STACK_PREFIX = "it-"


def _aws(*args: str, region: str) -> Any:
    cmd = [shutil.which("aws") or "aws", *args, "--region", region, "--output", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout  # noqa: S603
    return json.loads(out) if out.strip() else None


def leftovers(cluster_name: str, region: str) -> list[str]:
    """What AWS still holds for a destroyed cluster: instances, ENIs, load balancers, volumes, logs."""
    found: list[str] = []
    owned = f"Name=tag:kubernetes.io/cluster/{cluster_name},Values=owned,shared"
    instances = _aws(
        "ec2",
        "describe-instances",
        "--filters",
        owned,
        "Name=instance-state-name,Values=pending,running,stopping,stopped",
        "--query",
        "Reservations[].Instances[].InstanceId",
        region=region,
    )
    found += [f"instance {i}" for i in instances or []]
    enis = _aws(
        "ec2",
        "describe-network-interfaces",
        "--filters",
        f"Name=tag:cluster.k8s.amazonaws.com/name,Values={cluster_name}",
        "--query",
        "NetworkInterfaces[].NetworkInterfaceId",
        region=region,
    )
    found += [f"network interface {i}" for i in enis or []]
    volumes = _aws(
        "ec2", "describe-volumes", "--filters", owned, "--query", "Volumes[].VolumeId", region=region
    )
    found += [f"volume {v}" for v in volumes or []]
    balancers = (
        _aws("elbv2", "describe-load-balancers", "--query", "LoadBalancers[].LoadBalancerArn", region=region)
        or []
    )
    for arn in balancers if isinstance(balancers, list) else []:
        tags = (
            _aws(
                "elbv2",
                "describe-tags",
                "--resource-arns",
                arn,
                "--query",
                "TagDescriptions[0].Tags",
                region=region,
            )
            or []
        )
        if any(t.get("Key") == "elbv2.k8s.aws/cluster" and t.get("Value") == cluster_name for t in tags):
            found.append(f"load balancer {arn}")
    groups = _aws(
        "logs",
        "describe-log-groups",
        "--log-group-name-prefix",
        f"/aws/eks/{cluster_name}/",
        "--query",
        "logGroups[].logGroupName",
        region=region,
    )
    found += [f"log group {g}" for g in groups or []]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make it-cleanup", description=__doc__.splitlines()[0])
    parser.add_argument("--older-than", type=float, default=6.0, help="hours since the last update")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--region", default="eu-west-1")
    args = parser.parse_args(argv)
    console = Console()
    if shutil.which("pulumi") is None:
        console.print("[red]The Pulumi CLI is not installed[/]; nothing to clean from here.")
        return 2
    from pulumi import automation as auto

    workspace = auto.LocalWorkspace(work_dir=str(ROOT))
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(hours=args.older_than)
    stale = [
        s
        for s in workspace.list_stacks()
        if s.name.startswith(STACK_PREFIX)
        and (s.last_update is None or s.last_update.astimezone(dt.UTC) < cutoff)
    ]
    if not stale:
        console.print("No stale ephemeral stacks.")
    for summary in stale:
        cluster = f"eks-platform-{summary.name}"
        console.print(f"Stale stack [bold]{summary.name}[/] (last update {summary.last_update})")
        if args.dry_run:
            continue
        stack = auto.select_stack(stack_name=summary.name, work_dir=str(ROOT))
        stack.destroy(on_output=console.print, color="never")
        workspace.remove_stack(summary.name)
        left = leftovers(cluster, args.region)
        for item in left:
            console.print(f"  [red]left behind:[/] {item}")
        if left:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
