"""ECR repositories and GitHub Actions CI roles, for both stacks under mocks; delivery config errors."""

from __future__ import annotations

import json

import pytest

from model.records import PlanResult
from stacks.config import PROJECT
from tests.configcheck import assert_section_rejected
from tests.stackinfo import is_production
from tools.mocks import stack_config

REPO = "aws:ecr/repository:Repository"


def test_one_hardened_repository_per_service(plan: PlanResult, configs) -> None:
    services = [s.name for s in configs[plan.stack].delivery.services]
    repos = plan.of_type(REPO)
    assert sorted(r.get("name") for r in repos) == sorted(f"eks-platform-{plan.stack}/{s}" for s in services)
    for repo in repos:
        assert repo.get("imageTagMutability") == "IMMUTABLE"
        assert repo.get("imageScanningConfiguration") == {"scanOnPush": True}
        assert repo.get("encryptionConfigurations.0.encryptionType") == "KMS"
        assert repo.protect is is_production(plan.stack)


def test_lifecycle_keeps_tagged_and_expires_untagged(plan: PlanResult, configs) -> None:
    delivery = configs[plan.stack].delivery
    for policy in plan.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy"):
        rules = {r["selection"]["tagStatus"]: r for r in json.loads(policy.get("policy"))["rules"]}
        assert rules["untagged"]["selection"]["countNumber"] == delivery.untagged_image_days
        assert rules["tagged"]["selection"]["countType"] == "imageCountMoreThan"
        assert rules["tagged"]["selection"]["countNumber"] == delivery.keep_tagged_images


