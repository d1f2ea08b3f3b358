"""The deploy role's least-privilege policy against the plan: every AWS type and provider call the
program uses maps to IAM prefixes (platform/deploy-role.yaml) that the policy the program really
sends grants, and the sent policy keeps IAM to the stack's own names (docs/deploy-role.md).

Type tokens: pulumi_aws, pulumi_eks, pulumi_awsx as installed; the API calls behind them:
terraform-provider-aws internal/service/<service>/ (eks/cluster.go calls CreateCluster with the
role ARN, so iam:PassRole; eks/node_group.go likewise with the node role).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from components.deploy_policy import DeployRoleData, deploy_policy
from policy.model import Level
from policy.rules_deploy import ACCOUNT_LEVEL, DEPLOY_POLICY_NAME, INLINE_POLICY_MAX, compact_size
from stacks.data import DEPLOY_ROLE_FILE, PLATFORM_DIR, deploy_role_data
from tests.configcheck import assert_section_rejected
from tools.mocks import ACCOUNT_ID, ROOT, PlanResult, stack_config
from tools.policy_check import evaluate

DATA_FILE = f"platform/{DEPLOY_ROLE_FILE}"
# Packages whose resources the AWS provider creates (remote components included).
AWS_PACKAGES = ("aws:", "eks:", "awsx:")
# The offline engine answers every provider call the program makes (else NotImplementedError).
MOCK_TOKEN = re.compile(r'token == "(aws:[^"]+)"')


def aws_types(plan: PlanResult) -> list[str]:
    return sorted({r.type for r in plan.records if r.type.startswith(AWS_PACKAGES)})


def program_invokes() -> list[str]:
    return sorted(set(MOCK_TOKEN.findall((ROOT / "tools" / "mocks.py").read_text(encoding="utf-8"))))


def sent_policy(plan: PlanResult, data: DeployRoleData) -> dict[str, Any]:
    """The deploy role's inline policy as the program registered it (the identity project's plan,
    identity/, which creates the role: `identity_plans[stack]`)."""
    found = [
        r
        for r in plan.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.get("name") == data.policy_name and r.name.endswith("-deployments-deploy")
    ]
    assert len(found) == 1, f"expected the deploy role's policy {data.policy_name!r}, found {len(found)}"
    policy: dict[str, Any] = json.loads(found[0].get("policy"))
    return policy


def statements(policy: dict[str, Any], effect: str = "Allow") -> list[dict[str, Any]]:
    return [s for s in policy["Statement"] if s["Effect"] == effect]


def listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def granted_prefixes(policy: dict[str, Any]) -> set[str]:
    return {a.split(":", 1)[0] for s in statements(policy) for a in listed(s["Action"])}


def ungranted(tokens: list[str], mapping: dict[str, tuple[str, ...]], policy: dict[str, Any]) -> list[str]:
    """Tokens missing from `mapping`, or mapped to a prefix the policy does not grant."""
    granted, problems = granted_prefixes(policy), []
    for token in tokens:
        if token not in mapping:
            problems.append(f"{token} is not in {DATA_FILE}: add it with the IAM prefixes its calls need")
        elif missing := sorted(set(mapping[token]) - granted):
            problems.append(
                f"{token} needs {', '.join(missing)}, which the deploy role's policy does not grant"
            )
    return problems


def region_of(plan: PlanResult) -> str:
    return str(plan.one("pulumi:providers:aws").get("region"))


def iam_problems(policy: dict[str, Any], prefix: str, region: str, data: DeployRoleData) -> list[str]:
    """Allowed IAM (and sts) grants that reach beyond the stack's own names and OIDC issuers."""
    arn = f"arn:aws:iam::{ACCOUNT_ID}"
    own = tuple(f"{arn}:{kind}/{prefix}-" for kind in ("role", "policy", "instance-profile"))
    issuers = {f"{arn}:oidc-provider/{h.format(region=region)}" for h in data.iam.oidc_hosts}
    problems = []
    for s in statements(policy):
        actions = [a for a in listed(s["Action"]) if a.startswith(("iam:", "sts:AssumeRole"))]
        for action in actions:
            if "*" in action:
                problems.append(f"{s.get('Sid')}: {action} is a wildcard")
            for resource in listed(s["Resource"]):
                slr = action == "iam:CreateServiceLinkedRole" and resource == f"{arn}:role/aws-service-role/*"
                oidc = "OpenIDConnectProvider" in action and resource in issuers
                if not (resource.startswith(own) or slr or oidc):
                    problems.append(f"{s.get('Sid')}: {action} on {resource}, outside {prefix}-*")
    return problems


