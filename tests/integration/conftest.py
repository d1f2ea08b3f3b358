"""An ephemeral stack of this program: created once per session, checked, and always destroyed.

Runs only when asked to (`make integration`, which sets EKS_PLATFORM_IT=1): a real EKS platform
costs money and about 30 minutes. Without the opt-in every test skips (so `make test` stays
offline); with it, a missing prerequisite stops the run with a non-zero exit naming all of them.
"""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stacks.config import PROJECT as CONFIG_PROJECT
from stacks.config import ConfigError, validate
from stacks.gitops_tree import repo_url_issues
from tools.cleanup_stacks import PROJECT, STACK_PREFIX, aws_region, missing_tools, orphans, run_tags
from tools.leak_check import destroy_blockers, error_lines, find_leaks
from tools.leak_delete import delete_leaks
from tools.mocks import ROOT

OPT_IN = "EKS_PLATFORM_IT"
API_CIDR = "EKS_PLATFORM_IT_API_CIDR"  # the runner's egress /32: the API endpoint admits only it
GITOPS_REPO = "EKS_PLATFORM_IT_GITOPS_REPO"  # the repository ArgoCD clones (this one, or a fork)
STACK_FILE = "EKS_PLATFORM_IT_STACK_FILE"  # optional: where the run writes its stack's name (CI's cleanup)
# ArgoCD syncs this folder on an ephemeral stack: platform/gitops/<it-random> cannot exist.
IT_GITOPS_PATH = "tests/integration/gitops"
# The one service of an ephemeral stack: its namespace is where ArgoCD deploys the GitOps folder's
# workload (the `microservices` project admits only the services' namespaces).
IT_SERVICE = "it-hello"
EXAMPLE_ORG = "github.com/example-org/"
GITHUB_ISSUER = "token.actions.githubusercontent.com"
# Spot instances need this service-linked role; a fresh account may not have it yet (Karpenter
# docs, Getting Started: `aws iam create-service-linked-role --aws-service-name spot.amazonaws.com`).
SPOT_ROLE = "AWSServiceRoleForEC2Spot"
SAMPLE_ROLE = "arn:aws:iam::123456789012:role/ci/it-runner"  # validates the config before the account is read
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
    sample = it_config(
        region, cidr, repo, SAMPLE_ROLE, f"arn:aws:iam::123456789012:oidc-provider/{GITHUB_ISSUER}"
    )
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in sample.items()}
    try:
        validate(raw, CONFIG_PROJECT, f"{STACK_PREFIX}00000000", "the integration stack's config")
    except ConfigError as err:
        problems += [f"the integration stack's config: {issue.key}: {issue.message}" for issue in err.issues]
    return problems


@dataclass(frozen=True)
class Account:
    """What the run needs to know about the account before it creates anything."""

    admin_role_arn: str  # the runner's IAM role (with its path): the stack's one cluster admin
    github_oidc_provider_arn: str | None  # the account's GitHub OIDC provider, when it has one


def role_arn_of(caller_arn: str, role_arn: Callable[[str], str]) -> str:
    """The IAM role ARN, path included, of the role the caller acts as (`role_arn`: name -> ARN,
    i.e. iam:GetRole). An assumed-role session ARN (`arn:aws:sts::<acct>:assumed-role/<name>/<session>`)
    never carries the role's path (hashicorp/terraform-provider-aws#19957, the
    `aws_iam_session_context` review: "call getRole after parsing the role name from the sts ARN"),
    and an access entry needs the role's own ARN, which may have one (EKS User Guide, "Create access
    entries": "If the ARN is for an IAM role, it can include a path")."""
    resource = caller_arn.split(":", 5)[-1]
    if resource.startswith("assumed-role/"):
        return role_arn(resource.split("/")[1])
    if resource.startswith("role/"):
        return caller_arn
    raise ValueError(
        f"the AWS credentials are {caller_arn}, not a role: the run makes the caller's role the "
        "stack's cluster admin (cluster.adminRoleArns takes roles); assume a role first"
    )


