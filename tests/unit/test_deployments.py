"""Pulumi Deployments settings and their OIDC role, for both stacks under mocks; bad config."""

from __future__ import annotations

import json
import re

import pytest

from stacks.config import PROJECT
from tests.configcheck import assert_section_rejected
from tools.mocks import PlanResult, run_program, stack_config

SETTINGS = "pulumiservice:index:DeploymentSettings"


def test_push_deploys_and_pull_requests_preview(plan: PlanResult, configs) -> None:
    deploy = configs[plan.stack].deployments
    settings = plan.one(SETTINGS)
    assert (settings.get("organization"), settings.get("project"), settings.get("stack")) == (
        deploy.organization,
        "eks-platform",
        plan.stack,
    )
    assert settings.get("sourceContext.git.branch") == deploy.branch
    vcs = settings.get("vcs")
    assert vcs["provider"] == "github" and vcs["repository"] == deploy.github_repository
    assert vcs["deployCommits"] is True and vcs["previewPullRequests"] is True
    assert settings.get("operationContext.options.skipIntermediateDeployments") is True
    assert settings.protect is (plan.stack == "prod")


def test_aws_access_is_oidc_only_for_this_stack(plan: PlanResult, configs) -> None:
    deploy = configs[plan.stack].deployments
    role = next(r for r in plan.of_type("aws:iam/role:Role") if r.name.endswith("deployments-deploy"))
    (statement,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/api.pulumi.com/oidc")
    assert statement["Condition"]["StringEquals"] == {"api.pulumi.com/oidc:aud": deploy.organization}
    subject = f"pulumi:deploy:org:{deploy.organization}:project:eks-platform:stack:{plan.stack}:*"
    assert statement["Condition"]["StringLike"] == {"api.pulumi.com/oidc:sub": subject}
    assert role.get("maxSessionDuration") == 3600
    settings = plan.one(SETTINGS)
    assert settings.get("operationContext.oidc.aws.roleARN") == (
        f"arn:aws:iam::123456789012:role/{role.get('name')}"
    )
    assert settings.get("operationContext.environmentVariables") == {"AWS_REGION": "eu-west-1"}
    # No stored credentials anywhere in the settings.
    assert not re.search(r"AKIA|aws_secret_access_key|AWS_SECRET", json.dumps(settings.inputs))


def test_disabled_deployments_create_nothing() -> None:
    raw, _ = stack_config("dev")
    raw[f"{PROJECT}:deployments"] = json.dumps({"enabled": False})
    result = run_program("dev", raw)
    assert result.of_type(SETTINGS) == []
    assert not [r for r in result.records if "deployments" in r.name]
    assert "deployRoleArn" not in result.outputs


BAD = [
    (
        "no-org",
        {"enabled": True, "githubRepository": "example-org/x"},
        "deployments.organization",
        "organization",
    ),
    (
        "bad-repo",
        {"enabled": True, "organization": "acme", "githubRepository": "x"},
        "deployments.githubRepository",
        "owner/repo",
    ),
    ("wildcard-branch", {"branch": "release/*"}, "deployments.branch", "no wildcards"),
    ("escaping-dir", {"repoDir": "../other"}, "deployments.repoDir", "relative path"),
    (
        "oidc-arn",
        {"pulumiOidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/example.com"},
        "deployments.pulumiOidcProviderArn",
        "api.pulumi.com/oidc",
    ),
]


@pytest.mark.parametrize(("deployments", "key", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_deployments_config_is_rejected(deployments, key, message) -> None:
    assert_section_rejected("dev", "deployments", deployments, key, message)
