"""The deploy identity of a platform stack: its AWS roles, Pulumi's OIDC trust, the agent pool and
the Pulumi Deployments settings. Created only by the identity project (identity/, stacks/identity.py),
which admins apply from a workstation; the platform stack never creates them (DESIGN.md, "Who
applies what"), it only derives the deploy role's ARN and the token secret's name from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_pulumiservice as ps

from components.deploy_policy import DeployRoleData, deploy_policy
from components.iam import clip, document
from components.identity import AwsIdentity

PULUMI_OIDC_URL = "https://api.pulumi.com/oidc"
PULUMI_OIDC_HOST = "api.pulumi.com/oidc"
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
# Pulumi Deployments' OIDC subject names the operation:
# `pulumi:deploy:org:<org>:project:<project>:stack:<stack>:operation:<op>:scope:write`
# (pulumi.com docs, Deployments > OIDC > AWS, "Configure the IAM role and trust policy").
# The write role never accepts `preview` in production: a pull request's preview runs the PR's own
# program, and DeploymentSettings name one role for every operation (pulumi-pulumiservice 1.5.0
# schema, operationContext.oidc.aws: roleArn, sessionName, policyArns, duration), so production
# turns pull-request previews off instead.
WRITE_OPERATIONS = ("update", "refresh", "destroy")
PREVIEW_OPERATIONS = ("preview",)
# A full create (EKS ~10-15 min, node groups, add-ons, Helm releases with 10-minute timeouts) or
# destroy outlasts one hour; IAM allows up to 12 h. Role chaining (the kubeconfig assuming the
# role from its own session) is capped at 1 h by STS, but `aws eks get-token` assumes afresh for
# every 15-minute token, so only this outer session has to span the run.
SESSION_SECONDS = 4 * 3600
# What a preview calls in AWS: the program's provider functions (platform/deploy-role.yaml
# `invokes`). These list calls take no resource ARN; nothing reads data or changes anything.
PREVIEW_READS = (
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeRegions",
    "eks:DescribeAddonVersions",
    "logs:DescribeLogGroups",
    "sts:GetCallerIdentity",
)


def preview_policy(identity: AwsIdentity, prefix: str) -> str:
    """The preview role's reads: the program's lookups, the public AMI parameters, its own cluster."""
    return document(
        {"Sid": "Lookups", "Effect": "Allow", "Action": list(PREVIEW_READS), "Resource": "*"},
        {
            "Sid": "PublicAmiParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters"],
            "Resource": f"arn:{identity.partition}:ssm:{identity.region}::parameter/aws/service/*",
        },
        {
            "Sid": "TheStacksCluster",
            "Effect": "Allow",
            "Action": "eks:DescribeCluster",
            "Resource": identity.arn("eks", f"cluster/{prefix}"),
        },
    )


def deploy_paths(repo_dir: str, stack: str) -> list[str]:
    """The repository paths whose change deploys `stack`, relative to the repository root."""
    prefix = "" if repo_dir in (".", "") else f"{repo_dir.strip('/')}/"
    return sorted(f"{prefix}{path}" for path in (*INFRA_PATHS, f"Pulumi.{stack}.yaml"))


def role_name(prefix: str) -> str:
    """The deploy role's physical name, known to both projects before the role exists."""
    return clip(f"{prefix}-deployments-deploy")


def preview_role_name(prefix: str) -> str:
    return clip(f"{prefix}-deployments-preview")


def deploy_role_arn(identity: AwsIdentity, prefix: str) -> str:
    """The deploy role's ARN, derived: the platform stack names it without reading the identity
    stack (a push-triggered run's token may read no other stack; Pulumi docs, Deployments >
    Deployment Permissions)."""
    return f"arn:{identity.partition}:iam::{identity.account_id}:role/{role_name(prefix)}"


def agent_token_secret_name(prefix: str) -> str:
    """The Secrets Manager secret holding the agent pool's token (written by the identity project,
    read by the agent hosts at boot)."""
    return f"{prefix}/deploy-agent-token"


def subjects(organization: str, project: str, stack: str, operations: tuple[str, ...]) -> list[str]:
    """The exact OIDC subjects of this stack's deployments for `operations` (no wildcard: the pack's
    iam-trust-web-identity-scoped rule)."""
    return [
        f"pulumi:deploy:org:{organization}:project:{project}:stack:{stack}:operation:{op}:scope:write"
        for op in operations
    ]


def oidc_trust(
    provider_arn: str, organization: str, project: str, stack: str, operations: tuple[str, ...]
) -> dict[str, object]:
    """Pulumi Deployments of this organization, project and stack, for the named operations only."""
    return {
        "Sid": "PulumiDeploymentsOfThisStack",
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": {
                f"{PULUMI_OIDC_HOST}:aud": organization,
                f"{PULUMI_OIDC_HOST}:sub": subjects(organization, project, stack, operations),
            },
        },
    }


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


