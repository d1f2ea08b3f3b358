"""The delivery section of a stack's config: microservices, their registries and CI, GitOps."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import Field, StrictBool, StrictInt, ValidationInfo, model_validator

from stacks import placeholders
from stacks.data import parse_yaml
from stacks.fields import InstanceType, Model, cross_field, instance_architecture, profile_of
from stacks.gitops_tree import repo_url_issues
from stacks.sso import SsoConfig

DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", re.ASCII)
_GITHUB_REPO = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}", re.ASCII)
_GIT_URL = re.compile(r"https://[a-z0-9.-]+(:\d+)?/[A-Za-z0-9._~/-]+?(\.git)?", re.ASCII)
_BRANCH = re.compile(r"[A-Za-z0-9._/-]{1,200}", re.ASCII)
# The repository part of GitHub's OIDC `sub` claim, before `:ref:`: `repo:<owner>/<repo>`, or with
# GitHub's immutable owner and repository IDs in it (whatever their separator): no wildcard, no `:`.
_GITHUB_SUBJECT = re.compile(r"repo:[A-Za-z0-9._@/-]{3,250}", re.ASCII)
_OIDC_ARN = re.compile(
    r"arn:aws(-cn|-us-gov)?:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com", re.ASCII
)
_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}", re.ASCII)
# The repository this program lives in; the GitOps tree (platform/gitops) is part of it.
REPO_ROOT = Path(__file__).resolve().parent.parent
GITOPS_TREE = "platform/gitops"
SERVICES_TREE = "services"


class ServiceConfig(Model):
    name: str = Field(description="Service name: a DNS label; names its ECR repository and namespace.")
    github_repository: str = Field(description="GitHub `owner/repo` whose CI builds the image.")
    branch: str = Field(default="main", description="The only branch whose CI may push images.")
    github_subject: str | None = Field(
        default=None,
        description=(
            "The repository part of the `sub` claim GitHub issues for githubRepository, before "
            "`:ref:` (default `repo:<githubRepository>`). Repositories created, renamed or "
            "transferred after 2026-06-18, or opted in, get immutable subject claims that carry the "
            "owner's and repository's IDs (GitHub changelog, 2026-04-23): copy yours from the "
            "repository's OIDC settings (its subject preview) or from a token's `sub`."
        ),
    )

    @property
    def subject(self) -> str:
        """`repo:...`, the part of GitHub's `sub` claim the CI roles' trust pins before `:ref:`."""
        return self.github_subject or f"repo:{self.github_repository}"

    @model_validator(mode="after")
    def _valid(self) -> ServiceConfig:
        issues: list[tuple[str, Any, str]] = []
        if not DNS_LABEL.fullmatch(self.name):
            issues.append(
                (
                    "name",
                    self.name,
                    "must be a DNS label: lowercase letters, digits and '-', "
                    "starting with a letter, at most 63 characters",
                )
            )
        if not _GITHUB_REPO.fullmatch(self.github_repository):
            issues.append(("githubRepository", self.github_repository, "must be `owner/repo` on GitHub"))
        if not _BRANCH.fullmatch(self.branch) or ".." in self.branch or "*" in self.branch:
            issues.append(("branch", self.branch, "must be one branch name (no wildcards)"))
        if self.github_subject is not None and not _GITHUB_SUBJECT.fullmatch(self.github_subject):
            issues.append(
                (
                    "githubSubject",
                    self.github_subject,
                    "must be the `repo:...` part of GitHub's `sub` claim before `:ref:`, exactly "
                    "(no wildcard, no `:ref:`), for example repo:example-org/eks-platform",
                )
            )
        cross_field(issues)
        return self


class GitOpsConfig(Model):
    repo_url: str = Field(
        default="https://github.com/example-org/eks-platform.git",
        description="HTTPS URL of the GitOps repository ArgoCD syncs.",
    )
    revision: str = Field(default="main", description="Branch or tag ArgoCD follows.")
    credentials_secret: str | None = Field(
        default=None,
        description="AWS Secrets Manager secret holding the repo credentials (private repos only).",
    )
    path: str | None = Field(
        default=None,
        description=f"Folder the root Application syncs; default `{GITOPS_TREE}/<stack>`. Must exist.",
    )
    sso: SsoConfig | None = Field(
        default=None,
        description="Argo CD sign-in through an OIDC provider (docs/argocd-sso.md); required in production.",
    )

    def folder(self, stack: str) -> str:
        """The folder of the GitOps repository the stack's root Application syncs."""
        return self.path if self.path is not None else f"{GITOPS_TREE}/{stack}"

    @model_validator(mode="after")
    def _valid(self, info: ValidationInfo) -> GitOpsConfig:
        issues: list[tuple[str, Any, str]] = []
        stack = (info.context or {}).get("stack")
        folder_issues = _folder_issues(self.path, None if stack is None else self.folder(stack))
        issues += folder_issues
        if not _GIT_URL.fullmatch(self.repo_url):
            issues.append(("repoUrl", self.repo_url, "must be an https:// git URL (host and path)"))
        elif stack is not None and not folder_issues:
            issues += repo_url_issues(REPO_ROOT, self.folder(stack), self.repo_url)
        if self.sso is None and profile_of(info).requires_argocd_sso:
            issues.append(
                (
                    "sso",
                    None,
                    "a production stack disables Argo CD's local admin, so nobody could sign in: "
                    "configure the OIDC sign-in (issuer, clientId, adminGroups; docs/argocd-sso.md)",
                )
            )
        if not _BRANCH.fullmatch(self.revision):
            issues.append(("revision", self.revision, "must be a branch or tag name"))
        if self.credentials_secret is not None and not _SECRET_NAME.fullmatch(self.credentials_secret):
            issues.append(("credentialsSecret", self.credentials_secret, "not a Secrets Manager secret name"))
        cross_field(issues)
        return self