def github_provider(arns: Iterable[str]) -> str | None:
    """The account's GitHub Actions OIDC provider among `arns` (IAM holds at most one per issuer URL:
    CreateOpenIDConnectProvider refuses a URL already registered in the account, IAM API reference)."""
    return next((arn for arn in arns if arn.endswith(f":oidc-provider/{GITHUB_ISSUER}")), None)


def inspect_account(session: Any) -> Account | list[str]:
    """The run's account facts, or every problem that keeps it from running there."""
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    iam = session.client("iam")
    try:
        caller = session.client("sts").get_caller_identity()["Arn"]
    except (BotoCoreError, ClientError) as err:
        return [f"no usable AWS credentials ({err})"]
    problems: list[str] = []
    try:
        role = role_arn_of(caller, lambda name: str(iam.get_role(RoleName=name)["Role"]["Arn"]))
    except ValueError as err:
        role, problems = "", [str(err)]
    except (BotoCoreError, ClientError) as err:
        role, problems = "", [f"cannot read the caller's role ({caller}) with iam:GetRole: {err}"]
    try:
        listed = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
        provider = github_provider(p["Arn"] for p in listed)
    except (BotoCoreError, ClientError) as err:
        provider = None
        problems.append(f"cannot list the account's OIDC providers (iam:ListOpenIDConnectProviders): {err}")
    try:
        iam.get_role(RoleName=SPOT_ROLE)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "NoSuchEntity":
            problems.append(f"cannot check for {SPOT_ROLE} (iam:GetRole): {err}")
        else:
            problems.append(
                f"{SPOT_ROLE} does not exist in this account: Karpenter's first spot launch fails "
                "without it; create it once with "
                "`aws iam create-service-linked-role --aws-service-name spot.amazonaws.com`"
            )
    except BotoCoreError as err:
        problems.append(f"cannot check for {SPOT_ROLE}: {err}")
    return problems or Account(role, provider)


def _account(region: str) -> Account | list[str]:
    import boto3  # type: ignore[import-untyped]

    return inspect_account(boto3.Session(region_name=region))


def missing_prerequisites(
    env: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    credentials: Callable[[str], Account | list[str]] | None = None,
) -> list[str]:
    """Everything that keeps the integration tests from running here (empty when they can)."""
    env = os.environ if env is None else env
    missing = missing_tools(which)
    if which("pulumi") and _run("pulumi", "whoami").returncode != 0:
        missing.append("the Pulumi CLI is not logged in to a backend (`pulumi login`)")
    missing += _config_problems(env)
    account = (credentials or _account)(aws_region(env) or "us-east-1")
    if isinstance(account, list):
        missing += account
    return missing


def skip_reason() -> str | None:
    """Why the tests skip (no opt-in), or None when they are meant to run."""
    if os.environ.get(OPT_IN) != "1":
        return f"integration tests create real AWS resources; run them with `make integration` ({OPT_IN}=1)"
    return None


def github_repository(repo_url: str) -> str:
    """`owner/repo` of an https:// git URL (the service's CI trust names it; no CI runs in the test)."""
    owner, name = repo_url.removesuffix(".git").rstrip("/").split("/")[-2:]
    return f"{owner}/{name}"


def remove_own_stack(workspace: Any, name: str, env: Mapping[str, str]) -> None:
    """`stack rm`, then empty CI's stack file: the workflow's own-stack cleanup step then has nothing
    to clean, instead of asking `make it-cleanup --stack` for a name that no longer exists (which
    exits 1: an unknown name is refused, so a typo never passes as clean)."""
    workspace.remove_stack(name)
    if env.get(STACK_FILE):
        Path(env[STACK_FILE]).write_text("")