def write_operations(production: bool) -> tuple[str, ...]:
    """What the write role's OIDC trust accepts: previews too outside production only."""
    return WRITE_OPERATIONS if production else (*WRITE_OPERATIONS, *PREVIEW_OPERATIONS)


@dataclass(frozen=True, kw_only=True)
class DeployRolesArgs:
    identity: AwsIdentity
    organization: str
    project: str
    stack: str
    region: str
    production: bool
    existing_oidc_provider_arn: str | None
    # The stack's physical-name prefix (`<project>-<stack>`): the IAM names the role may manage.
    prefix: str
    # platform/deploy-role.yaml: the role's inline least-privilege policy.
    permissions: DeployRoleData
    # Extra managed policies (explicit opt-in; none by default).
    role_policy_arns: tuple[str, ...]
    # Roles whose holders run `make bootstrap`/`make up`: they may assume the deploy role, so a
    # laptop run and a Deployments run reach AWS and Kubernetes as the same principal.
    operator_role_arns: tuple[str, ...]
    protect: bool


class DeployRoles(pulumi.ComponentResource):
    """The AWS side of the deploy identity: Pulumi's OIDC provider, the deploy (write) role with its
    least-privilege inline policy, and a read-only preview role.

    Guarantees: no stored AWS keys. The write role's OIDC trust names this organization, project and
    stack and the operations update, refresh and destroy (plus preview outside production); the
    preview role accepts only `operation:preview` and can call only the reads a preview makes.
    Operators (and the role itself, for the kubeconfig) may assume the write role. Sessions last 4
    hours. Protected in production. It is applied by an admin from a workstation (the identity
    project), never by the role it defines, so a change to the role, its policy or its trust has a
    path that does not need the role.
    """

    role_arn: pulumi.Output[str]
    preview_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: DeployRolesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:deployments:DeployRoles", name, None, opts)
        ident = args.identity
        # These resources were children of the platform stack's `Deployments` component of this
        # name; `pulumi state move` (docs/deploy-path.md, "Moving to the identity project") brings
        # them here with that parent, and the alias keeps them instead of replacing them.
        moved = [pulumi.Alias(parent=pulumi.create_urn(name, "platform:deployments:Deployments"))]
        child = pulumi.ResourceOptions(parent=self, aliases=moved)
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect, aliases=moved)
        provider_arn: pulumi.Input[str]
        if args.existing_oidc_provider_arn:
            provider_arn = args.existing_oidc_provider_arn
        else:
            provider_arn = aws.iam.OpenIdConnectProvider(
                f"{name}-pulumi-oidc", url=PULUMI_OIDC_URL, client_id_lists=[args.organization], opts=kept
            ).arn
        own_arn = deploy_role_arn(ident, args.prefix)
        operators = operator_trust(ident.account_id, (own_arn, *args.operator_role_arns))
        where = (args.organization, args.project, args.stack)
        role = aws.iam.Role(
            f"{name}-deploy",
            name=role_name(args.prefix),
            description=f"Pulumi Deployments of {'/'.join(where)}",
            assume_role_policy=pulumi.Output.from_input(provider_arn).apply(
                lambda arn: document(oidc_trust(arn, *where, write_operations(args.production)), operators)
            ),
            max_session_duration=SESSION_SECONDS,
            opts=kept,
        )
        # Inline rather than a customer-managed policy: 10,240 characters instead of 6,144, no
        # policy versions to prune, and it lives and dies with the role.
        aws.iam.RolePolicy(
            f"{name}-deploy",
            name=args.permissions.policy_name,
            role=role.id,
            policy=deploy_policy(
                args.permissions,
                partition=ident.partition,
                account_id=ident.account_id,
                region=args.region,
                prefix=args.prefix,
                role_arn=own_arn,
            ),
            opts=child,
        )
        for i, policy_arn in enumerate(args.role_policy_arns):
            aws.iam.RolePolicyAttachment(
                f"{name}-deploy-{i}", role=role.name, policy_arn=policy_arn, opts=child
            )
        preview = aws.iam.Role(
            f"{name}-preview",
            name=preview_role_name(args.prefix),
            description=f"Read-only previews of {'/'.join(where)}",
            assume_role_policy=pulumi.Output.from_input(provider_arn).apply(
                lambda arn: document(oidc_trust(arn, *where, PREVIEW_OPERATIONS))
            ),
            max_session_duration=3600,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicy(
            f"{name}-preview",
            name="platform-preview",
            role=preview.id,
            policy=preview_policy(ident, args.prefix),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role_arn = role.arn
        self.preview_role_arn = preview.arn
        self.register_outputs({"role_arn": self.role_arn, "preview_role_arn": self.preview_role_arn})


@dataclass(frozen=True, kw_only=True)
class DeploymentsArgs:
    organization: str
    project: str
    stack: str
    region: str
    production: bool
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
    It does not create the Pulumi Cloud stack.
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
                opts=kept,
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
                preview_pull_requests=not args.production,
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
            ),
            opts=kept,
        )
        self.agent_pool_id = pool.agent_pool_id if pool else None
        self.register_outputs({"agent_pool_id": self.agent_pool_id})
