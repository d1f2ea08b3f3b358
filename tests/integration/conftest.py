"""An ephemeral stack of this program: created once per session, checked, and always destroyed.

Runs only when asked to (`make integration`, which sets EKS_PLATFORM_IT=1): a real EKS platform
costs money and about 30 minutes. Without the opt-in every test skips (so `make test` stays
offline); with it, a missing prerequisite stops the run with a non-zero exit naming all of them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tools.cleanup_stacks import PROJECT, STACK_PREFIX  # one name for tests and cleanup
from tools.leak_check import destroy_blockers, error_lines, find_leaks
from tools.mocks import ROOT

OPT_IN = "EKS_PLATFORM_IT"
# ArgoCD syncs this folder on an ephemeral stack: platform/gitops/<it-random> cannot exist.
IT_GITOPS_PATH = "tests/integration/gitops"
PREREQUISITE_EXIT = 3


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)


def missing_prerequisites() -> list[str]:
    """Everything that keeps the integration tests from running here (empty when they can)."""
    missing = [
        f"the `{tool}` CLI is not installed (needed for ephemeral-stack tests)"
        for tool in ("pulumi", "kubectl")
        if shutil.which(tool) is None
    ]
    if shutil.which("pulumi") and _run("pulumi", "whoami").returncode != 0:
        missing.append("the Pulumi CLI is not logged in to a backend (`pulumi login`)")
    import boto3  # type: ignore[import-untyped]
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    try:
        boto3.client("sts", region_name=it_region()).get_caller_identity()
    except (BotoCoreError, ClientError) as err:
        missing.append(f"no usable AWS credentials ({err})")
    return missing


def skip_reason() -> str | None:
    """Why the tests skip (no opt-in), or None when they are meant to run."""
    if os.environ.get(OPT_IN) != "1":
        return f"integration tests create real AWS resources; run them with `make integration` ({OPT_IN}=1)"
    return None


def it_region() -> str:
    return os.environ.get("AWS_REGION", "eu-west-1")


def it_config(region: str) -> dict[str, Any]:
    """A small dev-like stack: one NAT, two system nodes, a small spot-first pool, no services."""
    gitops_repo = os.environ.get(
        "EKS_PLATFORM_IT_GITOPS_REPO", "https://github.com/example-org/eks-platform.git"
    )
    egress = os.environ.get("EKS_PLATFORM_IT_API_CIDR")  # the runner's egress, to reach the API
    cluster: dict[str, Any] = {"logRetentionDays": 1}
    if egress:
        cluster |= {"endpointPublicAccess": True, "publicAccessCidrs": [egress]}
    gitops = {"repoUrl": gitops_repo, "revision": "main", "path": IT_GITOPS_PATH}
    return {
        "aws:region": region,
        "eks-platform:network": {"cidr": "10.99.0.0/16", "natStrategy": "single", "flowLogRetentionDays": 1},
        "eks-platform:cluster": cluster,
        "eks-platform:systemNodeGroup": {
            "instanceTypes": ["t4g.large"],
            "minSize": 2,
            "desiredSize": 2,
            "maxSize": 3,
        },
        "eks-platform:karpenter": {
            "nodePools": [
                {"name": "default", "cpuLimit": 32, "memoryLimitGiB": 128, "consolidateAfter": "30s"}
            ]
        },
        "eks-platform:capacity": {"plannedPods": 200},
        "eks-platform:delivery": {"services": [], "gitops": gitops},
        "eks-platform:deployments": {"enabled": False},
    }


@dataclass
class EphemeralStack:
    name: str
    region: str
    cluster_name: str
    kubeconfig: Path

    def kubectl(self, *args: str, timeout: int = 120) -> Any:
        """Run kubectl against the stack's cluster; JSON output is parsed."""
        cmd = [shutil.which("kubectl") or "kubectl", "--kubeconfig", str(self.kubeconfig), *args]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=timeout).stdout
        return json.loads(out) if "-o" in args and "json" in args else out


@pytest.fixture(scope="session")
def ephemeral(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EphemeralStack]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    missing = missing_prerequisites()
    if missing:
        pytest.exit("cannot run the integration tests:\n  - " + "\n  - ".join(missing), PREREQUISITE_EXIT)
    import boto3
    from pulumi import automation as auto

    region = it_region()
    name = f"{STACK_PREFIX}{uuid.uuid4().hex[:8]}"
    stack = auto.create_or_select_stack(stack_name=name, work_dir=str(ROOT))
    try:
        stack.set_all_config(
            {
                k: auto.ConfigValue(v if isinstance(v, str) else json.dumps(v))
                for k, v in it_config(region).items()
            }
        )
        result = stack.up(on_output=print, color="never")
        kubeconfig = tmp_path_factory.mktemp("kube") / "config"
        kubeconfig.write_text(result.outputs["kubeconfig"].value)
        yield EphemeralStack(name, region, result.outputs["clusterName"].value, kubeconfig)
    finally:
        # The dependency graph deletes Applications and NodePools (Karpenter still running) before
        # the cluster and the VPC. A failed destroy keeps the stack for `make it-cleanup` and says
        # what blocked it; a successful one is checked for what controllers left outside the state.
        session = boto3.Session(region_name=region)
        try:
            stack.destroy(on_output=print, color="never")
        except auto.CommandError as err:
            blockers = [*error_lines(str(err)), *map(str, destroy_blockers(session, name))]
            pytest.fail(f"destroy of {name} failed; run `make it-cleanup`. Blocked by: {blockers}")
        stack.workspace.remove_stack(name)
        left = find_leaks(session, PROJECT, name)
        assert not left, f"destroy left resources behind: {[str(leak) for leak in left]}"