def test_ci_role_trusts_one_repository_and_branch(plan: PlanResult, configs) -> None:
    (oidc,) = [
        p
        for p in plan.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
        if p.name.endswith("github-oidc")
    ]
    assert oidc.get("url") == "https://token.actions.githubusercontent.com"
    assert oidc.get("clientIdLists") == ["sts.amazonaws.com"]
    for svc in configs[plan.stack].delivery.services:
        role = next(
            r for r in plan.of_type("aws:iam/role:Role") if r.name.endswith(f"registry-{svc.name}-ci")
        )
        (statement,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
        assert statement["Principal"] == {
            "Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
        }
        conditions = statement["Condition"]
        assert set(conditions) == {"StringEquals"}  # no StringLike wildcards on the subject
        assert conditions["StringEquals"]["token.actions.githubusercontent.com:sub"] == (
            f"{svc.subject}:ref:refs/heads/{svc.branch}"
        )
        assert svc.subject == (svc.github_subject or f"repo:{svc.github_repository}")
        assert conditions["StringEquals"]["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
        # Only the service's own two workflow files on that branch, not every workflow of the
        # branch (which share the `sub`): the jobs that assume the role are defined there.
        assert conditions["StringEquals"]["token.actions.githubusercontent.com:job_workflow_ref"] == [
            f"{svc.github_repository}/.github/workflows/{svc.name}{suffix}.yml@refs/heads/{svc.branch}"
            for suffix in ("", "-promote")
        ]


def test_no_two_ci_roles_trust_the_same_workflow(plan: PlanResult) -> None:
    """Every service's role trusts its own files: no workflow can push as another service."""
    seen: dict[str, str] = {}
    for role in [r for r in plan.of_type("aws:iam/role:Role") if r.name.endswith("-ci")]:
        (statement,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
        for workflow in statement["Condition"]["StringEquals"][
            "token.actions.githubusercontent.com:job_workflow_ref"
        ]:
            assert workflow not in seen, f"{workflow} is trusted by {seen[workflow]} and {role.name}"
            seen[workflow] = role.name
    assert seen


def test_ci_role_pushes_to_its_own_repository_only(plan: PlanResult) -> None:
    for policy in [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("-ci")]:
        service = policy.name.removeprefix(f"eks-platform-{plan.stack}-registry-").removesuffix("-ci")
        statements = {s["Sid"]: s for s in json.loads(policy.get("policy"))["Statement"]}
        assert statements["Login"]["Action"] == "ecr:GetAuthorizationToken"
        push = statements["PushThisRepositoryOnly"]
        assert push["Resource"] == (
            f"arn:aws:ecr:eu-west-1:123456789012:repository/eks-platform-{plan.stack}/{service}"
        )
        assert "ecr:PutImage" in push["Action"] and not any(a.endswith("*") for a in push["Action"])
        assert set(statements) == {"Login", "PushThisRepositoryOnly"}


def test_outputs_name_each_services_repository_and_role(plan: PlanResult, configs) -> None:
    names = {s.name for s in configs[plan.stack].delivery.services}
    assert set(plan.outputs["repositoryUrls"]) == names == set(plan.outputs["ciRoleArns"])
    for name, url in plan.outputs["repositoryUrls"].items():
        assert url == f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/eks-platform-{plan.stack}/{name}"


def test_existing_oidc_provider_is_reused() -> None:
    from tools.mocks import run_program

    raw, _ = stack_config("dev")
    delivery = json.loads(raw[f"{PROJECT}:delivery"])
    arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    raw[f"{PROJECT}:delivery"] = json.dumps({**delivery, "githubOidcProviderArn": arn})
    result = run_program("dev", raw)
    assert not [
        p
        for p in result.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
        if p.name.endswith("github-oidc")
    ]
    role = next(r for r in result.of_type("aws:iam/role:Role") if r.name.endswith("-ci"))
    assert json.loads(role.get("assumeRolePolicy"))["Statement"][0]["Principal"]["Federated"] == arn


SERVICE = {"name": "catalog", "githubRepository": "example-org/eks-platform"}
BAD_DELIVERY = [
    (
        "repo-url",
        {"gitops": {"repoUrl": "git@github.com:example-org/eks-platform.git"}},
        "gitops.repoUrl",
        "https://",
    ),
    (
        "repo-url-http",
        {"gitops": {"repoUrl": "http://github.com/example-org/x.git"}},
        "gitops.repoUrl",
        "https://",
    ),
    ("duplicate", {"services": [SERVICE, SERVICE]}, "delivery.services", "unique"),
    ("not-dns", {"services": [{**SERVICE, "name": "Catalog_API"}]}, "services.0.name", "DNS label"),
    ("too-long", {"services": [{**SERVICE, "name": "a" * 64}]}, "services.0.name", "DNS label"),
    (
        "github-repo",
        {"services": [{**SERVICE, "githubRepository": "eks-platform"}]},
        "services.0.githubRepository",
        "owner/repo",
    ),
    (
        "github-subject-wildcard",
        {"services": [{**SERVICE, "githubSubject": "repo:example-org/*"}]},
        "services.0.githubSubject",
        "no wildcard",
    ),
    (
        "github-subject-with-ref",
        {"services": [{**SERVICE, "githubSubject": "repo:example-org/eks-platform:ref:refs/heads/main"}]},
        "services.0.githubSubject",
        "before `:ref:`",
    ),
    ("branch-wildcard", {"services": [{**SERVICE, "branch": "release/*"}]}, "services.0.branch", "wildcards"),
    (
        "oidc-arn",
        {"githubOidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/example.com"},
        "githubOidcProviderArn",
        "GitHub Actions OIDC",
    ),
    ("retention", {"keepTaggedImages": 0}, "keepTaggedImages", "at least 1, got 0"),
    ("typo", {"servcies": []}, "delivery.servcies", "unknown key"),
]


@pytest.mark.parametrize(
    ("delivery", "key", "message"), [c[1:] for c in BAD_DELIVERY], ids=[c[0] for c in BAD_DELIVERY]
)
def test_bad_delivery_config_is_rejected(delivery, key, message) -> None:
    assert_section_rejected("dev", "delivery", delivery, key, message)


def test_repositories_use_the_registry_customer_managed_key(plan: PlanResult) -> None:
    (key,) = [k for k in plan.of_type("aws:kms/key:Key") if k.name.endswith("registry-images-key")]
    assert key.get("enableKeyRotation") is True
    for repo in plan.of_type(REPO):
        (encryption,) = repo.get("encryptionConfigurations")
        assert encryption == {
            "encryptionType": "KMS",
            "kmsKey": f"arn:aws:kms:eu-west-1:123456789012:key/{key.name}",
        }


def test_a_repositorys_immutable_subject_is_what_the_ci_role_trusts() -> None:
    """GitHub issues immutable subject claims (owner and repository IDs in `sub`) for repositories
    created, renamed or transferred after 2026-06-18 (GitHub changelog, 2026-04-23): the exact
    name-based `sub` would never match. githubSubject carries the repository's own; the workflow
    files (`job_workflow_ref`) stay name-based."""
    from tools.mocks import run_program

    raw, _ = stack_config("dev")
    delivery = json.loads(raw[f"{PROJECT}:delivery"])
    subject = "repo:example-org@1234567/eks-platform@89012345"
    first = {**delivery["services"][0], "githubSubject": subject}
    raw[f"{PROJECT}:delivery"] = json.dumps({**delivery, "services": [first, *delivery["services"][1:]]})
    result = run_program("dev", raw)
    role = next(
        r for r in result.of_type("aws:iam/role:Role") if r.name.endswith(f"registry-{first['name']}-ci")
    )
    conditions = json.loads(role.get("assumeRolePolicy"))["Statement"][0]["Condition"]["StringEquals"]
    assert (
        conditions["token.actions.githubusercontent.com:sub"]
        == f"{subject}:ref:refs/heads/{first.get('branch', 'main')}"
    )
    assert conditions["token.actions.githubusercontent.com:job_workflow_ref"][0].startswith(
        f"{first['githubRepository']}/.github/workflows/{first['name']}.yml@"
    )
