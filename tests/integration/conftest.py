"""An ephemeral stack of this program: created once per session, checked, and always destroyed.

Runs only when asked to (`make integration`, which sets EKS_PLATFORM_IT=1): a real EKS platform
costs money and about 30 minutes. Without the opt-in every test skips (so `make test` stays
offline); with it, a missing prerequisite stops the run with a non-zero exit naming all of them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stacks.config import PROJECT as CONFIG_PROJECT
from stacks.config import ConfigError, validate
from stacks.gitops_tree import repo_url_issues
from tools.cleanup_stacks import PROJECT, STACK_PREFIX, STARTED_TAG, aws_region, missing_tools, orphans
from tools.leak_check import destroy_blockers, error_lines, find_leaks
from tools.leak_delete import delete_leaks
from tools.mocks import ROOT

OPT_IN = "EKS_PLATFORM_IT"
API_CIDR = "EKS_PLATFORM_IT_API_CIDR"  # the runner's egress /32: the API endpoint admits only it
GITOPS_REPO = "EKS_PLATFORM_IT_GITOPS_REPO"  # the repository ArgoCD clones (this one, or a fork)
# ArgoCD syncs this folder on an ephemeral stack: platform/gitops/<it-random> cannot exist.
IT_GITOPS_PATH = "tests/integration/gitops"
# The one service of an ephemeral stack: its namespace is where ArgoCD deploys the GitOps folder's
# workload (the `microservices` project admits only the services' namespaces).
IT_SERVICE = "it-hello"
EXAMPLE_ORG = "github.com/example-org/"
PREREQUISITE_EXIT = 3


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)


def _config_problems(env: Mapping[str, str]) -> list[str]:
    """The environment's values, checked as the stack will check them (before anything is created)."""
    region, cidr, repo = aws_region(env), env.get(API_CIDR), env.get(GITOPS_REPO)
    problems = []
    if region is None:
        problems.append("AWS_REGION (or AWS_DEFAULT_REGION) is not set: the region to create the stack in")
    if not cidr:
        problems.append(
            f"{API_CIDR} is not set: your egress address as a /32 (`curl -s https://checkip.amazonaws.com`"
            " plus /32); without it the API endpoint is private and `up` fails at the first Kubernetes object"
        )
    else:
        try:
            ipaddress.IPv4Network(cidr)
        except ValueError as err:
            problems.append(f"{API_CIDR}={cidr!r} is not an IPv4 CIDR ({err})")
            cidr = None
    if not repo:
        problems.append(
            f"{GITOPS_REPO} is not set: the https:// URL of this repository (or your fork), which ArgoCD "
            f"clones without credentials and which {IT_GITOPS_PATH}/*.yaml name as their repoURL"
        )
    elif EXAMPLE_ORG in repo:
        problems.append(
            f"{GITOPS_REPO}={repo!r} is the example organisation: use your repository, and name it in "
            f"{IT_GITOPS_PATH}/*.yaml too"
        )
    else:
        problems += [message for _, _, message in repo_url_issues(ROOT, IT_GITOPS_PATH, repo)]
    if problems or region is None or cidr is None or repo is None:
        return problems
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in it_config(region, cidr, repo).items()}
    try:
        validate(raw, CONFIG_PROJECT, f"{STACK_PREFIX}00000000", "the integration stack's config")
    except ConfigError as err:
        problems += [f"the integration stack's config: {issue.key}: {issue.message}" for issue in err.issues]
    return problems


def missing_prerequisites(
    env: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    credentials: Callable[[str], str | None] | None = None,
) -> list[str]:
    """Everything that keeps the integration tests from running here (empty when they can)."""
    env = os.environ if env is None else env
    missing = missing_tools(which)
    if which("pulumi") and _run("pulumi", "whoami").returncode != 0:
        missing.append("the Pulumi CLI is not logged in to a backend (`pulumi login`)")
    missing += _config_problems(env)
    problem = (credentials or _aws_credentials_problem)(aws_region(env) or "us-east-1")
    if problem:
        missing.append(problem)
    return missing