def account_level(policy: dict[str, Any]) -> list[str]:
    return sorted(
        a
        for s in statements(policy)
        for a in listed(s["Action"])
        if a in ("*", "*:*") or ACCOUNT_LEVEL.match(a)
    )


# -- the committed stacks --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data() -> DeployRoleData:
    return deploy_role_data()


def test_every_aws_type_in_the_plan_is_granted(
    plan: PlanResult, data: DeployRoleData, identity_plans: dict[str, PlanResult]
) -> None:
    problems = ungranted(aws_types(plan), data.types, sent_policy(identity_plans[plan.stack], data))
    assert not problems, "\n".join(problems)


def test_every_provider_call_is_granted(
    plan: PlanResult, data: DeployRoleData, identity_plans: dict[str, PlanResult]
) -> None:
    assert "aws:index/getCallerIdentity:getCallerIdentity" in program_invokes()
    problems = ungranted(program_invokes(), data.invokes, sent_policy(identity_plans[plan.stack], data))
    assert not problems, "\n".join(problems)


def test_the_sent_policy_keeps_iam_to_the_stack(
    plan: PlanResult, data: DeployRoleData, identity_plans: dict[str, PlanResult]
) -> None:
    policy = sent_policy(identity_plans[plan.stack], data)
    prefix = f"{plan.project}-{plan.stack}"
    assert account_level(policy) == []
    assert iam_problems(policy, prefix, region_of(plan), data) == []
    conditions = {s["Sid"]: s.get("Condition", {}) for s in statements(policy)}
    assert conditions["PassOwnRoles"] == {
        "StringEquals": {"iam:PassedToService": sorted(data.iam.pass_role_to)}
    }
    assert conditions["ServiceLinkedRoles"]["StringEquals"]["iam:AWSServiceName"]
    # The role may not widen itself: a change to its permissions needs an admin's `make up`.
    denied = statements(policy, "Deny")
    assert [s["Resource"] for s in denied] == [f"arn:aws:iam::{ACCOUNT_ID}:role/{prefix}-deployments-deploy"]
    assert {"iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy"} <= set(
        denied[0]["Action"]
    )
    assert compact_size(json.dumps(policy)) <= INLINE_POLICY_MAX


def test_every_iam_name_in_the_plan_fits_the_prefix(plan: PlanResult) -> None:
    prefix = f"{plan.project}-{plan.stack}-"
    named = [
        r
        for r in plan.records
        if r.type in ("aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile", "aws:iam/policy:Policy")
    ]
    assert named and all(str(r.get("name")).startswith(prefix) for r in named), [r.get("name") for r in named]


