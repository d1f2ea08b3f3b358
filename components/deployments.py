"""Pulumi Deployments: the stack deploys itself on git push, with AWS access through OIDC."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_pulumiservice as ps

from components.deploy_policy import DeployRoleData, StackScope, create_boundary, deploy_policy
from components.iam import clip, document
from components.identity import AwsIdentity

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


# A full create (EKS ~10-15 min, node groups, add-ons, Helm releases with 10-minute timeouts) or
# destroy outlasts one hour; IAM allows up to 12 h. Role chaining (the kubeconfig assuming the
# role from its own session) is capped at 1 h by STS, but `aws eks get-token` assumes afresh for
# every 15-minute token, so only this outer session has to span the run.
SESSION_SECONDS = 4 * 3600


@dataclass(frozen=True, kw_only=True)
class DeploymentsArgs:
    identity: AwsIdentity
    organization: str
    project: str
    stack: str
    region: str
    github_repository: str
    branch: str
    repo_dir: str
    existing_oidc_provider_arn: str | None
    # The stack's physical-name prefix (`<project>-<stack>`): the IAM names the role may manage.
    prefix: str
    # The stack's cluster: the only one whose access entries, add-ons and node groups it may manage.
    cluster_name: str
    # platform/deploy-role.yaml: the role's inline least-privilege policy.
    permissions: DeployRoleData
    # Extra managed policies (explicit opt-in; none by default).
    role_policy_arns: tuple[str, ...]
    # Roles whose holders run `make up`/`make bootstrap`: they may assume the deploy role, so a
    # laptop run and a Deployments run reach Kubernetes as the same principal.
    operator_role_arns: tuple[str, ...]
    # Run deployments on a customer-managed agent pool (created here) instead of Pulumi's runners.
    agent_pool: bool
    protect: bool


def deploy_trust(
    provider_arn: str, organization: str, project: str, stack: str, *more: dict[str, object]
) -> str:
    """Pulumi Deployments of this organization, project and stack (any operation), plus `more`."""
    subject = f"pulumi:deploy:org:{organization}:project:{project}:stack:{stack}:*"
    return document(
        {
            "Sid": "PulumiDeploymentsOfThisStack",
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {f"{PULUMI_OIDC_HOST}:aud": organization},
                "StringLike": {f"{PULUMI_OIDC_HOST}:sub": subject},
            },
        },
        *more,
    )


def operator_trust(account_id: str, principal_arns: tuple[str, ...]) -> dict[str, object]:
    """Who may assume the role with their own AWS credentials: the operators and the role itself.

    The role assumes itself when a Deployments run (already in the role) executes the kubeconfig's
    `aws eks get-token --role <this role>`; IAM no longer lets a role assume itself implicitly.
    The accounts' roots are the principals and `aws:PrincipalArn` names the roles, because IAM
    rejects a trust policy naming a role that does not exist yet (this role, at creation).
    """
    accounts = sorted({account_id} | {arn.split(":")[4] for arn in principal_arns})
    return {
        "Sid": "OperatorsAndTheRoleItself",
        "Effect": "Allow",
        "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]},
        "Action": "sts:AssumeRole",
        "Condition": {"ArnEquals": {"aws:PrincipalArn": sorted(principal_arns)}},
    }


def role_name(name: str) -> str:
    """The deploy role's physical name (known before it exists, so the trust can name it)."""
    return clip(f"{name}-deploy")