def _folder_issues(path: str | None, folder: str | None) -> list[tuple[str, Any, str]]:
    """A bad `path`, or a folder missing from the repository (ArgoCD: "app path does not exist")."""
    if path is not None:
        parts = PurePosixPath(path).parts
        if not path or path.startswith("/") or ".." in parts or "\\" in path:
            return [
                ("path", path, "must be a relative folder inside the repository, e.g. platform/gitops/dev")
            ]
    if folder is None or (REPO_ROOT / folder).is_dir():
        return []
    stack = PurePosixPath(folder).name
    create = (
        # The stack's own folder of the tree: a new stack, copied by hand (docs/adding-a-stack.md).
        f"`make new-stack NAME={stack} FROM=<stack>` creates it and every service's values file for "
        f"the stack (and keeps this stack file), or create {folder}/ with the stack's Applications by hand"
        if path is None
        else f"create {folder}/ with the stack's Applications (see {GITOPS_TREE}/README.md)"
    )
    return [
        (
            "path",
            folder,
            f"the folder {folder}/ does not exist in this repository, so ArgoCD could not sync the "
            f"root Application; {create}, or set delivery.gitops.path to an existing folder",
        )
    ]


def values_file(service: str, stack: str) -> str:
    """The service's values for charts/microservice in one stack (its Application reads it too)."""
    return f"{SERVICES_TREE}/{service}/deploy/{stack}.yaml"


def service_file_issues(root: Path, stack: str, services: list[str]) -> list[tuple[str, Any, str]]:
    """Each listed service whose values file for this stack is missing: the plan renders the
    service's chart with it, and its Application hands it to ArgoCD. Named here, once, so that a
    half-added service or stack is a config error rather than a failure inside an analysis."""
    missing = [s for s in services if not (root / values_file(s, stack)).is_file()]
    if not missing:
        return []
    if not list(root.glob(values_file("*", stack))):
        # No service has files for this stack yet: the stack itself is new.
        fix = (
            f"`make new-stack NAME={stack} FROM=<stack>` creates every service's values file and "
            f"Application for a new stack (docs/adding-a-stack.md)"
        )
    else:
        fix = (
            "`make new-service NAME=<name>` creates a service's files in every stack "
            f'({GITOPS_TREE}/README.md, "Adding a service")'
        )
    return [
        (
            "services",
            name,
            f"{values_file(name, stack)} does not exist: the plan renders the service's chart with it "
            f"and ArgoCD deploys it; {fix.replace('<name>', name)}",
        )
        for name in missing
    ]


