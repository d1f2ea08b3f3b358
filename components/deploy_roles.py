"""The AWS side of a platform stack's deploy identity: Pulumi's OIDC provider, the deploy (write)
role and the stack's permissions boundary. Created only by the identity project (identity/,
stacks/identity.py), which admins apply from a workstation; the platform stack only derives the
deploy role's ARN from here (DESIGN.md, "Who applies what").
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.deploy_policy import (
    DeployIdentity,
    DeployRoleData,
    create_boundary,
    deploy_policy,
    services_policy,
    services_policy_name,
    stack_scope,
)
from components.iam import clip, document
from components.identity import AwsIdentity

PULUMI_OIDC_URL = "https://api.pulumi.com/oidc"
PULUMI_OIDC_HOST = "api.pulumi.com/oidc"
# Pulumi Deployments' OIDC subject names the operation:
# `pulumi:deploy:org:<org>:project:<project>:stack:<stack>:operation:<op>:scope:write`
# (pulumi.com docs, Deployments > OIDC > AWS, "Configure the IAM role and trust policy").
# The write role never accepts `preview` in production: a pull request's preview runs the PR's own
# program, and DeploymentSettings name one role for every operation (pulumi-pulumiservice 1.5.0
# schema, operationContext.oidc.aws: roleArn, sessionName, policyArns, duration), so production
# turns pull-request previews off instead. Dev previews pull requests with its write role: there is
# no second role for previews, since the settings could not name it.
WRITE_OPERATIONS = ("update", "refresh", "destroy")
PREVIEW_OPERATIONS = ("preview",)
# A full create (EKS ~10-15 min, node groups, add-ons, Helm releases with 10-minute timeouts) or
# destroy outlasts one hour; IAM allows up to 12 h. Role chaining (the kubeconfig assuming the
# role from its own session) is capped at 1 h by STS, but `aws eks get-token` assumes afresh for
# every 15-minute token, so only this outer session has to span the run.
SESSION_SECONDS = 4 * 3600


def role_name(prefix: str) -> str:
    """The deploy role's physical name, known to both projects before the role exists."""
    return clip(f"{prefix}-deployments-deploy")


def agent_token_secret_name(prefix: str) -> str:
    """The Secrets Manager secret holding the agent pool's token (written by the identity project,
    components/deployments.py; read by the agent hosts at boot, by this name)."""
    return f"{prefix}/deploy-agent-token"


def agent_token_key_name(prefix: str) -> str:
    """The token secret's own KMS key (an EncryptionKey of this name: alias `alias/<name>`)."""
    return f"{prefix}-deploy-agent-token"


def kept_off(identity: AwsIdentity, prefix: str) -> DeployIdentity:
    """The identity project's resources of the stack, which its deploy role may never change."""
    return DeployIdentity(
        role_arn=deploy_role_arn(identity, prefix),
        token_secret_name=agent_token_secret_name(prefix),
        token_key_alias=f"alias/{agent_token_key_name(prefix)}",
    )


def deploy_role_arn(identity: AwsIdentity, prefix: str) -> str:
    """The deploy role's ARN, derived: the platform stack names it without reading the identity
    stack (a push-triggered run's token may read no other stack; Pulumi docs, Deployments >
    Deployment Permissions)."""
    return f"arn:{identity.partition}:iam::{identity.account_id}:role/{role_name(prefix)}"


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


def operator_trust(partition: str, account_id: str, principal_arns: tuple[str, ...]) -> dict[str, object]:
    """Who may assume the role with their own AWS credentials: the operators and the role itself.

    The role assumes itself when a Deployments run (already in the role) executes the kubeconfig's
    `aws eks get-token --role <this role>`; IAM no longer lets a role assume itself implicitly.
    The accounts' roots are the principals and `aws:PrincipalArn` names the roles, because IAM
    rejects a trust policy naming a role that does not exist yet (this role, at creation). The
    root ARNs carry the identity's partition (aws, aws-cn, aws-us-gov), as every ARN the program builds.
    """
    accounts = sorted({account_id} | {arn.split(":")[4] for arn in principal_arns})
    return {
        "Sid": "OperatorsAndTheRoleItself",
        "Effect": "Allow",
        "Principal": {"AWS": [f"arn:{partition}:iam::{a}:root" for a in accounts]},
        "Action": "sts:AssumeRole",
        "Condition": {"ArnEquals": {"aws:PrincipalArn": sorted(principal_arns)}},
    }


