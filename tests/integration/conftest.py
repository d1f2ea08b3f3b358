"""An ephemeral stack of this program: created once per session, checked, and always destroyed.

Runs only when asked to (`make integration`, which sets EKS_PLATFORM_IT=1): a real EKS platform
costs money and about 30 minutes. Every skip says what is missing.
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

from tools.cleanup_stacks import (
    STACK_PREFIX,  # one name for tests and cleanup
    leftovers,
)
from tools.mocks import ROOT

OPT_IN = "EKS_PLATFORM_IT"


def missing_prerequisite() -> str | None:
    """Why the integration tests cannot run here, or None when they can."""
    if os.environ.get(OPT_IN) != "1":
        return f"integration tests create real AWS resources; run them with `make integration` ({OPT_IN}=1)"
    for tool in ("pulumi", "aws", "kubectl"):
        if shutil.which(tool) is None:
            return f"the `{tool}` CLI is not installed (needed for ephemeral-stack tests)"
    probe = subprocess.run(
        [shutil.which("aws") or "aws", "sts", "get-caller-identity", "--output", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if probe.returncode != 0:
        return f"no usable AWS credentials: {probe.stderr.strip()[:200]}"
    return None


def it_config(region: str) -> dict[str, Any]:
    """A small dev-like stack: one NAT, two system nodes, a small spot-first pool, no services."""
    gitops_repo = os.environ.get(
        "EKS_PLATFORM_IT_GITOPS_REPO", "https://github.com/example-org/eks-platform.git"
    )
    egress = os.environ.get("EKS_PLATFORM_IT_API_CIDR")  # the runner's egress, to reach the API
    cluster: dict[str, Any] = {"logRetentionDays": 1}
    if egress:
        cluster |= {"endpointPublicAccess": True, "publicAccessCidrs": [egress]}
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
        "eks-platform:delivery": {"services": [], "gitops": {"repoUrl": gitops_repo, "revision": "main"}},
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
    reason = missing_prerequisite()
    if reason:
        pytest.skip(reason)
    from pulumi import automation as auto

    region = os.environ.get("AWS_REGION", "eu-west-1")
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
        # Destroy must succeed on the first try: the dependency graph deletes Applications and
        # NodePools (Karpenter still running) before the cluster and the VPC.
        stack.destroy(on_output=print, color="never")
        stack.workspace.remove_stack(name)
        left = leftovers(f"eks-platform-{name}", region)
        assert not left, f"destroy left resources behind: {left}"