class Deployments(pulumi.ComponentResource):
    """Deployment settings so that a push to the stack's branch runs `pulumi up` and pull
    requests run previews, the AWS role those runs assume, and (optionally) the agent pool
    they run on.

    Guarantees: no stored AWS keys: Pulumi Cloud's OIDC token for this organization, project and
    stack (the `sub` claim) is one way into the role; the configured operator roles (and the role
    itself, for the kubeconfig) are the other. The role is the platform's one deploying identity:
    the cluster gives it an admin access entry and the kubeconfig assumes it, so `make up` and a
    Deployments run act on Kubernetes as the same principal. Sessions last 4 hours, longer than a
    full create or destroy. Intermediate deployments are skipped so the newest commit wins. With
    `agent_pool`, deployments run on this stack's own pool (hosts: components/agent.py), whose
    token is only an Output here. The role's permissions are an inline least-privilege policy
    (components/deploy_policy.py, docs/deploy-role.md): the stack's own resources, IAM only on the
    stack's own names, roles only with the stack's permissions boundary (created here, next to the
    role, as `<prefix>-boundary`), and no change to the role itself or to the boundary; extra
    managed policies are an explicit opt-in. The settings, the role and the boundary are protected
    in prod. It does not create the Pulumi Cloud stack.
    """

    role_arn: pulumi.Output[str]
    # The permissions boundary every other role of the stack must carry (the deploy role may
    # create or change roles only with it).
    boundary_arn: pulumi.Output[str]
    agent_pool_id: pulumi.Output[str] | None
    agent_token: pulumi.Output[str] | None

    def __init__(self, name: str, args: DeploymentsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:deployments:Deployments", name, None, opts)
        ident = args.identity
        child = pulumi.ResourceOptions(parent=self)
        provider_arn: pulumi.Input[str]
        if args.existing_oidc_provider_arn:
            provider_arn = args.existing_oidc_provider_arn
        else:
            provider_arn = aws.iam.OpenIdConnectProvider(
                f"{name}-pulumi-oidc", url=PULUMI_OIDC_URL, client_id_lists=[args.organization], opts=child
            ).arn
        physical = role_name(name)
        own_arn = f"arn:{ident.partition}:iam::{ident.account_id}:role/{physical}"
        operators = operator_trust(ident.account_id, (own_arn, *args.operator_role_arns))
        role = aws.iam.Role(
            f"{name}-deploy",
            name=physical,
            description=f"Pulumi Deployments of {args.organization}/{args.project}/{args.stack}",
            assume_role_policy=pulumi.Output.from_input(provider_arn).apply(
                lambda arn: deploy_trust(arn, args.organization, args.project, args.stack, operators)
            ),
            max_session_duration=SESSION_SECONDS,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        scope = StackScope(
            partition=ident.partition,
            account_id=ident.account_id,
            region=args.region,
            project=args.project,
            stack=args.stack,
            prefix=args.prefix,
            cluster_name=args.cluster_name,
        )
        boundary = create_boundary(
            args.permissions, scope, opts=pulumi.ResourceOptions(parent=self, protect=args.protect)
        )
        # Inline rather than a customer-managed policy: 10,240 characters instead of 6,144, no
        # policy versions to prune, and it lives and dies with the role.
        aws.iam.RolePolicy(
            f"{name}-deploy",
            name=args.permissions.policy_name,
            role=role.id,
            policy=deploy_policy(args.permissions, scope, role_arn=own_arn),
            opts=child,
        )
        for i, policy_arn in enumerate(args.role_policy_arns):
            aws.iam.RolePolicyAttachment(
                f"{name}-deploy-{i}", role=role.name, policy_arn=policy_arn, opts=child
            )
        pool = None
        if args.agent_pool:
            pool = ps.AgentPool(
                f"{name}-agents",
                organization_name=args.organization,
                name=f"{args.project}-{args.stack}",
                description=f"Runs Pulumi Deployments of {args.project}/{args.stack} inside its VPC",
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
        ps.DeploymentSettings(
            f"{name}-settings",
            organization=args.organization,
            project=args.project,
            stack=args.stack,
            # `agentPoolId` output is populated since pulumi-pulumiservice v0.40.0 (pinned: 1.5.0).
            agent_pool_id=pool.agent_pool_id if pool else None,
            source_context=ps.DeploymentSettingsSourceContextArgs(
                # A full ref, as in pulumi/pulumi-pulumiservice examples/ts-deployment-settings.
                git=ps.DeploymentSettingsGitSourceArgs(
                    branch=f"refs/heads/{args.branch}", repo_dir=args.repo_dir
                )
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
                        role_arn=role.arn,
                        session_name=f"pulumi-{args.stack}",
                        duration=f"{SESSION_SECONDS // 3600}h0m0s",
                    )
                ),
                options=ps.OperationContextOptionsArgs(skip_intermediate_deployments=True),
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.role_arn = role.arn
        self.boundary_arn = boundary.arn
        self.agent_pool_id = pool.agent_pool_id if pool else None
        self.agent_token = pool.token_value if pool else None
        self.register_outputs(
            {
                "role_arn": self.role_arn,
                "boundary_arn": self.boundary_arn,
                "agent_pool_id": self.agent_pool_id,
            }
        )
