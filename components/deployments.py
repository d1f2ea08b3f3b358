"""The Pulumi Cloud side of a platform stack's deploy identity: the Deployments settings and the
organisation's agent pool, whose token goes to Secrets Manager for the agent hosts. Created only by
the identity project (identity/, stacks/identity.py), applied by admins with a personal token; the
platform stack only derives the token secret's name from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_pulumiservice as ps

from components.deploy_roles import SESSION_SECONDS, agent_token_secret_name

# What the program reads (DeploymentSettings github.paths): a push touching none of these deploys
# nothing. Not services/ (a tag-bump merge changes only services/<name>/deploy/*.yaml, which ArgoCD
# syncs), not charts/, docs/, tests/, .github/ or identity/ (the identity project is applied by an
# admin, never by a run).
INFRA_PATHS = (
    "Pulumi.yaml",
    "__main__.py",
    "requirements.txt",
    "components/**",
    "stacks/**",
    "platform/**",
    "policy/**",
)


def gate_command(repo_dir: str, stack: str) -> str:
    """The pre-run command of every run of `stack`: the offline plan with `--gate` (tools/plan.py),
    which prints the mandatory findings and fails the run before `pulumi` starts when there is one
    (exit 1) or the stack file is invalid (exit 2).

    One line, because each pre-run command runs in its own shell (Pulumi docs, Deployments >
    Settings > Pre-run Commands). Pulumi's docs do not say whether the executor's dependency step
    (`virtualenv` for Python, Deployments > Settings > Skipping Automatic Dependency Installation)
    runs before or after the pre-run commands, nor in which folder they start, so the line
    assumes neither: it goes to the project folder from the clone's top, and creates or reuses the
    project's virtualenv (`.venv`, Pulumi.yaml `runtime.options.virtualenv`) with requirements.txt,
    the interpreter and packages the program then runs with (a no-op when the step ran first).
    """
    folder = "" if repo_dir in (".", "") else f"/{repo_dir.strip('/')}"
    return (
        f'cd "$(git rev-parse --show-toplevel){folder}"'
        " && python3 -m venv .venv"
        " && .venv/bin/python -m pip install --quiet -r requirements.txt"
        f" && .venv/bin/python -m tools.plan --stack {stack} --gate"
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
    production: bool
    # Whether pull requests are previewed (DeploymentsConfig.previews; never in production).
    previews: bool
    github_repository: str
    branch: str
    repo_dir: str
    role_arn: pulumi.Input[str]
    # Run deployments on a customer-managed agent pool (created here) instead of Pulumi's runners.
    agent_pool: bool
    # The customer-managed key that encrypts the pool's token secret.
    token_key_arn: pulumi.Input[str]
    prefix: str
    protect: bool
    # The Pulumi Cloud team granted write on the stack (who may create its deployments), or None.
    deployers_team: str | None = None


class Deployments(pulumi.ComponentResource):
    """The Pulumi Cloud side: deployment settings so that a push to the stack's branch runs
    `pulumi up` as the deploy role, and (optionally) the organisation's agent pool they run on,
    whose token is written to Secrets Manager (a customer-managed key) for the agent hosts.

    Guarantees: intermediate deployments are skipped so the newest commit wins; pull-request
    previews are off in production (one role per settings, and that role writes). The agent pool is
    an organisation resource, outside a push-triggered run's stack token: only this project, applied
    with a person's token, creates or changes it. The token secret is protected in production but
    has no recovery window: it is a credential re-issued with the pool, not data, and a 30-day
    window would keep its name taken and block a rebuild (the policy pack exempts it likewise).
    It does not create the Pulumi Cloud stack. The pool and the settings are not protected: they
    hold no data, one `make up PROJECT=identity` recreates them, and a change of organization
    replaces both (pulumi-pulumiservice agent_pool.go `organizationName` replaceOnChanges,
    deployment_settings.go Diff: organization, project, stack), which the engine refuses for a
    protected resource (docs/deploy-path.md, "Changing the organization").
    """

    agent_pool_id: pulumi.Output[str] | None

    def __init__(self, name: str, args: DeploymentsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:deployments:Deployments", name, None, opts)
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)
        pool = None
        if args.agent_pool:
            pool = ps.AgentPool(
                f"{name}-agents",
                organization_name=args.organization,
                name=f"{args.project}-{args.stack}",
                description=f"Runs Pulumi Deployments of {args.project}/{args.stack} inside its VPC",
                opts=pulumi.ResourceOptions(parent=self),
            )
            token = aws.secretsmanager.Secret(
                f"{name}-agent-token",
                name=agent_token_secret_name(args.prefix),
                description="Pulumi Deployments agent pool token (read by the agent hosts at boot)",
                kms_key_id=args.token_key_arn,
                recovery_window_in_days=0,
                opts=kept,
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-agent-token",
                secret_id=token.id,
                # The provider marks tokenValue secret (schema: `secret: true`), so the input stays secret.
                secret_string=pool.token_value,
                opts=pulumi.ResourceOptions(parent=self),
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
                preview_pull_requests=args.previews,
                paths=deploy_paths(args.repo_dir, args.stack),
            ),
            operation_context=ps.DeploymentSettingsOperationContextArgs(
                environment_variables={"AWS_REGION": args.region},
                oidc=ps.OperationContextOIDCArgs(
                    aws=ps.AWSOIDCConfigurationArgs(
                        role_arn=args.role_arn,
                        session_name=f"pulumi-{args.stack}",
                        duration=f"{SESSION_SECONDS // 3600}h0m0s",
                    )
                ),
                options=ps.OperationContextOptionsArgs(skip_intermediate_deployments=True),
                # The pack's rules and the rehearsal on the normal deploy path (the Makefile's
                # `--policy-pack policy` covers only `make preview|up`); pulumi-pulumiservice 1.5.0's
                # OperationContextOptions has no policy-pack option (docs/deploy-path.md).
                pre_run_commands=[gate_command(args.repo_dir, args.stack)],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        if args.deployers_team:
            # Write on the stack is what creating a deployment needs (RBAC scope
            # stack_deployment:create); a REST-API deployment may override the branch and commit
            # and still gets the deploy role. Only this team (and org admins) should hold it: the
            # org's default stack permission is an admin setting (docs/deploy-path.md).
            ps.TeamStackPermission(
                f"{name}-deployers",
                organization=args.organization,
                project=args.project,
                stack=args.stack,
                team=args.deployers_team,
                permission=ps.TeamStackPermissionScope.EDIT,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.agent_pool_id = pool.agent_pool_id if pool else None
        self.register_outputs({"agent_pool_id": self.agent_pool_id})
