"""The identity project's composition (identity/__main__.py): a platform stack's deploy identity.

Admins apply it from a workstation with their own AWS credentials and Pulumi token, never through
Pulumi Deployments: it creates the deploy role the platform's runs assume, the permissions boundary
every role of the platform carries, the OIDC trust they use,
the organisation's agent pool (which a push-triggered run's stack token may not manage) and the
deployment settings (docs/deploy-path.md). It needs no Kubernetes API, so it works for a private
endpoint too. It reads the platform stack's own file, `Pulumi.<stack>.yaml` at the repository root,
through the same validation as the platform program: one `deployments` section for both projects.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_pulumiservice as ps

from components.deploy_roles import DeployRoles, DeployRolesArgs, agent_token_key_name
from components.deployments import Deployments, DeploymentsArgs
from components.identity import lookup
from components.kms import EncryptionKey, EncryptionKeyArgs
from stacks.config import OFFLINE_KEY, PROJECT, SECRET_PLACEHOLDER, PlatformConfig, validate
from stacks.data import deploy_role_data, read_yaml
from stacks.delivery import REPO_ROOT
from stacks.phase_base import key_window

__all__ = ["IDENTITY_PROJECT", "build_identity", "load", "platform_config", "read_yaml"]

IDENTITY_PROJECT = f"{PROJECT}-identity"


def platform_config(stack: str, *, offline: bool = False) -> PlatformConfig:
    """The platform stack's validated config, read from its file the way the engine reads it:
    Pulumi.yaml's defaults, then the stack file; secure values (which only the platform stack can
    decrypt, and which the identity layer does not use) become the masked placeholder."""
    project_file = read_yaml(REPO_ROOT / "Pulumi.yaml")
    raw: dict[str, str] = {}
    for key, decl in (project_file.get("config") or {}).items():
        if isinstance(decl, dict) and ("value" in decl or "default" in decl):
            raw[key if ":" in key else f"{PROJECT}:{key}"] = _engine(decl.get("value", decl.get("default")))
    secret_keys = set()
    for key, value in (read_yaml(REPO_ROOT / f"Pulumi.{stack}.yaml").get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            raw[full] = SECRET_PLACEHOLDER
            secret_keys.add(full)
        else:
            raw[full] = _engine(value)
    if offline:
        raw[f"{PROJECT}:{OFFLINE_KEY}"] = "true"
    return validate(raw, PROJECT, stack, f"Pulumi.{stack}.yaml", frozenset(secret_keys))


def _engine(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def load() -> PlatformConfig:
    """The platform config of the identity stack's namesake (`identity` stack prod -> Pulumi.prod.yaml)."""
    offline = pulumi.Config(IDENTITY_PROJECT).get_bool(OFFLINE_KEY) or False
    return platform_config(pulumi.get_stack(), offline=offline)


def build_identity(cfg: PlatformConfig) -> dict[str, Any]:
    """The deploy roles, then the agent pool and deployment settings; the stack outputs."""
    deploy = cfg.deployments
    if not deploy.enabled:
        pulumi.log.warn(
            f"Pulumi.{cfg.stack}.yaml: deployments.enabled is false; no deploy identity to manage"
        )
        return {}
    prefix = cfg.prefix
    aws_provider = aws.Provider(
        # The platform's provider name: resources moved from the platform stack keep their provider.
        f"{prefix}-aws",
        region=cfg.region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=cfg.all_tags),
    )
    identity = lookup(aws_provider)
    roles = DeployRoles(
        f"{prefix}-deployments",
        DeployRolesArgs(
            identity=identity,
            organization=deploy.organization,
            project=cfg.project,
            stack=cfg.stack,
            region=cfg.region,
            production=cfg.production,
            previews=deploy.previews(cfg.production),
            existing_oidc_provider_arn=deploy.pulumi_oidc_provider_arn,
            prefix=prefix,
            cluster_name=cfg.cluster_name,
            permissions=deploy_role_data(),
            role_policy_arns=deploy.role_policy_arns,
            operator_role_arns=cfg.cluster.admin_role_arns,
            protect=cfg.protect,
        ),
        opts=pulumi.ResourceOptions(providers={"aws": aws_provider}),
    )
    # The agent pool's token secret needs a customer-managed key (pack rule secret-kms-cmk); the
    # platform's key does not exist yet when this project is first applied.
    key = EncryptionKey(
        agent_token_key_name(prefix),
        EncryptionKeyArgs(
            identity=identity,
            description=f"{prefix}: the Pulumi Deployments agent pool token",
            log_group_patterns=(),
            deletion_window_days=key_window(cfg),
            protect=cfg.protect,
        ),
        opts=pulumi.ResourceOptions(providers={"aws": aws_provider}),
    )
    # The same name as DeployRoles (another type): the pool's and the settings' URNs are those they
    # had in the platform stack, so `pulumi state move` keeps them as they are.
    runs = Deployments(
        f"{prefix}-deployments",
        DeploymentsArgs(
            organization=deploy.organization,
            project=cfg.project,
            stack=cfg.stack,
            region=cfg.region,
            production=cfg.production,
            previews=deploy.previews(cfg.production),
            github_repository=deploy.github_repository,
            branch=deploy.branch,
            repo_dir=deploy.repo_dir,
            role_arn=roles.role_arn,
            agent_pool=deploy.agent.enabled,
            token_key_arn=key.key_arn,
            prefix=prefix,
            protect=cfg.protect,
            deployers_team=deploy.deployers_team,
        ),
        # The Pulumi Cloud provider reads PULUMI_ACCESS_TOKEN, as the CLI does: the admin's token.
        opts=pulumi.ResourceOptions(
            providers={"aws": aws_provider, "pulumiservice": ps.Provider(f"{prefix}-pulumiservice")}
        ),
    )
    outputs: dict[str, Any] = {
        "deployRoleArn": roles.role_arn,
        "boundaryArn": roles.boundary_arn,
    }
    if runs.agent_pool_id is not None:
        outputs["agentPoolId"] = runs.agent_pool_id
    return outputs