def secret_prefix_issues(
    root: Path, stack: str, prefix: str, services: list[str]
) -> list[tuple[str, Any, str]]:
    """A values file that still sets externalSecrets.prefix: the chart has no such value any more
    (its schema refuses it). The service's own ClusterSecretStore, `service-<name>`, carries the
    prefix `<prefix>/<name>/` and serves the service's namespace alone (components/secrets.py)."""
    issues: list[tuple[str, Any, str]] = []
    for name in services:
        path = root / values_file(name, stack)
        if not path.is_file():
            continue
        values = parse_yaml(path.read_text(encoding="utf-8")) or {}
        secrets = values.get("externalSecrets") if isinstance(values, dict) else None
        if isinstance(secrets, dict) and "prefix" in secrets:
            issues.append(
                (
                    "services",
                    name,
                    f"{values_file(name, stack)}: externalSecrets.prefix is not a value of the chart any "
                    f"more: remove it; the service's ClusterSecretStore service-{name} reads "
                    f"{prefix}/{name}/<key>, and a key names only <key> (docs/secrets.md)",
                )
            )
    return issues


def values_placeholders(root: Path, stack: str, services: list[str]) -> list[tuple[str, str, str]]:
    """Documentation placeholders left in the services' values files of one stack (the example
    registry account, above all), as (`<file>: <key path>`, value, why); the plan lists them with
    the stack file's."""
    found = []
    for name in services:
        shown, path = values_file(name, stack), root / values_file(name, stack)
        if path.is_file():
            values = parse_yaml(path.read_text(encoding="utf-8")) or {}
            for key, value, why in placeholders.find({shown: json.dumps(values, default=str)}):
                found.append((key.replace(f"{shown}.", f"{shown}: ", 1), value, why))
    return found


class DeliveryConfig(Model):
    services: tuple[ServiceConfig, ...] = Field(
        default=(), description="Microservices: one ECR repository and one CI role each."
    )
    github_oidc_provider_arn: str | None = Field(
        default=None,
        description="An existing GitHub OIDC provider to reuse (an account holds one); else one is created.",
    )
    keep_tagged_images: StrictInt = Field(
        default=30, ge=1, le=1000, description="Tagged images kept per repository (older ones expire)."
    )
    untagged_image_days: StrictInt = Field(
        default=7, ge=1, le=365, description="Days before untagged images expire."
    )
    gitops: GitOpsConfig = Field(default_factory=GitOpsConfig, description="The GitOps repository.")

    @model_validator(mode="after")
    def _valid(self, info: ValidationInfo) -> DeliveryConfig:
        issues: list[tuple[str, Any, str]] = []
        names = [s.name for s in self.services]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            issues.append(("services", duplicates, "service names must be unique"))
        stack = (info.context or {}).get("stack")
        if stack is not None and self.gitops.folder(stack) == f"{GITOPS_TREE}/{stack}":
            # The platform tree's Applications render charts/microservice with each service's
            # values file. A stack syncing a folder of its own (the integration run's
            # tests/integration/gitops) deploys its services' workloads from that folder instead.
            issues += service_file_issues(REPO_ROOT, stack, names)
            project = (info.context or {}).get("project")
            if project is not None:
                issues += secret_prefix_issues(REPO_ROOT, stack, f"{project}-{stack}", names)
        arn = self.github_oidc_provider_arn
        if arn is not None and not _OIDC_ARN.fullmatch(arn):
            issues.append(("githubOidcProviderArn", arn, "not the ARN of a GitHub Actions OIDC provider"))
        cross_field(issues)
        return self