def write_operations(previews: bool) -> tuple[str, ...]:
    """What the write role's OIDC trust accepts: previews too when the stack previews pull requests
    (deployments.previewPullRequests; never in production)."""
    return (*WRITE_OPERATIONS, *PREVIEW_OPERATIONS) if previews else WRITE_OPERATIONS


@dataclass(frozen=True, kw_only=True)
class DeployRolesArgs:
    identity: AwsIdentity
    organization: str
    project: str
    stack: str
    region: str
    production: bool
    # Whether pull requests are previewed with this role (DeploymentsConfig.previews).
    previews: bool
    existing_oidc_provider_arn: str | None
    # The stack's physical-name prefix (`<project>-<stack>`): the IAM names the role may manage.
    prefix: str
    # The stack's cluster: the only one whose access entries, add-ons and node groups it may manage.
    cluster_name: str
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
    least-privilege inline policy, and the stack's permissions boundary. No other role: Deployments
    settings name one role for every operation (WRITE_OPERATIONS above).

    Guarantees: no stored AWS keys. The write role's OIDC trust names this organization, project and
    stack and the operations update, refresh and destroy (plus preview outside production).
    Operators (and the role itself, for the kubeconfig) may assume the write role. Sessions last 4
    hours. The permissions boundary (`<prefix>-boundary`, components/deploy_policy.py) is created
    here, so the deploy role, which may create or change roles only with it, never creates or
    changes it; the platform stack derives its ARN. The deploy role does not carry it (the boundary
    allows no IAM write, and creating the stack's bounded roles is the deploy role's job; its own
    policy denies it any change to itself, any `<prefix>-deployments-*` role and the boundary).
    Protected in production. It is applied by an admin from a workstation (the identity project),
    never by the role it defines, so a change to the role, its policy, its trust or the boundary
    has a path that does not need the role.
    """

    role_arn: pulumi.Output[str]
    boundary_arn: pulumi.Output[str]

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
        scope = stack_scope(
            ident,
            region=args.region,
            project=args.project,
            stack=args.stack,
            prefix=args.prefix,
            cluster_name=args.cluster_name,
        )
        # Its old parent too: main's platform stack created it next to the deploy role.
        boundary = create_boundary(args.permissions, scope, identity=kept_off(ident, args.prefix), opts=kept)
        operators = operator_trust(ident.partition, ident.account_id, (own_arn, *args.operator_role_arns))
        where = (args.organization, args.project, args.stack)
        role = aws.iam.Role(
            f"{name}-deploy",
            name=role_name(args.prefix),
            description=f"Pulumi Deployments of {'/'.join(where)}",
            assume_role_policy=pulumi.Output.from_input(provider_arn).apply(
                lambda arn: document(oidc_trust(arn, *where, write_operations(args.previews)), operators)
            ),
            max_session_duration=SESSION_SECONDS,
            opts=kept,
        )
        # Two policies, for IAM's size quotas: the grants outside IAM in a customer managed policy
        # (6,144 characters), the IAM grants and every Deny inline (10,240 for all of a role's
        # inline policies); one inline policy no longer fit a long stack name and region (review
        # 20). Both are this project's, applied by admins; the inline Deny keeps the role off its
        # own managed policy (`<prefix>-deployments-*`, KeepTheBoundaryPolicy).
        services = aws.iam.Policy(
            f"{name}-deploy-services",
            name=services_policy_name(args.prefix),
            description=f"Pulumi Deployments of {'/'.join(where)}: grants outside IAM (docs/deploy-role.md)",
            policy=services_policy(args.permissions, scope),
            opts=kept,
        )
        attached = aws.iam.RolePolicyAttachment(
            f"{name}-deploy-services", role=role.name, policy_arn=services.arn, opts=kept
        )
        # After the attachment: a stack that had one inline policy never runs without its grants.
        aws.iam.RolePolicy(
            f"{name}-deploy",
            name=args.permissions.policy_name,
            role=role.id,
            policy=deploy_policy(args.permissions, scope, identity=kept_off(ident, args.prefix)),
            # Protected like the role: it holds every IAM grant and every Deny of the role.
            opts=pulumi.ResourceOptions(
                parent=self, aliases=moved, depends_on=[attached], protect=args.protect
            ),
        )
        for i, policy_arn in enumerate(args.role_policy_arns):
            aws.iam.RolePolicyAttachment(
                f"{name}-deploy-{i}", role=role.name, policy_arn=policy_arn, opts=child
            )
        self.role_arn = role.arn
        self.boundary_arn = boundary.arn
        self.register_outputs({"role_arn": self.role_arn, "boundary_arn": self.boundary_arn})