def _aws_credentials_problem(region: str) -> str | None:
    import boto3  # type: ignore[import-untyped]
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    try:
        boto3.client("sts", region_name=region).get_caller_identity()
    except (BotoCoreError, ClientError) as err:
        return f"no usable AWS credentials ({err})"
    return None


def skip_reason() -> str | None:
    """Why the tests skip (no opt-in), or None when they are meant to run."""
    if os.environ.get(OPT_IN) != "1":
        return f"integration tests create real AWS resources; run them with `make integration` ({OPT_IN}=1)"
    return None


def github_repository(repo_url: str) -> str:
    """`owner/repo` of an https:// git URL (the service's CI trust names it; no CI runs in the test)."""
    owner, name = repo_url.removesuffix(".git").rstrip("/").split("/")[-2:]
    return f"{owner}/{name}"


def it_config(region: str, api_cidr: str, gitops_repo: str) -> dict[str, Any]:
    """A small dev-like stack: one NAT, two system nodes, a small spot-first pool, one service."""
    gitops = {"repoUrl": gitops_repo, "revision": "main", "path": IT_GITOPS_PATH}
    service = {"name": IT_SERVICE, "githubRepository": github_repository(gitops_repo), "branch": "main"}
    return {
        "aws:region": region,
        "eks-platform:network": {"cidr": "10.99.0.0/16", "natStrategy": "single", "flowLogRetentionDays": 1},
        "eks-platform:cluster": {
            "logRetentionDays": 1,
            "endpointPublicAccess": True,
            "publicAccessCidrs": [api_cidr],
        },
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
        "eks-platform:delivery": {"services": [service], "gitops": gitops},
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


def teardown_report(leaks: list[Any], deleted: list[Any], left: list[Any]) -> str | None:
    """Why the run must fail after its destroy (None: clean). A leak is a bug even once deleted."""
    if left:
        return f"destroy left resources that could not be deleted: {[str(x) for x in left]}"
    if leaks:
        return f"destroy left resources behind (now deleted: {[str(d) for d in deleted]})"
    return None


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

    region = str(aws_region())
    name = f"{STACK_PREFIX}{uuid.uuid4().hex[:8]}"
    stack = auto.create_or_select_stack(stack_name=name, work_dir=str(ROOT))
    session = boto3.Session(region_name=region)
    try:
        # `make it-cleanup` ages an in-progress stack by this tag (stack ls has no time for it).
        stack.workspace.set_tag(name, STARTED_TAG, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        config = it_config(region, os.environ[API_CIDR], os.environ[GITOPS_REPO])
        stack.set_all_config(
            {k: auto.ConfigValue(v if isinstance(v, str) else json.dumps(v)) for k, v in config.items()}
        )
        result = stack.up(on_output=print, color="never")
        kubeconfig = tmp_path_factory.mktemp("kube") / "config"
        value = result.outputs["kubeconfig"].value
        kubeconfig.write_text(value if isinstance(value, str) else json.dumps(value))
        yield EphemeralStack(name, region, result.outputs["clusterName"].value, kubeconfig)
    finally:
        # The dependency graph deletes Applications and NodePools (Karpenter still running) before
        # the cluster and the VPC. A failed destroy keeps the stack for `make it-cleanup` and says
        # what blocked it. The leak check runs before `stack rm`; what it finds is deleted and named.
        try:
            stack.destroy(on_output=print, color="never")
        except auto.CommandError as err:
            blockers = [*error_lines(str(err)), *map(str, destroy_blockers(session, name))]
            pytest.fail(f"destroy of {name} failed; run `make it-cleanup`. Blocked by: {blockers}")
        leaks = find_leaks(session, PROJECT, name)
        deleted = delete_leaks(session, orphans(leaks, set())) if leaks else []
        left = find_leaks(session, PROJECT, name) if leaks else []
        for line in deleted:
            print(line)
        if not left:
            stack.workspace.remove_stack(name)
        failure = teardown_report(leaks, deleted, left)
        if failure:
            pytest.fail(f"{name}: {failure}")
