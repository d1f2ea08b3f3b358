"""Pulumi Deployments: the stack deploys itself on git push, with AWS access through OIDC."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_pulumiservice as ps

from components.iam import clip, document

PULUMI_OIDC_URL = "https://api.pulumi.com/oidc"
PULUMI_OIDC_HOST = "api.pulumi.com/oidc"
# What the program reads (DeploymentSettings github.paths): a push touching none of these deploys
# nothing. Not services/ (a tag-bump merge changes only services/<name>/deploy/*.yaml, which ArgoCD
# syncs), not charts/, docs/, tests/ or .github/.
INFRA_PATHS = (
    "Pulumi.yaml",
    "__main__.py",
    "requirements.txt",
    "components/**",
    "stacks/**",
    "platform/**",
    "policy/**",
)


def deploy_paths(repo_dir: str, stack: str) -> list[str]:
    """The repository paths whose change deploys `stack`, relative to the repository root."""
    prefix = "" if repo_dir in (".", "") else f"{repo_dir.strip('/')}/"
    return sorted(f"{prefix}{path}" for path in (*INFRA_PATHS, f"Pulumi.{stack}.yaml"))


@dataclass(frozen=True, kw_only=True)
class DeploymentsArgs:
    organization: str
    project: str
    stack: str
    region: str
    github_repository: str
    branch: str
    repo_dir: str
    existing_oidc_provider_arn: str | None
    role_policy_arns: tuple[str, ...]
    protect: bool


def deploy_trust(provider_arn: str, organization: str, project: str, stack: str) -> str:
    """Only Pulumi Deployments of this organization, project and stack (any operation)."""
    subject = f"pulumi:deploy:org:{organization}:project:{project}:stack:{stack}:*"
    return document(
        {
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {f"{PULUMI_OIDC_HOST}:aud": organization},
                "StringLike": {f"{PULUMI_OIDC_HOST}:sub": subject},
            },
        }
    )


def _trust(args: DeploymentsArgs, provider_arn: str) -> str:
    return deploy_trust(provider_arn, args.organization, args.project, args.stack)


class Deployments(pulumi.ComponentResource):
    """Deployment settings so that a push to the stack's branch runs `pulumi up` and pull
    requests run previews, and the AWS role those runs assume.

    Guarantees: no stored AWS keys: Pulumi Cloud's OIDC token for this organization, project and
    stack (the `sub` claim) is the only way into the role, for at most an hour; intermediate
    deployments are skipped so the newest commit wins. The role's policies are configuration
    (it creates IAM roles and the cluster, so it is broad by nature): the trust is what limits it.
    The settings and the role are protected in prod. It does not create the Pulumi Cloud stack.
    """

    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: DeploymentsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:deployments:Deployments", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        provider_arn: pulumi.Input[str]
        if args.existing_oidc_provider_arn:
            provider_arn = args.existing_oidc_provider_arn
        else:
            provider_arn = aws.iam.OpenIdConnectProvider(
                f"{name}-pulumi-oidc", url=PULUMI_OIDC_URL, client_id_lists=[args.organization], opts=child
            ).arn
        role = aws.iam.Role(
            f"{name}-deploy",
            name=clip(f"{name}-deploy"),
            description=f"Pulumi Deployments of {args.organization}/{args.project}/{args.stack}",
            assume_role_policy=pulumi.Output.from_input(provider_arn).apply(functools.partial(_trust, args)),
            max_session_duration=3600,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        for i, policy_arn in enumerate(args.role_policy_arns):
            aws.iam.RolePolicyAttachment(
                f"{name}-deploy-{i}", role=role.name, policy_arn=policy_arn, opts=child
            )
        ps.DeploymentSettings(
            f"{name}-settings",
            organization=args.organization,
            project=args.project,
            stack=args.stack,
            source_context=ps.DeploymentSettingsSourceContextArgs(
                git=ps.DeploymentSettingsGitSourceArgs(branch=args.branch, repo_dir=args.repo_dir)
            ),
            vcs=ps.DeploymentSettingsVcsArgs(
                provider="github",
                repository=args.github_repository,
                deploy_commits=True,
                preview_pull_requests=True,
                paths=deploy_paths(args.repo_dir, args.stack),
            ),
            operation_context=ps.DeploymentSettingsOperationContextArgs(
                environment_variables={"AWS_REGION": args.region},
                oidc=ps.OperationContextOIDCArgs(
                    aws=ps.AWSOIDCConfigurationArgs(
                        role_arn=role.arn, session_name=f"pulumi-{args.stack}", duration="1h0m0s"
                    )
                ),
                options=ps.OperationContextOptionsArgs(skip_intermediate_deployments=True),
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.role_arn = role.arn
        self.register_outputs({"role_arn": self.role_arn})