_ORG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", re.ASCII)
# A release tag of pulumi/customer-managed-workflow-agent (the hosts download
# `customer-managed-workflow-agent-<tag>-linux-x64.tar.gz` of that release); never `latest`.
_AGENT_VERSION = re.compile(r"v\d+\.\d+\.\d+", re.ASCII)
# Pulumi's release builds the runner the agent puts into each job's container for linux/amd64
# only (.goreleaser.yaml `workflow-runner-embeddable`, v2.2.0); see components/agent.py.
_AGENT_ARM = (
    "the agent's job runner (workflow-runner-embeddable) is built for linux/amd64 only: "
    "choose an x86_64 type such as t3.large"
)


class AgentConfig(Model):
    """A customer-managed Pulumi Deployments agent pool whose hosts run in the stack's private subnets."""

    enabled: StrictBool = Field(
        default=False,
        description="Run this stack's deployments on agents inside its VPC (needed in production).",
    )
    instance_type: InstanceType = Field(
        default="t3.large", description="EC2 instance type of an agent host (x86_64)."
    )
    hosts: StrictInt = Field(
        default=1, ge=1, le=4, description="Agent hosts (one deployment at a time each)."
    )
    version: str = Field(default="v2.2.0", description="customer-managed-workflow-agent release tag.")

    @model_validator(mode="after")
    def _valid(self) -> AgentConfig:
        issues: list[tuple[str, Any, str]] = []
        if not _AGENT_VERSION.fullmatch(self.version):
            issues.append(("version", self.version, "a release tag such as v2.2.0 (never `latest`)"))
        if instance_architecture(self.instance_type) == "arm64":
            issues.append(("instanceType", self.instance_type, _AGENT_ARM))
        cross_field(issues)
        return self

    @property
    def architecture(self) -> str:
        return "arm64" if instance_architecture(self.instance_type) == "arm64" else "amd64"


_POLICY_ARN = re.compile(r"arn:aws(-cn|-us-gov)?:iam::(aws|\d{12}):policy/[\w+=,.@/-]{1,512}", re.ASCII)
# Account administration: refused for the deploy role of a production stack (see docs/deploy-role.md).
ADMIN_POLICIES = ("AdministratorAccess", "IAMFullAccess")


def _policy_arn_issues(arns: tuple[str, ...], refuse_admin: bool) -> list[tuple[str, Any, str]]:
    issues: list[tuple[str, Any, str]] = []
    if bad := [a for a in arns if not _POLICY_ARN.fullmatch(a)]:
        issues.append(("rolePolicyArns", bad, "not IAM managed policy ARNs"))
    admin = [a for a in arns if a.rsplit("/", 1)[-1] in ADMIN_POLICIES]
    if admin and refuse_admin:
        issues.append(
            (
                "rolePolicyArns",
                admin,
                "a production deploy role may not administer the account: remove it; the role's "
                "least-privilege policy covers what the stack manages (platform/deploy-role.yaml)",
            )
        )
    return issues