def it_config(
    region: str, api_cidr: str, gitops_repo: str, admin_role_arn: str, github_oidc_provider_arn: str | None
) -> dict[str, Any]:
    """A small dev-like stack: one NAT, two system nodes, a small spot-first pool, one service.

    `admin_role_arn`: the runner's role, the one cluster admin (components/cluster.py turns EKS's
    creator bootstrap off, so without an entry the run's first Kubernetes object gets 401).
    `github_oidc_provider_arn`: the account's GitHub OIDC provider when it has one (the weekly run
    authenticates through it), reused instead of created: a second one for the URL fails."""
    gitops = {"repoUrl": gitops_repo, "revision": "main", "path": IT_GITOPS_PATH}
    service = {"name": IT_SERVICE, "githubRepository": github_repository(gitops_repo), "branch": "main"}
    delivery: dict[str, Any] = {"services": [service], "gitops": gitops}
    if github_oidc_provider_arn is not None:
        delivery["githubOidcProviderArn"] = github_oidc_provider_arn
    return {
        "aws:region": region,
        "eks-platform:network": {"cidr": "10.99.0.0/16", "natStrategy": "single", "flowLogRetentionDays": 1},
        "eks-platform:cluster": {
            "logRetentionDays": 1,
            "endpointPublicAccess": True,
            "publicAccessCidrs": [api_cidr],
            "adminRoleArns": [admin_role_arn],
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
        "eks-platform:delivery": delivery,
        "eks-platform:deployments": {"enabled": False},
    }


@dataclass
class EphemeralStack:
    name: str
    region: str
    cluster_name: str
    kubeconfig: Path
    system_nodes: int  # the system node group's desiredSize

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
    session = boto3.Session(region_name=region)
    account = inspect_account(session)
    if isinstance(account, list):
        pytest.exit("cannot run the integration tests:\n  - " + "\n  - ".join(account), PREREQUISITE_EXIT)
    print(f"cluster admin: {account.admin_role_arn} (the runner's role)")
    print(
        f"GitHub OIDC provider: reusing the account's {account.github_oidc_provider_arn}"
        if account.github_oidc_provider_arn
        else "GitHub OIDC provider: none in the account, the stack creates one"
    )
    name = f"{STACK_PREFIX}{uuid.uuid4().hex[:8]}"
    if os.environ.get(STACK_FILE):  # before the stack exists: CI's cleanup then always knows its name
        Path(os.environ[STACK_FILE]).write_text(name)
    stack = auto.create_or_select_stack(stack_name=name, work_dir=str(ROOT))
    try:
        # `make it-cleanup` tells a live run from a dead one by these tags only (tools/cleanup_stacks.py
        # `stale`); CI's post-run cleanup names this stack through the file.
        for key, value in run_tags(
            os.environ, dt.datetime.now(dt.UTC), socket.gethostname(), getpass.getuser()
        ).items():
            stack.workspace.set_tag(name, key, value)
        config = it_config(
            region,
            os.environ[API_CIDR],
            os.environ[GITOPS_REPO],
            account.admin_role_arn,
            account.github_oidc_provider_arn,
        )
        stack.set_all_config(
            {k: auto.ConfigValue(v if isinstance(v, str) else json.dumps(v)) for k, v in config.items()}
        )
        result = stack.up(on_output=print, color="never")
        kubeconfig = tmp_path_factory.mktemp("kube") / "config"
        value = result.outputs["kubeconfig"].value
        kubeconfig.write_text(value if isinstance(value, str) else json.dumps(value))
        system_nodes = int(config["eks-platform:systemNodeGroup"]["desiredSize"])
        yield EphemeralStack(name, region, result.outputs["clusterName"].value, kubeconfig, system_nodes)
    finally:
        # The dependency graph deletes Applications and NodePools (Karpenter still running) before
        # the cluster and the VPC. A failed destroy keeps the stack for `make it-cleanup` and says
        # what blocked it. The leak check runs before `stack rm`; what it finds is deleted and named.
        try:
            stack.destroy(on_output=print, color="never")
        except auto.CommandError as err:
            blockers = [*error_lines(str(err)), *map(str, destroy_blockers(session, name))]
            pytest.fail(
                f"destroy of {name} failed; run `make it-cleanup ARGS='--stack {name}'`. "
                f"Blocked by: {blockers}"
            )
        leaks = find_leaks(session, PROJECT, name)
        deleted = delete_leaks(session, orphans(leaks, set())) if leaks else []
        left = find_leaks(session, PROJECT, name) if leaks else []
        for line in deleted:
            print(line)
        if not left:
            remove_own_stack(stack.workspace, name, os.environ)
        failure = teardown_report(leaks, deleted, left)
        if failure:
            pytest.fail(f"{name}: {failure}")