def test_every_attached_managed_policy_is_attachable(
    plan: PlanResult, data: DeployRoleData, identity_plans: dict[str, PlanResult]
) -> None:
    policy = sent_policy(identity_plans[plan.stack], data)
    (attach,) = [s for s in statements(policy) if s["Sid"] == "AttachKnownPolicies"]
    allowed = attach["Condition"]["ArnLike"]["iam:PolicyARN"]
    attached = [r.get("policyArn") for r in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")]
    assert attached and all(a in allowed for a in attached), sorted(set(attached) - set(allowed))


def test_no_managed_policy_on_the_deploy_role_by_default(
    plan: PlanResult, identity_plans: dict[str, PlanResult]
) -> None:
    attachments = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    roles = [r.get("role") for p in (plan, identity_plans[plan.stack]) for r in p.of_type(attachments)]
    assert not [r for r in roles if str(r).endswith("-deployments-deploy")]


def test_the_policy_name_is_the_one_the_policy_pack_knows(data: DeployRoleData) -> None:
    assert data.policy_name == DEPLOY_POLICY_NAME


# -- each check fires on a bad input ----------------------------------------------------------------


def build(data: DeployRoleData, prefix: str = "eks-platform-dev") -> dict[str, Any]:
    return json.loads(
        deploy_policy(
            data,
            partition="aws",
            account_id=ACCOUNT_ID,
            region="eu-west-1",
            prefix=prefix,
            role_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{prefix}-deployments-deploy",
        )
    )


def with_statement(policy: dict[str, Any], statement: dict[str, Any]) -> dict[str, Any]:
    return {**policy, "Statement": [*policy["Statement"], {"Effect": "Allow", **statement}]}


def test_a_type_missing_from_the_data_file_is_named(data: DeployRoleData) -> None:
    problems = ungranted(["aws:rds/instance:Instance"], data.types, build(data))
    assert problems == [
        f"aws:rds/instance:Instance is not in {DATA_FILE}: add it with the IAM prefixes its calls need"
    ]


def test_a_prefix_the_policy_does_not_grant_is_named(data: DeployRoleData) -> None:
    mapping = {**data.types, "aws:rds/instance:Instance": ("rds",)}
    assert ungranted(["aws:rds/instance:Instance"], mapping, build(data)) == [
        "aws:rds/instance:Instance needs rds, which the deploy role's policy does not grant"
    ]
    assert (
        ungranted(["aws:rds/instance:Instance"], mapping, with_statement(build(data), {"Action": "rds:*"}))
        == []
    )


@pytest.mark.parametrize(
    ("statement", "expect"),
    [
        ({"Action": "iam:*", "Resource": "*"}, "iam:* is a wildcard"),
        ({"Action": "iam:CreateRole", "Resource": "*"}, "iam:CreateRole on *"),
        ({"Action": "iam:PutRolePolicy", "Resource": f"arn:aws:iam::{ACCOUNT_ID}:role/other-*"}, "outside"),
        ({"Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{ACCOUNT_ID}:role/admin"}, "outside"),
        (
            {
                "Action": "iam:CreateOpenIDConnectProvider",
                "Resource": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/*",
            },
            "outside",
        ),
    ],
)
def test_iam_beyond_the_stack_is_caught(data: DeployRoleData, statement: dict[str, Any], expect: str) -> None:
    assert iam_problems(build(data), "eks-platform-dev", "eu-west-1", data) == []
    problems = iam_problems(with_statement(build(data), statement), "eks-platform-dev", "eu-west-1", data)
    assert any(expect in p for p in problems), problems


@pytest.mark.parametrize(
    "action",
    [
        "*",
        "organizations:ListAccounts",
        "account:PutContactInformation",
        "iam:CreateUser",
        "iam:CreateAccessKey",
        "iam:UpdateAccountPasswordPolicy",
    ],
)
def test_account_level_actions_are_caught(data: DeployRoleData, action: str) -> None:
    assert account_level(build(data)) == []
    assert account_level(with_statement(build(data), {"Action": action, "Resource": "*"})) == [action]


def test_the_size_check_counts_like_iam(data: DeployRoleData) -> None:
    assert compact_size('{"a": [1, 2]}\n') == len('{"a":[1,2]}')
    many = {"Action": [f"ec2:Describe{'X' * 40}{i}" for i in range(250)], "Resource": "*"}
    assert compact_size(json.dumps(with_statement(build(data), many))) > INLINE_POLICY_MAX


def test_a_bad_data_file_is_refused(data: DeployRoleData) -> None:
    raw = data.model_dump(by_alias=True)
    with pytest.raises(ValueError, match="typo"):
        DeployRoleData.model_validate({**raw, "typo": 1})
    with pytest.raises(ValueError, match="policyName"):
        DeployRoleData.model_validate({k: v for k, v in raw.items() if k != "policyName"})
    assert (PLATFORM_DIR / DEPLOY_ROLE_FILE).is_file() and not (PLATFORM_DIR / "__init__.py").exists()


# -- configuration -------------------------------------------------------------------------------

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


@pytest.mark.parametrize("arn", [ADMIN, "arn:aws:iam::aws:policy/IAMFullAccess"])
def test_prod_refuses_an_admin_policy_on_the_deploy_role(arn: str) -> None:
    raw, _ = stack_config("prod")
    deployments = {**json.loads(raw["eks-platform:deployments"]), "rolePolicyArns": [arn]}
    assert_section_rejected(
        "prod", "deployments", deployments, "deployments.rolePolicyArns", "may not administer"
    )


def test_a_policy_arn_must_be_one() -> None:
    raw, _ = stack_config("prod")
    deployments = {**json.loads(raw["eks-platform:deployments"]), "rolePolicyArns": ["AdministratorAccess"]}
    assert_section_rejected(
        "prod", "deployments", deployments, "deployments.rolePolicyArns", "managed policy ARN"
    )


def test_dev_may_opt_in_to_admin_and_the_policy_pack_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    from stacks import identity
    from tools.plan import run_identity

    read = identity.read_yaml

    def opted_in(path: Any) -> Any:
        document = read(path)
        if path.name == "Pulumi.dev.yaml":
            document["config"]["eks-platform:deployments"]["rolePolicyArns"] = [ADMIN]
        return document

    monkeypatch.setattr(identity, "read_yaml", opted_in)
    result = run_identity("dev")
    attached = [
        r
        for r in result.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.get("policyArn") == ADMIN
    ]
    assert [str(r.get("role")) for r in attached] == ["eks-platform-dev-deployments-deploy"]
    findings = [f for f in evaluate(result) if f.rule == "iam-no-admin-managed-policy"]
    assert [f.level for f in findings] == [Level.ADVISORY]