class DeploymentsConfig(Model):
    """Pulumi Deployments: `pulumi up` on a push to the stack's branch, previews on pull requests."""

    enabled: bool = Field(default=False, description="Manage this stack's Pulumi Deployments settings.")
    organization: str = Field(default="", description="Pulumi Cloud organization that owns the stack.")
    github_repository: str = Field(default="", description="GitHub `owner/repo` of this infrastructure code.")
    branch: str = Field(default="main", description="A push to this branch runs `pulumi up` for the stack.")
    repo_dir: str = Field(default=".", description="Folder of Pulumi.yaml inside the repository.")
    pulumi_oidc_provider_arn: str | None = Field(
        default=None, description="An existing `api.pulumi.com/oidc` provider to reuse; else one is created."
    )
    role_policy_arns: tuple[str, ...] = Field(
        default=(),
        description=(
            "Extra managed policies for the deploy role, beyond its least-privilege inline policy "
            "(docs/deploy-role.md). AdministratorAccess and IAMFullAccess are refused in production."
        ),
    )
    agent: AgentConfig = Field(
        default_factory=AgentConfig, description="Deployments agents inside the VPC (private API endpoint)."
    )
    deployers_team: str | None = Field(
        default=None,
        description=(
            "Pulumi Cloud team granted write on this stack: who may create its deployments "
            '(required in production; docs/deploy-path.md, "Who may run a deployment").'
        ),
    )
    bootstrap: StrictBool = Field(
        default=False,
        description="First `up` only (`make bootstrap`): the cluster and the agents, no Kubernetes objects.",
    )
    preview_pull_requests: StrictBool | None = Field(
        default=None,
        description=(
            "Preview pull requests with the deploy role (its trust then accepts `preview`): a pull "
            "request's own code runs as the stack's writer before review. Default: on outside "
            "production; refused in production (docs/deploy-path.md, Pull requests)."
        ),
    )

    def previews(self, production: bool) -> bool:
        """Whether pull requests are previewed (and the deploy role's trust accepts `preview`)."""
        return (not production) if self.preview_pull_requests is None else self.preview_pull_requests

    @model_validator(mode="after")
    def _valid(self, info: ValidationInfo) -> DeploymentsConfig:
        issues: list[tuple[str, Any, str]] = []
        if self.preview_pull_requests and profile_of(info).requires_deploy_agents:
            issues.append(
                (
                    "previewPullRequests",
                    True,
                    "a production stack never previews pull requests: the preview would run the pull "
                    "request's own code as the deploy role, which writes",
                )
            )
        if self.enabled and profile_of(info).requires_deploy_agents and not self.agent.enabled:
            issues.append(
                (
                    "agent.enabled",
                    False,
                    "a production stack's API endpoint is private, and Pulumi-hosted runners are outside "
                    "its VPC: run its deployments on agents in the VPC (agent.enabled: true)",
                )
            )
        if self.agent.enabled and not self.enabled:
            issues.append(("agent.enabled", True, "agents need deployments.enabled: true"))
        if self.bootstrap and not self.agent.enabled:
            issues.append(
                ("bootstrap", True, "bootstrap stops before the Kubernetes objects so that agents apply them")
            )
        if self.enabled:
            if not _ORG.fullmatch(self.organization):
                issues.append(("organization", self.organization, "set the Pulumi Cloud organization"))
            if not _GITHUB_REPO.fullmatch(self.github_repository):
                issues.append(("githubRepository", self.github_repository, "must be `owner/repo` on GitHub"))
            if self.deployers_team is None and profile_of(info).requires_deployers_team:
                issues.append(
                    (
                        "deployersTeam",
                        None,
                        "name the Pulumi Cloud team that may create this stack's deployments: anyone "
                        "with write on the stack can run any commit as the deploy role",
                    )
                )
            elif self.deployers_team is not None and not _ORG.fullmatch(self.deployers_team):
                issues.append(("deployersTeam", self.deployers_team, "must be a Pulumi Cloud team name"))
        if not _BRANCH.fullmatch(self.branch) or "*" in self.branch:
            issues.append(("branch", self.branch, "must be one branch name (no wildcards)"))
        if self.repo_dir.startswith("/") or ".." in self.repo_dir.split("/"):
            issues.append(("repoDir", self.repo_dir, "must be a relative path inside the repository"))
        issues += _policy_arn_issues(self.role_policy_arns, profile_of(info).refuses_admin_policies)
        arn = self.pulumi_oidc_provider_arn
        if arn is not None and not re.fullmatch(
            r"arn:aws(-cn|-us-gov)?:iam::\d{12}:oidc-provider/api\.pulumi\.com/oidc", arn
        ):
            issues.append(("pulumiOidcProviderArn", arn, "not the ARN of the api.pulumi.com/oidc provider"))
        cross_field(issues)
        return self
