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
    # A full ref, as in pulumi/pulumi-pulumiservice examples/ts-deployment-settings/index.ts.
    assert settings.get("sourceContext.git.branch") == f"refs/heads/{deploy.branch}"
    vcs = settings.get("vcs")
    assert vcs["provider"] == "github" and vcs["repository"] == deploy.github_repository
    assert vcs["deployCommits"] is True and vcs["previewPullRequests"] is True
    assert settings.get("operationContext.options.skipIntermediateDeployments") is True
    assert settings.protect is (plan.stack == "prod")


def test_aws_access_is_oidc_only_for_this_stack(plan: PlanResult, configs) -> None:
    deploy = configs[plan.stack].deployments
    role = deploy_role(plan)
    statement, _ = json.loads(role.get("assumeRolePolicy"))["Statement"]
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/api.pulumi.com/oidc")
    assert statement["Condition"]["StringEquals"] == {"api.pulumi.com/oidc:aud": deploy.organization}
    subject = f"pulumi:deploy:org:{deploy.organization}:project:eks-platform:stack:{plan.stack}:*"
    assert statement["Condition"]["StringLike"] == {"api.pulumi.com/oidc:sub": subject}
    settings = plan.one(SETTINGS)
    assert settings.get("operationContext.oidc.aws.roleARN") == (
        f"arn:aws:iam::123456789012:role/{role.get('name')}"
    )
    assert settings.get("operationContext.environmentVariables") == {"AWS_REGION": "eu-west-1"}
    # No stored credentials anywhere in the settings.
    assert not re.search(r"AKIA|aws_secret_access_key|AWS_SECRET", json.dumps(settings.inputs))


def deploy_role(plan: PlanResult):
    (role,) = [r for r in plan.of_type("aws:iam/role:Role") if r.name.endswith("deployments-deploy")]
    return role


def test_operators_and_the_role_itself_may_assume_the_deploy_role(plan: PlanResult, configs) -> None:
    """`make up` (an admin) and a Deployments run (already the role) both run the kubeconfig's
    `aws eks get-token --role <deploy role>`; a role may assume itself only when its trust says so."""
    role = deploy_role(plan)
    _, operators = json.loads(role.get("assumeRolePolicy"))["Statement"]
    own = f"arn:aws:iam::123456789012:role/{role.get('name')}"
    assert operators["Action"] == "sts:AssumeRole"
    assert operators["Principal"] == {"AWS": ["arn:aws:iam::123456789012:root"]}
    assert operators["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": sorted([own, *configs[plan.stack].cluster.admin_role_arns])}
    }


def test_kubeconfig_assumes_the_deploy_role_which_is_cluster_admin(plan: PlanResult) -> None:
    role_arn = plan.outputs["deployRoleArn"]
    cluster = plan.one("eks:index:Cluster")
    # pulumi-eks turns providerCredentialOpts.roleArn into `aws eks get-token ... --role <arn>`
    # for its own provider and the kubeconfig output (nodejs/eks/cluster/cluster.ts).
    assert cluster.get("providerCredentialOpts") == {"roleArn": role_arn}
    entry = cluster.get("accessEntries.deploy")
    assert entry["principalArn"] == role_arn and entry["type"] == "STANDARD"
    assert entry["accessPolicies"]["cluster-admin"] == {
        "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
        "accessScope": {"type": "cluster"},
    }
    # The role exists before the cluster that names it.
    assert deploy_role(plan).urn in cluster.dependencies


def test_deploy_sessions_outlast_a_full_create_or_destroy(plan: PlanResult) -> None:
    assert deploy_role(plan).get("maxSessionDuration") == 4 * 3600
    assert plan.one(SETTINGS).get("operationContext.oidc.aws.duration") == "4h0m0s"


def test_prod_deploys_on_its_own_agent_pool_and_dev_on_pulumi_runners(plans: dict[str, PlanResult]) -> None:
    prod, dev = plans["prod"], plans["dev"]
    pool = prod.one("pulumiservice:index:AgentPool")
    assert pool.get("organizationName") == "example-org" and pool.protect
    assert pool.urn in prod.one(SETTINGS).dependencies
    assert "agentPoolId" in prod.one(SETTINGS).raw_inputs
    assert dev.of_type("pulumiservice:index:AgentPool") == []
    assert "agentPoolId" not in dev.one(SETTINGS).raw_inputs


def test_disabled_deployments_create_nothing() -> None:
    raw, _ = stack_config("dev")
    raw[f"{PROJECT}:deployments"] = json.dumps({"enabled": False})
    result = run_program("dev", raw)
    assert result.of_type(SETTINGS) == []
    assert not [r for r in result.records if "deployments" in r.name]
    assert "deployRoleArn" not in result.outputs


BAD = [
    (
        "prod-without-agents",
        {"enabled": True, "organization": "acme", "githubRepository": "acme/x", "agent": {"enabled": False}},
        "deployments.agent.enabled",
        "private",
    ),
    ("agent-latest", {"agent": {"version": "latest"}}, "deployments.agent.version", "never `latest`"),
    ("bootstrap-without-agents", {"bootstrap": True}, "deployments.bootstrap", "agents apply them"),
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
    assert_section_rejected("prod", "deployments", deployments, key, message)
