"""The deploy role's least-privilege policy against the plan: every AWS type and provider call the
program uses maps to IAM prefixes (platform/deploy-role.yaml) that the policy the program really
sends grants, and the sent policy keeps IAM to the stack's own names (docs/deploy-role.md).

Type tokens: pulumi_aws, pulumi_eks, pulumi_awsx as installed; the API calls behind them:
terraform-provider-aws internal/service/<service>/ (eks/cluster.go calls CreateCluster with the
role ARN, so iam:PassRole; eks/node_group.go likewise with the node role).
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from components.deploy_policy import (
    BOUNDARY_IAM,
    MANAGED_POLICY_MAX,
    SERVICES_SUFFIX,
    DeployIdentity,
    DeployRoleData,
    StackScope,
    boundary_arn,
    deploy_policy,
)
from components.deploy_policy import BOUNDARY_SUFFIX as DEPLOY_BOUNDARY_SUFFIX
from components.deploy_roles import agent_token_secret_name
from model.records import PlanResult
from policy.model import Level
from policy.rules_deploy import (
    ACCOUNT_LEVEL,
    BOUNDARY_SUFFIX,
    DEPLOY_POLICY_NAME,
    INLINE_POLICY_MAX,
    compact_size,
    identity_reach,
    outside_boundary,
    permits,
)
from policy.rules_deploy import SERVICES_SUFFIX as PACK_SERVICES_SUFFIX
from stacks.data import DEPLOY_ROLE_FILE, PLATFORM_DIR, deploy_role_data
from tests.configcheck import assert_section_rejected
from tests.stackinfo import is_production
from tools.mocks import ACCOUNT_ID, ROOT, stack_config
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


def inline_policy(plan: PlanResult, data: DeployRoleData) -> dict[str, Any]:
    """The deploy role's inline policy (its IAM grants and every Deny) as the program registered it
    (the identity project's plan, identity/, which creates the role: `identity_plans[stack]`)."""
    found = [
        r
        for r in plan.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.get("name") == data.policy_name and r.name.endswith("-deployments-deploy")
    ]
    assert len(found) == 1, f"expected the deploy role's policy {data.policy_name!r}, found {len(found)}"
    policy: dict[str, Any] = json.loads(found[0].get("policy"))
    return policy


def services_of(plan: PlanResult) -> Any:
    (found,) = [r for r in plan.of_type(BOUNDARY_TYPE) if str(r.get("name")).endswith(SERVICES_SUFFIX)]
    return found


def sent_policy(plan: PlanResult, data: DeployRoleData) -> dict[str, Any]:
    """Everything the deploy role may do, as IAM evaluates it: its inline policy and its managed
    policy of grants outside IAM (`<prefix>-deployments-services`) together."""
    policy = inline_policy(plan, data)
    services = json.loads(services_of(plan).get("policy"))
    return {"Version": policy["Version"], "Statement": [*services["Statement"], *policy["Statement"]]}


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


def allowed_on_anything(policy: dict[str, Any], action: str) -> bool:
    """Whether an Allow statement on "*" (no condition) grants `action`, and no Deny on "*" names it
    (a Deny of named ARNs does not apply to a call that names none)."""

    def matches(s: dict[str, Any]) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in listed(s.get("Action", [])))

    allowed = any(
        matches(s) and "*" in listed(s["Resource"]) and not s.get("Condition") for s in statements(policy)
    )
    return allowed and not any(
        matches(s) and "*" in listed(s["Resource"]) for s in statements(policy, "Deny")
    )


def test_every_call_that_names_no_resource_is_allowed_on_anything(
    plan: PlanResult, data: DeployRoleData, identity_plans: dict[str, PlanResult]
) -> None:
    """A grant of `secretsmanager:*` on the stack's secrets does not allow ListSecrets, which names
    no resource: prod's rebuild lookups (components/identity.py `existing`) failed as the deploy role
    while every prefix was "granted". Each listed call's actions must be allowed on "*"."""
    assert set(data.unscoped_calls) <= set(data.invokes)
    assert {"aws:secretsmanager/getSecrets:getSecrets", "aws:ecr/getRepositories:getRepositories"} <= set(
        data.unscoped_calls
    )
    policy = sent_policy(identity_plans[plan.stack], data)
    missing = [
        f"{token}: {action}"
        for token, actions in data.unscoped_calls.items()
        if token in program_invokes()
        for action in actions
        if not allowed_on_anything(policy, action)
    ]
    assert missing == []


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
    # The role may not widen itself or any role an admin creates under `<prefix>-deployments-`: a
    # change to them needs an admin's `make up`.
    denied = {s["Sid"]: s for s in statements(policy, "Deny")}
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/{prefix}-deployments"
    # The pattern covers the deploy role (named apart only when a clipped name escapes it) and any other.
    assert denied["NotTheDeployIdentity"]["Resource"] == [f"{role}-*"]
    assert all(fnmatch.fnmatchcase(f"{role}-{r}", f"{role}-*") for r in ("deploy", "new", "preview"))
    # Every IAM action on them, reads included (no run reads them: the platform derives their ARNs).
    assert denied["NotTheDeployIdentity"]["Action"] == "iam:*"
    # No role loses its boundary, and the boundary policy itself never changes.
    assert denied["KeepBoundaries"] == {
        "Sid": "KeepBoundaries",
        "Effect": "Deny",
        "Action": "iam:DeleteRolePermissionsBoundary",
        "Resource": "*",
    }
    # The boundary, and the role's own managed policy (any policy under `<prefix>-deployments-`).
    assert denied["KeepTheBoundaryPolicy"]["Resource"] == [
        f"arn:aws:iam::{ACCOUNT_ID}:policy/{prefix}-boundary",
        f"arn:aws:iam::{ACCOUNT_ID}:policy/{prefix}-deployments-*",
    ]
    assert fnmatch.fnmatchcase(
        f"arn:aws:iam::{ACCOUNT_ID}:policy/{prefix}{SERVICES_SUFFIX}",
        denied["KeepTheBoundaryPolicy"]["Resource"][1],
    )
    assert denied["KeepTheBoundaryPolicy"]["Action"] == "iam:*"
    identity = identity_plans[plan.stack]
    assert compact_size(json.dumps(inline_policy(identity, data))) <= INLINE_POLICY_MAX
    assert compact_size(services_of(identity).get("policy")) <= MANAGED_POLICY_MAX


def test_the_deploy_role_cannot_touch_what_the_identity_project_owns(
    plan: PlanResult, data: DeployRoleData, identity_plans: dict[str, PlanResult]
) -> None:
    """Inside its prefix and tag, the role could otherwise rewrite itself or a role an admin creates
    under `<prefix>-deployments-`, read or replace the agent pool's token, use or delete the token's
    key, or change the boundary. The names are the identity plan's own."""
    identity = identity_plans[plan.stack]
    policy = sent_policy(identity, data)
    assert list(identity_reach(json.dumps(policy))) == []
    (deploy,) = [r for r in identity.of_type(ROLE_TYPE) if r.name.endswith("-deployments-deploy")]
    # Dev has no agent pool, hence no token secret: its name is the derived one all the same.
    secret_name = agent_token_secret_name(f"{plan.project}-{plan.stack}")
    assert [r.get("name") for r in identity.of_type("aws:secretsmanager/secret:Secret")] in (
        [],
        [secret_name],
    )
    (alias,) = identity.of_type("aws:kms/alias:Alias")
    account, region = ACCOUNT_ID, region_of(plan)
    denied = {s["Sid"]: s for s in statements(policy, "Deny")}
    stem = str(deploy.get("name")).removesuffix("deploy")
    for name in (deploy.get("name"), f"{stem}new"):
        arn = f"arn:aws:iam::{account}:role/{name}"
        assert any(fnmatch.fnmatchcase(arn, r) for r in denied["NotTheDeployIdentity"]["Resource"]), arn
    assert denied["NotTheAgentToken"]["Resource"] == (
        f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_name}-*"
    )
    assert denied["NotTheAgentTokenKey"]["Condition"] == {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": alias.get("name")}
    }
    assert (
        denied["NotTheAgentTokenKeyAlias"]["Resource"]
        == f"arn:aws:kms:{region}:{account}:{alias.get('name')}"
    )
    assert denied["KeepTheBoundaryPolicy"]["Action"] == "iam:*"  # tagging it included
    # Pulumi's OIDC provider is the identity project's: the platform's role gets nothing on it.
    assert not [r for s in statements(policy) for r in listed(s["Resource"]) if "api.pulumi.com" in r]


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (
            # Back to the deploy role alone, by name (before the merge: `NotItself`).
            lambda s: (
                s["Sid"] == "NotTheDeployIdentity" and [r.replace("-*", "-deploy") for r in s["Resource"]]
            ),
            "iam:PutRolePolicy on arn:aws:iam::123456789012:role/eks-platform-dev-deployments-new: "
            "the identity project's roles under `<prefix>-deployments-`",
        ),
        (lambda s: s["Sid"] == "NotTheAgentToken" and [], "the identity project's agent token secret"),
        (lambda s: s["Sid"] == "NotTheAgentTokenKey" and [], "kms:Decrypt on arn:aws:kms:"),
        (lambda s: s["Sid"] == "NotTheAgentTokenKeyAlias" and [], "kms:DeleteAlias on arn:aws:kms:"),
        (lambda s: s["Sid"] == "KeepTheBoundaryPolicy" and [], "the identity project's permissions boundary"),
        (lambda s: s["Sid"] == "NotTheDeployIdentity" and [], "the identity project's deploy role"),
    ],
    ids=["deployments-roles", "token-secret", "token-key", "token-key-alias", "boundary", "itself"],
)
def test_the_pack_fails_a_deploy_policy_that_reaches_the_identity(
    identity_plans: dict[str, PlanResult], change: Callable[[dict[str, Any]], Any], expect: str
) -> None:
    """Each Deny removed (or narrowed: the `<prefix>-deployments-*` pattern dropped) is a finding of
    the pack."""
    dev = identity_plans["dev"]

    def weaken(policy: str) -> str:
        doc = json.loads(policy)
        kept = []
        for s in doc["Statement"]:
            narrowed = change(s)
            if narrowed is False:
                kept.append(s)
            elif narrowed:
                kept.append({**s, "Resource": narrowed})
        assert len(kept) < len(doc["Statement"]) or kept != doc["Statement"]
        return json.dumps({**doc, "Statement": kept})

    broken = replace_input(
        dev, "aws:iam/rolePolicy:RolePolicy", lambda r: r.get("name") == DEPLOY_POLICY_NAME, "policy", weaken
    )
    messages = _rule(evaluate(broken), "deploy-role-least-privilege")
    assert any(expect in m for m in messages), messages


def test_the_pack_fails_a_deploy_policy_that_may_replace_pulumis_oidc_provider(
    identity_plans: dict[str, PlanResult],
) -> None:
    provider = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/api.pulumi.com/oidc"
    broken = replace_input(
        identity_plans["dev"],
        "aws:iam/rolePolicy:RolePolicy",
        lambda r: r.get("name") == DEPLOY_POLICY_NAME,
        "policy",
        lambda p: json.dumps(
            with_statement(
                json.loads(p),
                {"Sid": "Back", "Action": "iam:DeleteOpenIDConnectProvider", "Resource": provider},
            )
        ),
    )
    messages = _rule(evaluate(broken), "deploy-role-least-privilege")
    assert any(f"iam:DeleteOpenIDConnectProvider on {provider}" in m for m in messages), messages


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
    """`deployments.rolePolicyArns` is empty by default: the deploy role's one managed policy is its
    own `<prefix>-deployments-services` (the grants outside IAM, the identity project's), never an
    AWS managed one."""
    attachments = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    identity = identity_plans[plan.stack]
    policies = [
        str(r.get("policyArn"))
        for p in (plan, identity)
        for r in p.of_type(attachments)
        if str(r.get("role")).endswith("-deployments-deploy")
    ]
    assert [p.rsplit("/", 1)[-1] for p in policies] == [f"{plan.project}-{plan.stack}{SERVICES_SUFFIX}"]
    # Both of the role's policies are protected where the role is (the inline one holds every IAM
    # grant and every Deny: review 19, round 6).
    (inline,) = [
        r for r in identity.of_type("aws:iam/rolePolicy:RolePolicy") if r.get("name") == DEPLOY_POLICY_NAME
    ]
    assert inline.protect is is_production(plan.stack)
    assert services_of(identity).protect is is_production(plan.stack)


def test_the_policy_name_is_the_one_the_policy_pack_knows(data: DeployRoleData) -> None:
    assert data.policy_name == DEPLOY_POLICY_NAME


# -- each check fires on a bad input ----------------------------------------------------------------


def scope(prefix: str = "eks-platform-dev") -> StackScope:
    return StackScope(
        partition="aws",
        account_id=ACCOUNT_ID,
        region="eu-west-1",
        project="eks-platform",
        stack=prefix.rsplit("-", 1)[-1],
        prefix=prefix,
        cluster_name=prefix,
    )


def kept(prefix: str = "eks-platform-dev") -> DeployIdentity:
    return DeployIdentity(
        role_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{prefix}-deployments-deploy",
        token_secret_name=f"{prefix}/deploy-agent-token",
        token_key_alias=f"alias/{prefix}-deploy-agent-token",
    )


def build(data: DeployRoleData, prefix: str = "eks-platform-dev") -> dict[str, Any]:
    return json.loads(deploy_policy(data, scope(prefix), identity=kept(prefix)))


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


# -- the permissions boundary ----------------------------------------------------------------------

BOUNDARY_TYPE = "aws:iam/policy:Policy"
ROLE_TYPE = "aws:iam/role:Role"


def plan_scope(plan: PlanResult) -> StackScope:
    prefix = f"{plan.project}-{plan.stack}"
    return StackScope(
        partition="aws",
        account_id=ACCOUNT_ID,
        region=region_of(plan),
        project=plan.project,
        stack=plan.stack,
        prefix=prefix,
        cluster_name=prefix,
    )


def boundary_of(plan: PlanResult) -> Any:
    (boundary,) = [r for r in plan.of_type(BOUNDARY_TYPE) if str(r.get("name")).endswith("-boundary")]
    return boundary


def bounded_roles(plan: PlanResult) -> list[Any]:
    """Every role but the deploy role (Pulumi Deployments' write identity, applied by an admin)."""
    return [r for r in plan.of_type(ROLE_TYPE) if not r.name.endswith("-deployments-deploy")]


def test_the_boundary_has_its_computable_name_and_every_role_carries_it(
    plan: PlanResult, identity_plans: dict[str, PlanResult]
) -> None:
    identity = identity_plans[plan.stack]
    boundary = boundary_of(identity)
    arn = boundary_arn(plan_scope(plan))
    assert arn == f"arn:aws:iam::{ACCOUNT_ID}:policy/{plan.project}-{plan.stack}-boundary"
    assert boundary.get("name") == arn.rsplit("/", 1)[1]
    # The identity project creates it (the deploy role never creates or changes its boundary); the
    # platform creates no managed policy of that name and derives the ARN as a plain string.
    assert not [r for r in plan.of_type(BOUNDARY_TYPE) if str(r.get("name")).endswith("-boundary")]
    roles = bounded_roles(plan)
    assert len(roles) >= 6  # control plane, CNI, system nodes, Karpenter x2, EBS CSI, flow logs...
    assert {r.name: r.get("permissionsBoundary") for r in roles} == {r.name: arn for r in roles}
    # In the identity project: the deploy role alone, which creates the bounded roles and does not
    # carry the boundary (it allows no IAM write). No other role, so nothing there to bound.
    (deploy,) = identity.of_type(ROLE_TYPE)
    assert deploy.name.endswith("-deployments-deploy") and not bounded_roles(identity)
    assert not deploy.get("permissionsBoundary")


def test_the_boundary_holds_every_role_policy_of_the_plan(
    plan: PlanResult, data: DeployRoleData, identity_plans: dict[str, PlanResult]
) -> None:
    identity = identity_plans[plan.stack]
    boundary = json.loads(boundary_of(identity).get("policy"))
    names = {str(r.get("name")) for p in (plan, identity) for r in bounded_roles(p)}
    inline = [
        r.get("policy")
        for p in (plan, identity)
        for r in p.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.get("name") != data.policy_name and str(r.get("role")).removesuffix("-id") in names
    ]
    # The identity project's only inline policy is the deploy role's (no preview role's reads).
    assert [r.get("name") for r in identity.of_type("aws:iam/rolePolicy:RolePolicy")] == [data.policy_name]
    assert len(inline) >= 5 and [outside_boundary(p, boundary) for p in inline] == [[]] * len(inline)
    # The AWS managed policies the plan attaches: each of their actions is in the boundary's
    # allowlist, or withheld on purpose with a reason (platform/deploy-role.yaml).
    allows = [st for st in statements(boundary) if st["Effect"] == "Allow"]
    attached = {
        str(a.get("policyArn")).split(":policy/", 1)[1]
        for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    assert attached and attached <= set(data.boundary.managed_policy_actions)
    for name in sorted(attached):
        for action in data.boundary.managed_policy_actions[name]:
            listed_in = any(
                fnmatch.fnmatchcase(action.lower(), a.lower()) for st in allows for a in listed(st["Action"])
            )
            withheld = any(fnmatch.fnmatchcase(action.lower(), w.lower()) for w in data.boundary.withheld)
            assert listed_in != withheld, (name, action, "allowed and withheld" if listed_in else "neither")


def test_the_boundary_allows_no_iam_write_and_no_escape(
    plan: PlanResult, identity_plans: dict[str, PlanResult]
) -> None:
    boundary = json.loads(boundary_of(identity_plans[plan.stack]).get("policy"))
    iam = {a for s in statements(boundary) for a in listed(s["Action"]) if a.startswith("iam:")}
    assert iam == BOUNDARY_IAM
    # So no role of the stack removes its boundary or changes the boundary policy: the boundary
    # allows neither, and needs no Deny for it (the effective permissions are the intersection).
    scope = plan_scope(plan)
    own_role = f"arn:aws:iam::{ACCOUNT_ID}:role/{scope.prefix}-karpenter"
    for action, resource in (
        ("iam:DeleteRolePermissionsBoundary", own_role),
        ("iam:PutRolePermissionsBoundary", own_role),
        ("iam:PutRolePolicy", own_role),
        ("iam:CreatePolicyVersion", boundary_arn(scope)),
        ("iam:SetDefaultPolicyVersion", boundary_arn(scope)),
    ):
        assert not permits(boundary, action, resource, {}), action
    assert compact_size(json.dumps(boundary)) <= MANAGED_POLICY_MAX


def test_every_role_write_requires_the_boundary(
    plan: PlanResult, data: DeployRoleData, identity_plans: dict[str, PlanResult]
) -> None:
    policy = sent_policy(identity_plans[plan.stack], data)
    arn = boundary_arn(plan_scope(plan))
    writes = {f"iam:{a}" for a in data.iam.bounded_roles}
    for s in statements(policy):
        if writes & set(listed(s["Action"])):
            assert s["Condition"]["StringEquals"]["iam:PermissionsBoundary"] == arn, s["Sid"]
    granted = {a for s in statements(policy) for a in listed(s["Action"])}
    assert writes <= granted


SCOPABLE = ("secretsmanager:", "kms:", "logs:", "ecr:", "sqs:", "eks:", "events:", "autoscaling:")


def test_what_reaches_star_is_listed_with_a_reason(
    plan: PlanResult, data: DeployRoleData, identity_plans: dict[str, PlanResult]
) -> None:
    """Every "*" grant of the sent policy is a data-file statement with `why`; scopable services
    reach "*" only to read or under a request-tag condition."""
    why = {s.sid for s in data.statements if s.why}
    sent = sent_policy(identity_plans[plan.stack], data)
    for s in statements(sent):
        if "*" not in listed(s["Resource"]):
            continue
        assert s["Sid"] in why, s["Sid"]
        for action in listed(s["Action"]):
            if action.startswith(SCOPABLE) and "Condition" not in s:
                assert action.split(":", 1)[1].startswith(("Describe", "List")), action
    # The stack's secrets, registries, queues and cluster: by name only.
    by_sid = {s["Sid"]: listed(s["Resource"]) for s in statements(sent)}
    prefix = f"{plan.project}-{plan.stack}"
    assert by_sid["OwnSecrets"] == [f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT_ID}:secret:{prefix}/*"]
    assert all(f"/{prefix}" in r for r in by_sid["OwnCluster"]), by_sid["OwnCluster"]


def test_a_star_without_a_reason_is_refused(data: DeployRoleData) -> None:
    raw = data.model_dump(by_alias=True)
    raw["statements"] = [
        *raw["statements"],
        {"sid": "Sneaky", "actions": ["secretsmanager:*"], "resources": ["*"]},
    ]
    with pytest.raises(ValueError, match=r"statement Sneaky grants secretsmanager:\* on \"\*\": say `why`"):
        DeployRoleData.model_validate(raw)


def test_an_unknown_placeholder_is_refused(data: DeployRoleData) -> None:
    raw = data.model_dump(by_alias=True)
    raw["statements"] = [
        *raw["statements"],
        {
            "sid": "Typo",
            "actions": ["sqs:*"],
            "resources": ["arn:{partition}:sqs:{region}:{acount}:{prefix}-*"],
        },
    ]
    with pytest.raises(ValueError, match=r"statement Typo uses \{acount\}: the placeholders are \{account\}"):
        DeployRoleData.model_validate(raw)


def test_pulumi_eks_is_given_every_role_it_would_create(plan: PlanResult) -> None:
    """pulumi-eks v4.4.0 (nodejs/eks/cluster/cluster.ts, unchanged since v4.3.0): a service role
    unless `serviceRole`, an instance role unless `skipDefaultNodeGroup`, Auto Mode's node role;
    ManagedNodeGroup: none when `nodeRole` is given (nodes/nodegroup.ts)."""
    cluster = plan.one("eks:index:Cluster")
    assert cluster.get("serviceRole") and cluster.get("skipDefaultNodeGroup") is True
    assert not cluster.get("createInstanceRole") and not cluster.get("autoMode")
    assert not cluster.get("creationRoleProvider")
    assert all(g.get("nodeRole") for g in plan.of_type("eks:index:ManagedNodeGroup"))


# -- the pack rules fail on what the tests above guard -----------------------------------------------


def _rule(findings: list[Any], rule: str) -> list[str]:
    return [f.message for f in findings if f.rule == rule]


def replace_input(
    result: PlanResult, typ: str, which: Callable[[Any], bool], key: str, change: Callable[[Any], Any]
) -> PlanResult:
    """A copy of the plan with input `key` of the matching `typ` records changed (fixture intact)."""
    records, hit = [], False
    for record in result.records:
        if record.type == typ and which(record):
            inputs = copy.deepcopy(record.raw_inputs)
            inputs[key] = change(inputs.get(key))
            records.append(dataclasses.replace(record, raw_inputs=inputs))
            hit = True
        else:
            records.append(record)
    assert hit, f"no matching {typ} in the plan"
    return dataclasses.replace(result, records=records)


@pytest.mark.parametrize(
    ("statement", "expect"),
    [
        (
            {
                "Sid": "Bad",
                "Action": "iam:CreateRole",
                "Resource": f"arn:aws:iam::{ACCOUNT_ID}:role/eks-platform-dev-*",
            },
            "allows iam:CreateRole without an iam:PermissionsBoundary condition",
        ),
        (
            {
                "Sid": "Bad",
                "Action": ["iam:PutRolePolicy"],
                "Resource": f"arn:aws:iam::{ACCOUNT_ID}:role/eks-platform-dev-*",
            },
            "allows iam:PutRolePolicy without an iam:PermissionsBoundary condition",
        ),
        ({"Sid": "Bad", "Action": "secretsmanager:*", "Resource": "*"}, 'grants secretsmanager:* on "*"'),
        ({"Sid": "Bad", "Action": "kms:PutKeyPolicy", "Resource": "*"}, 'grants kms:PutKeyPolicy on "*"'),
        (
            {"Sid": "Bad", "Action": "eks:CreateAccessEntry", "Resource": "*"},
            'grants eks:CreateAccessEntry on "*"',
        ),
        (
            {"Sid": "Bad", "Action": "logs:DeleteLogGroup", "Resource": "*"},
            'grants logs:DeleteLogGroup on "*"',
        ),
        # User data of any instance runs code as its role; a detached volume leaves the snapshot deny.
        (
            {"Sid": "Bad", "Action": "ec2:ModifyInstanceAttribute", "Resource": "*"},
            'grants ec2:ModifyInstanceAttribute on "*" with no tag condition',
        ),
        ({"Sid": "Bad", "Action": "ec2:*", "Resource": "*"}, 'grants ec2:* on "*" with no tag condition'),
        # The stack's request tags on an existing resource: Ec2OwnResources then owns it.
        (
            {
                "Sid": "Bad",
                "Action": "ec2:CreateTags",
                "Resource": f"arn:aws:ec2:eu-west-1:{ACCOUNT_ID}:*/*",
                "Condition": {"StringEquals": {"aws:RequestTag/platform:stack": "dev"}},
            },
            "allows ec2:CreateTags on existing resources",
        ),
    ],
)
def test_the_pack_fails_a_reintroduced_hole(
    identity_plans: dict[str, PlanResult], statement: dict[str, Any], expect: str
) -> None:
    dev = identity_plans["dev"]
    assert _rule(evaluate(dev), "deploy-role-least-privilege") == []
    broken = replace_input(
        dev,
        "aws:iam/rolePolicy:RolePolicy",
        lambda r: r.get("name") == DEPLOY_POLICY_NAME,
        "policy",
        lambda p: json.dumps(with_statement(json.loads(p), statement)),
    )
    messages = _rule(evaluate(broken), "deploy-role-least-privilege")
    assert any(expect in m for m in messages), messages


def test_the_pack_fails_an_unbounded_role(dev: PlanResult) -> None:
    assert _rule(evaluate(dev), "deploy-role-bounded-roles") == []
    broken = replace_input(
        dev,
        ROLE_TYPE,
        lambda r: r.name == "eks-platform-dev-karpenter-controller",
        "permissionsBoundary",
        lambda _: None,
    )
    assert _rule(evaluate(broken), "deploy-role-bounded-roles") == [
        "role eks-platform-dev-karpenter-controller has no permissionsBoundary: the deploy role cannot "
        "create it, and an unbounded role is a way to account admin"
    ]


def test_only_the_write_role_of_the_identity_project_is_exempt(identity_plans: dict[str, PlanResult]) -> None:
    """The deploy role creates the bounded roles (a boundary would forbid it), so it alone goes
    unbounded: in prod it accepts update, refresh and destroy, in dev previews too. A role Pulumi
    may assume for previews only writes nothing, and carries the boundary like every other role."""
    for stack in ("dev", "prod"):
        assert _rule(evaluate(identity_plans[stack]), "deploy-role-bounded-roles") == []
    # The same role with a trust narrowed to `operation:preview`: not the write role, not exempt.
    previews_only = replace_input(
        identity_plans["prod"],
        ROLE_TYPE,
        lambda r: r.name.endswith("-deployments-deploy"),
        "assumeRolePolicy",
        lambda p: re.sub(r":operation:(update|refresh|destroy):", ":operation:preview:", p),
    )
    assert _rule(evaluate(previews_only), "deploy-role-bounded-roles") == [
        "role eks-platform-prod-deployments-deploy has no permissionsBoundary: the deploy role cannot "
        "create it, and an unbounded role is a way to account admin"
    ]


def test_the_pack_fails_a_boundary_that_allows_iam_writes(identity_plans: dict[str, PlanResult]) -> None:
    broken = replace_input(
        identity_plans["dev"],
        BOUNDARY_TYPE,
        lambda r: str(r.get("name")).endswith("-boundary"),
        "policy",
        lambda p: json.dumps(
            with_statement(json.loads(p), {"Sid": "Bad", "Action": "iam:PutRolePolicy", "Resource": "*"})
        ),
    )
    messages = _rule(evaluate(broken), "deploy-role-least-privilege")
    assert any("the permissions boundary allows iam:PutRolePolicy" in m for m in messages), messages


def test_the_pack_fails_a_cluster_whose_roles_pulumi_eks_would_create(dev: PlanResult) -> None:
    broken = replace_input(dev, "eks:index:Cluster", lambda r: True, "skipDefaultNodeGroup", lambda _: False)
    messages = _rule(evaluate(broken), "deploy-role-bounded-roles")
    assert any("pulumi-eks creates an instance role without the boundary" in m for m in messages), messages


def test_boundary_names_agree() -> None:
    assert BOUNDARY_SUFFIX == DEPLOY_BOUNDARY_SUFFIX
    assert PACK_SERVICES_SUFFIX == SERVICES_SUFFIX


@pytest.mark.parametrize(
    ("statement", "expect"),
    [
        (
            {"Sid": "Bad", "Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"},
            'grants secretsmanager:* on "*"',
        ),
        (
            {"Sid": "Bad", "Effect": "Allow", "Action": "ec2:TerminateInstances", "Resource": "*"},
            'grants ec2:TerminateInstances on "*" with no tag condition',
        ),
        (
            {"Sid": "Bad", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"},
            "statement Bad of the deploy role's managed policy is a Deny or an IAM grant",
        ),
        (
            {"Sid": "Bad", "Effect": "Deny", "Action": "ec2:CreateTags", "Resource": "*"},
            "statement Bad of the deploy role's managed policy is a Deny or an IAM grant",
        ),
    ],
)
def test_the_pack_judges_the_deploy_roles_managed_policy(
    identity_plans: dict[str, PlanResult], statement: dict[str, Any], expect: str
) -> None:
    """The grants outside IAM left the inline policy for `<prefix>-deployments-services` (IAM's
    6,144 characters per managed policy next to 10,240 for the inline ones, review 20): the pack
    holds them to the same rules, and keeps IAM grants and Denies in the inline policy, where its
    probes see them with the rest."""
    plan = identity_plans["prod"]
    assert _rule(evaluate(plan), "deploy-role-least-privilege") == []
    broken = replace_input(
        plan,
        BOUNDARY_TYPE,
        lambda r: str(r.get("name")).endswith(SERVICES_SUFFIX),
        "policy",
        lambda p: json.dumps(with_statement(json.loads(p), statement)),
    )
    messages = _rule(evaluate(broken), "deploy-role-least-privilege")
    assert any(expect in m for m in messages), messages


def pack_without(plan: PlanResult, sids: set[str]) -> list[str]:
    """The pack's deploy-role-least-privilege messages on `plan` with these statements dropped from
    the deploy role's inline policy."""

    def without(policy: dict[str, Any]) -> dict[str, Any]:
        policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") not in sids]
        return policy

    broken = replace_input(
        plan,
        "aws:iam/rolePolicy:RolePolicy",
        lambda r: r.get("name") == DEPLOY_POLICY_NAME,
        "policy",
        lambda p: json.dumps(without(json.loads(p))),
    )
    return _rule(evaluate(broken), "deploy-role-least-privilege")


def test_the_inline_probes_count_the_managed_grants(identity_plans: dict[str, PlanResult]) -> None:
    """The inline policy alone grants nothing outside IAM, so its probes take those grants as given
    (the managed policy has them): without NotTheAgentToken the token is reachable."""
    messages = pack_without(identity_plans["prod"], {"NotTheAgentToken"})
    assert any(
        "lets the deploy role secretsmanager:PutSecretValue" in m and "deploy-agent-token" in m
        for m in messages
    )


def test_ec2_star_cannot_take_data_out(
    plan: PlanResult, data: DeployRoleData, identity_plans: dict[str, PlanResult]
) -> None:
    """Snapshots, images, exports and consoles are denied, to the role and to the boundary."""
    sent = sent_policy(identity_plans[plan.stack], data)
    (deny,) = [s for s in statements(sent, "Deny") if s["Sid"] == "NoDataOutOfEc2"]
    assert {"ec2:CreateSnapshot", "ec2:ModifySnapshotAttribute", "ec2:GetConsoleOutput"} <= set(
        deny["Action"]
    )
    assert deny["Resource"] == ["*"]
    created = {r.type for r in plan.records}
    assert not created & {"aws:ebs/snapshot:Snapshot", "aws:ec2/ami:Ami", "aws:ec2/amiCopy:AmiCopy"}


def test_interface_endpoints_with_private_dns_may_associate_their_zone(
    prod: PlanResult, data: DeployRoleData, identity_plans: dict[str, PlanResult]
) -> None:
    """Service Authorization Reference, EC2 CreateVpcEndpoint: dependent action
    route53:AssociateVPCWithHostedZone (private DNS); prod has interface endpoints with it on."""
    endpoints = [r for r in prod.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if r.get("privateDnsEnabled")]
    assert endpoints
    grants = [
        s
        for s in statements(sent_policy(identity_plans["prod"], data))
        if "route53:AssociateVPCWithHostedZone" in listed(s["Action"])
    ]
    assert [listed(s["Resource"]) for s in grants] == [
        ["arn:aws:route53:::hostedzone/*", f"arn:aws:ec2:eu-west-1:{ACCOUNT_ID}:vpc/*"]
    ]


@pytest.mark.parametrize(
    ("statement", "expect"),
    [
        ({"Sid": "X", "Action": "iam:CreateUser", "Resource": "*"}, "X: iam:CreateUser on *"),
        (
            {"Sid": "X", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
            "X: secretsmanager:GetSecretValue on *",
        ),
        (
            {"Sid": "X", "Action": "ec2:ModifySnapshotAttribute", "Resource": "*"},
            "X: ec2:ModifySnapshotAttribute",
        ),
    ],
)
def test_a_role_policy_beyond_the_boundary_is_a_finding(
    dev: PlanResult, identity_plans: dict[str, PlanResult], statement: dict[str, Any], expect: str
) -> None:
    # The boundary is the identity project's: the rule compares where both are in one plan.
    both = dataclasses.replace(dev, records=[*dev.records, boundary_of(identity_plans["dev"])])
    assert _rule(evaluate(both), "deploy-role-bounded-roles") == []
    broken = replace_input(
        both,
        "aws:iam/rolePolicy:RolePolicy",
        lambda r: r.name == "eks-platform-dev-secrets-eso",
        "policy",
        lambda p: json.dumps(with_statement(json.loads(p), statement)),
    )
    messages = _rule(evaluate(broken), "deploy-role-bounded-roles")
    assert [m for m in messages if expect in m and "outside the permissions boundary" in m], messages


def test_keys_of_other_stacks_cannot_be_retagged_into_scope(
    plan: PlanResult, data: DeployRoleData, identity_plans: dict[str, PlanResult]
) -> None:
    """NewKeys allows kms:TagResource on "*" (tag-on-create); a key tagged for another stack or
    project is denied, so a dev deploy role cannot move prod's keys into its OwnKeys."""
    sent = sent_policy(identity_plans[plan.stack], data)
    denied = {s["Sid"]: s for s in statements(sent, "Deny")}
    for sid, key, value in (
        ("NoOtherStacks", "aws:ResourceTag/platform:stack", plan.stack),
        ("NoOtherProjects", "aws:ResourceTag/platform:project", plan.project),
    ):
        assert {"kms:TagResource", "kms:UntagResource", "ec2:CreateTags"} <= set(denied[sid]["Action"])
        assert denied[sid]["Condition"] == {"Null": {key: "false"}, "StringNotEquals": {key: value}}
    assert denied["NoOthersAliasedKeys"]["Condition"] == {
        "ForAnyValue:StringNotLike": {"kms:ResourceAliases": f"alias/{plan.project}-{plan.stack}-*"}
    }
    # The keys carry those tags: the provider's default tags, on everything the stack creates.
    (provider,) = plan.of_type("pulumi:providers:aws")
    tags = json.loads(provider.get("defaultTags"))["tags"]
    assert (tags["platform:stack"], tags["platform:project"]) == (plan.stack, plan.project)
    own = {s["Sid"]: s for s in statements(sent)}["OwnKeys"]
    assert own["Condition"]["StringEquals"] == {
        "aws:ResourceTag/platform:stack": plan.stack,
        "aws:ResourceTag/platform:project": plan.project,
    }


# -- the boundary keeps every role of the stack off the identity (review 19, M2) -------------------


def test_every_identity_deny_of_the_role_is_in_the_boundary(identity_plans: dict[str, PlanResult]) -> None:
    """The deploy role may PutRolePolicy on any bounded role of the stack (the agent hosts' role,
    whose user data it controls): what the boundary allows of the identity, a push can reach
    through that role. Every identity Deny of the role (identity_denies) is in the boundary, with
    the same resources; only the token's two boot reads (components/agent.py) are left to roles."""
    identity = identity_plans["prod"]
    (role_policy,) = [
        r for r in identity.of_type("aws:iam/rolePolicy:RolePolicy") if r.get("name") == DEPLOY_POLICY_NAME
    ]
    role = {s.get("Sid"): s for s in json.loads(role_policy.get("policy"))["Statement"]}
    boundary = {s.get("Sid"): s for s in json.loads(boundary_of(identity).get("policy"))["Statement"]}
    sids = ("NotTheDeployIdentity", "NotTheAgentToken", "NotTheAgentTokenKey")
    for sid in sids:
        assert boundary[sid]["Effect"] == "Deny" and boundary[sid]["Resource"] == role[sid]["Resource"], sid
        assert boundary[sid].get("Condition") == role[sid].get("Condition"), sid
    assert boundary["NotTheAgentToken"]["NotAction"] == "secretsmanager:GetSecretValue"
    assert boundary["NotTheAgentTokenKey"]["NotAction"] == "kms:Decrypt"
    # Of the identity roles the boundary allows only PassRole; the boundary policy and the token
    # key's alias it does not allow at all, so their Denies would be dead weight in a policy held
    # to 6,144 characters. Every action of the role's own Deny stays out of reach.
    assert boundary["NotTheDeployIdentity"]["Action"] == "iam:PassRole"
    bounded = json.loads(boundary_of(identity).get("policy"))
    iam_writes = [
        f"iam:{a}"
        for a in (
            "PutRolePolicy",
            "AttachRolePolicy",
            "UpdateAssumeRolePolicy",
            "DeleteRole",
            "PassRole",
            "TagRole",
            "CreatePolicyVersion",
            "SetDefaultPolicyVersion",
            "DeletePolicy",
            "TagPolicy",
        )
    ]
    for sid in (*sids, "NotTheAgentTokenKeyAlias", "KeepTheBoundaryPolicy"):
        actions = listed(role[sid]["Action"])
        for action in iam_writes if actions == ["iam:*"] else actions:
            if action in ("secretsmanager:*", "kms:*"):
                continue  # the token's two boot reads are left to roles (above)
            for resource in listed(role[sid]["Resource"]):
                assert not permits(bounded, action, resource.replace("*", "x"), {}), (sid, action, resource)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_bounded_role_can_reach_the_identity(identity_plans: dict[str, PlanResult], stack: str) -> None:
    """Probed as the pack probes the deploy role (identity_reach): the boundary's grants
    (`secretsmanager:*` on `<prefix>/*`, `kms:*` on the stack's tagged keys) reach the token, its
    key and the identity roles only if a Deny is missing."""
    boundary = boundary_of(identity_plans[stack])
    name = str(boundary.get("name"))
    assert list(identity_reach(boundary.get("policy"), boundary_name=name)) == []
    without = json.loads(boundary.get("policy"))
    without["Statement"] = [s for s in without["Statement"] if not str(s.get("Sid")).startswith("NotThe")]
    reached = list(identity_reach(json.dumps(without), boundary_name=name))
    assert any("deploy-agent-token" in r and "PutSecretValue" in r for r in reached), reached
    assert any("kms:ScheduleKeyDeletion" in r for r in reached), reached
    assert all("any role of the stack (the boundary)" in r for r in reached)
    # The pack says so on the plan: deploy-role-least-privilege fails the boundary without them.
    plan = identity_plans[stack]
    assert _rule(evaluate(plan), "deploy-role-least-privilege") == []
    broken = replace_input(
        plan, BOUNDARY_TYPE, lambda r: r.get("name") == name, "policy", lambda p: json.dumps(without)
    )
    messages = _rule(evaluate(broken), "deploy-role-least-privilege")
    assert any("any role of the stack (the boundary)" in m and "deploy-agent-token" in m for m in messages)


# -- EC2 by the stack's tag (review 19, M3) --------------------------------------------------------


def test_ec2_writes_need_the_stacks_tag(
    plan: PlanResult, data: DeployRoleData, identity_plans: dict[str, PlanResult]
) -> None:
    """ModifyInstanceAttribute (user data) on any instance ran code as that instance's role,
    Attach/DetachVolume on any volume left the snapshot deny, any security group could be opened:
    every EC2 write of the role on "*" now requires the stack's resource tag, and creations name
    the new resource by its request tag."""
    sent = sent_policy(identity_plans[plan.stack], data)
    for s in statements(sent):
        ec2 = [a for a in listed(s["Action"]) if a.startswith("ec2:") and not a.startswith("ec2:Describe")]
        if ec2 and "*" in listed(s["Resource"]):
            keys = {k for cond in s.get("Condition", {}).values() for k in cond}
            assert "aws:ResourceTag/platform:stack" in keys, s["Sid"]
    by_sid = {s["Sid"]: s for s in statements(sent)}
    assert (
        by_sid["Ec2OwnResources"]["Condition"]["StringEquals"]["aws:ResourceTag/platform:stack"] == plan.stack
    )
    assert by_sid["Ec2Create"]["Condition"]["StringEquals"]["aws:RequestTag/platform:stack"] == plan.stack
    assert "ec2:RunInstances" not in listed(by_sid["Ec2Create"]["Action"])


def test_the_boundary_denies_what_the_role_denies_of_ec2(identity_plans: dict[str, PlanResult]) -> None:
    identity = identity_plans["prod"]
    (role_policy,) = [
        r for r in identity.of_type("aws:iam/rolePolicy:RolePolicy") if r.get("name") == DEPLOY_POLICY_NAME
    ]
    role = {s["Sid"]: s for s in statements(json.loads(role_policy.get("policy")), "Deny")}
    boundary = {s["Sid"]: s for s in statements(json.loads(boundary_of(identity).get("policy")), "Deny")}
    assert set(listed(role["NoDataOutOfEc2"]["Action"])) <= set(listed(boundary["NoDataOutOfEc2"]["Action"]))
    assert {"ec2:CreateSnapshot", "ec2:CopySnapshot", "ec2:CreateImage"} <= set(
        listed(boundary["NoDataOutOfEc2"]["Action"])
    )


def test_no_push_can_tag_a_foreign_resource_into_the_stacks_reach(
    plan: PlanResult, data: DeployRoleData, identity_plans: dict[str, PlanResult]
) -> None:
    """Ec2OwnResources grants ec2:* on whatever carries the stack's tags, so whoever may put those
    tags on an existing resource owns it: stop another stack's instance, change its user data, attach
    its volume. ec2:CreateTags is allowed only inside a create call (`ec2:CreateAction`), on what
    already carries a tag the statement names (aws:ResourceTag), or, for adopting the VPC's untagged
    default security group, on security groups (docs/deploy-role.md names that residual)."""
    policy = sent_policy(identity_plans[plan.stack], data)
    loose = []
    for s in statements(policy):
        if not any(fnmatch.fnmatchcase("ec2:createtags", a.lower()) for a in listed(s["Action"])):
            continue
        keys = {k for test in (s.get("Condition") or {}).values() for k in test}
        if "ec2:CreateAction" in keys or any(k.startswith("aws:ResourceTag/") for k in keys):
            continue
        if all(r.endswith(":security-group/*") for r in listed(s["Resource"])):
            continue
        loose.append(s["Sid"])
    assert loose == []


# -- the boundary keeps every role of the stack off other stacks' EC2 and load balancers ----------
# (review 19, round 2: Ec2Ceiling and LoadBalancers allowed ec2:* and elasticloadbalancing:* on "*"
# in every region, so the agent hosts' role, whose policy and user data a push controls, could stop,
# re-role or re-route another stack's instances and networks.)


def _boundary_with(plan: PlanResult, change: Callable[[dict[str, Any]], dict[str, Any]]) -> PlanResult:
    return replace_input(
        plan,
        BOUNDARY_TYPE,
        lambda r: str(r.get("name")).endswith("-boundary"),
        "policy",
        lambda p: json.dumps(change(json.loads(p))),
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_boundary_denies_other_stacks_ec2_and_load_balancers(
    identity_plans: dict[str, PlanResult], stack: str
) -> None:
    plan = identity_plans[stack]
    boundary = json.loads(boundary_of(plan).get("policy"))
    cluster = f"eks-platform-{stack}"
    region = "eu-west-1"
    foreign: dict[str, list[str]] = {}  # no tag of the stack, none of its cluster
    own = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": ["owned"]}
    ours = {"aws:ResourceTag/platform:stack": [stack]}
    other = {"aws:ResourceTag/platform:stack": ["other"]}
    instance = f"arn:aws:ec2:{region}:{ACCOUNT_ID}:instance/i-0123456789abcdef0"
    volume = f"arn:aws:ec2:{region}:{ACCOUNT_ID}:volume/vol-0123456789abcdef0"
    eni = f"arn:aws:ec2:{region}:{ACCOUNT_ID}:network-interface/eni-0123456789abcdef0"
    lb = f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT_ID}:loadbalancer/app/other/0123"
    for action, resource in (
        ("ec2:TerminateInstances", instance),
        ("ec2:ModifyInstanceAttribute", instance),
        ("ec2:ReplaceIamInstanceProfileAssociation", instance),
        ("ec2:CreateReplaceRootVolumeTask", instance),
        ("ec2:CreateTags", instance),
        ("ec2:AttachVolume", volume),
        ("ec2:AttachVolume", instance),
        ("elasticloadbalancing:DeleteLoadBalancer", lb),
    ):
        for context in (foreign, other):
            assert not permits(boundary, action, resource, context, negated=True), (action, context)
    # What the controllers do to their own resources (the cluster's tag, or the stack's).
    for action, resource in (
        ("ec2:TerminateInstances", instance),
        ("ec2:ModifyInstanceAttribute", instance),
        ("ec2:AttachVolume", volume),
        ("ec2:AttachVolume", instance),
        ("ec2:DeleteVolume", volume),
    ):
        for context in (own, ours):
            assert permits(boundary, action, resource, context, negated=True), (action, context)
    # Not in the allowlist at all, whatever the tags: no role of the stack needs them.
    for action, resource in (
        ("ec2:CreateReplaceRootVolumeTask", instance),
        ("ec2:StopInstances", instance),
        ("ec2:ModifyEbsDefaultKmsKeyId", "*"),
        ("elasticloadbalancing:CreateLoadBalancer", lb),
    ):
        assert not permits(boundary, action, resource, own, negated=True), action
    # What the controllers do on resources that carry neither tag yet, or never do.
    assert permits(boundary, "ec2:DescribeInstances", "*", {}, negated=True)
    assert permits(boundary, "ec2:RunInstances", instance, {}, negated=True)
    assert permits(boundary, "ec2:CreateTags", instance, {"ec2:CreateAction": ["RunInstances"]}, negated=True)
    assert permits(boundary, "ec2:CreateTags", eni, {}, negated=True)  # the VPC CNI tags its own ENIs
    # No service wildcard on "*", and EC2 only in the stack's region.
    for s in statements(boundary):
        if "*" in listed(s["Resource"]):
            assert not [a for a in listed(s["Action"]) if a.endswith(":*")], s["Sid"]
    (ceiling,) = [s for s in statements(boundary) if s["Sid"] == "Ec2Ceiling"]
    assert ceiling["Condition"]["StringEquals"]["aws:RequestedRegion"] == region
    assert _rule(evaluate(plan), "deploy-role-least-privilege") == []


def test_the_pack_fails_a_boundary_without_the_foreign_denies(identity_plans: dict[str, PlanResult]) -> None:
    def without(policy: dict[str, Any]) -> dict[str, Any]:
        policy["Statement"] = [s for s in policy["Statement"] if not s["Sid"].startswith("Foreign")]
        return policy

    messages = _rule(evaluate(_boundary_with(identity_plans["dev"], without)), "deploy-role-least-privilege")
    for action in (
        "ec2:TerminateInstances",
        "ec2:CreateTags",
        "ec2:AttachVolume",
        "ec2:DeleteVolume",
    ):
        assert any(
            f"(the boundary) {action} on " in m and "neither the stack nor its cluster" in m for m in messages
        ), (
            action,
            messages,
        )


def test_the_pack_fails_a_boundary_ec2_ceiling_everywhere_or_whole(
    identity_plans: dict[str, PlanResult],
) -> None:
    def everywhere(policy: dict[str, Any]) -> dict[str, Any]:
        for s in policy["Statement"]:
            if s["Sid"] == "Ec2Ceiling":
                del s["Condition"]
        return policy

    messages = _rule(
        evaluate(_boundary_with(identity_plans["dev"], everywhere)), "deploy-role-least-privilege"
    )
    assert any(
        m.startswith("statement Ec2Ceiling allows ec2:RunInstances,") and 'on "*" in every region' in m
        for m in messages
    ), messages

    def whole_service(policy: dict[str, Any]) -> dict[str, Any]:
        for s in policy["Statement"]:
            if s["Sid"] == "Ec2Ceiling":
                s["Action"] = "ec2:*"
        return policy

    messages = _rule(
        evaluate(_boundary_with(identity_plans["dev"], whole_service)), "deploy-role-least-privilege"
    )
    assert any('statement Ec2Ceiling allows ec2:* on "*": list the actions' in m for m in messages), messages
    # Once the whole service is allowed, what no role needs is in every role's reach again.
    assert any("(the boundary) ec2:CreateReplaceRootVolumeTask on " in m for m in messages), messages
    assert any("(the boundary) ec2:ModifyEbsDefaultKmsKeyId on *" in m for m in messages), messages


def test_the_pack_fails_a_foreign_deny_that_stops_the_controllers(
    identity_plans: dict[str, PlanResult],
) -> None:
    """A negated condition holds for a call that names no resource (no tag to compare), so a
    Deny by wildcard that also matches a Describe or a create denies it to every controller."""

    def greedy(policy: dict[str, Any]) -> dict[str, Any]:
        for s in policy["Statement"]:
            if s["Sid"] == "ForeignEc2":
                s["Action"] = [*s["Action"], "ec2:*Instances"]
        return policy

    messages = _rule(evaluate(_boundary_with(identity_plans["dev"], greedy)), "deploy-role-least-privilege")
    assert any(
        "denies ec2:DescribeInstances on * with no tags to the stack's own controllers" in m for m in messages
    )
    assert any("denies ec2:RunInstances on " in m for m in messages), messages


@pytest.mark.parametrize(
    ("given", "context", "holds"),
    [
        ({"Null": {"k": "true"}}, {}, True),
        ({"Null": {"k": "true"}}, {"k": ["v"]}, False),
        ({"Null": {"k": "false"}}, {"k": ["v"]}, True),
        ({"StringNotEquals": {"k": "v"}}, {}, True),  # absent key: a negated operator matches
        ({"StringNotEquals": {"k": "v"}}, {"k": ["v"]}, False),
        ({"StringNotEquals": {"k": "v"}}, {"k": ["w"]}, True),
    ],
)
def test_negated_conditions_are_evaluated_as_iam_does(
    given: dict[str, Any], context: dict[str, list[str]], holds: bool
) -> None:
    policy = service_but("ec2", {"Action": "ec2:StopInstances", "Resource": "*", "Condition": given})
    assert (
        permits(policy, "ec2:StopInstances", "arn:aws:ec2:r:1:instance/i-1", context, negated=True)
        is not holds
    )
    # Without `negated`, an unknown condition never hides an Allow (the identity probes' contract).
    assert permits(policy, "ec2:StopInstances", "arn:aws:ec2:r:1:instance/i-1", context)


def service_but(service: str, deny: dict[str, Any]) -> dict[str, Any]:
    """A policy allowing every action of `service` on "*", and the Deny `deny`."""
    return {
        "Statement": [
            {"Effect": "Allow", "Action": f"{service}:*", "Resource": "*"},
            {"Effect": "Deny", **deny},
        ]
    }


def test_not_resource_denies_everything_else() -> None:
    policy = service_but(
        "ec2", {"Action": "ec2:CreateTags", "NotResource": "arn:aws:ec2:*:*:network-interface/*"}
    )
    assert permits(policy, "ec2:CreateTags", "arn:aws:ec2:r:1:network-interface/eni-1", {})
    assert not permits(policy, "ec2:CreateTags", "arn:aws:ec2:r:1:instance/i-1", {})


def test_not_resources_is_for_denies_and_excludes_resources(data: DeployRoleData) -> None:
    raw = data.model_dump(by_alias=True)
    raw["statements"] = [
        *raw["statements"],
        {
            "sid": "Loose",
            "actions": ["ec2:StopInstances"],
            "resources": [],
            "notResources": ["arn:aws:ec2:*:*:vpc/*"],
        },
    ]
    with pytest.raises(ValueError, match="statements Loose: notResources only in a Deny"):
        DeployRoleData.model_validate(raw)
    raw = data.model_dump(by_alias=True)
    raw["denies"] = [
        *raw["denies"],
        {
            "sid": "Both",
            "actions": ["ec2:StopInstances"],
            "resources": ["*"],
            "notResources": ["x"],
            "why": "w",
        },
    ]
    with pytest.raises(
        ValueError, match="statement Both: give exactly one of `resources` and `notResources`"
    ):
        DeployRoleData.model_validate(raw)


def test_placeholders_in_condition_keys_are_filled(identity_plans: dict[str, PlanResult]) -> None:
    boundary = boundary_of(identity_plans["prod"]).get("policy")
    assert (
        "{cluster}" not in boundary and "aws:ResourceTag/kubernetes.io/cluster/eks-platform-prod" in boundary
    )


# -- nothing another stack, project or owner tagged or named is re-tagged into reach (round 3) -----


@pytest.mark.parametrize(
    ("drop", "expect"),
    [
        ("NoOtherStacks", "ec2:CreateTags on arn:aws:ec2:eu-west-1:123456789012:security-group/"),
        (
            "NoOtherStacks",
            "iam:DeleteOpenIDConnectProvider on arn:aws:iam::123456789012:oidc-provider/oidc.eks.",
        ),
        ("NoOtherStacks", "kms:TagResource on arn:aws:kms:"),
        ("NoOthersAliasedKeys", "kms:TagResource on arn:aws:kms:"),
    ],
)
def test_the_pack_fails_a_deploy_policy_that_may_retag_another_stacks_resource(
    identity_plans: dict[str, PlanResult], drop: str, expect: str
) -> None:
    """Ec2AdoptDefaultSecurityGroup tags an existing security group and EC2 overwrites a value, so
    without NoOtherStacks the role could re-tag dev's cluster group `platform:stack=prod` and own
    it through Ec2OwnResources; NewKeys' tag-on-create reaches any key a key policy delegates to
    IAM; `oidc.eks.<region>.../id/*` names every cluster's IRSA provider in the account."""
    plan = identity_plans["prod"]
    assert _rule(evaluate(plan), "deploy-role-least-privilege") == []
    # Both stack and project denies go with NoOtherStacks: either alone still stops the probe.
    messages = pack_without(plan, {drop, "NoOtherProjects"} if drop == "NoOtherStacks" else {drop})
    assert any(f"lets the deploy role {expect}" in m for m in messages), messages


@pytest.mark.parametrize(
    ("operator", "given", "holds"),
    [
        ("ForAnyValue:StringNotLike", [], False),  # a key with no alias (a new key): no match
        ("ForAnyValue:StringNotLike", ["alias/eks-platform-dev-secrets"], False),
        ("ForAnyValue:StringNotLike", ["alias/eks-platform-dev-x", "alias/theirs"], True),
        ("StringNotLike", [], True),
        ("StringNotLike", ["alias/theirs"], True),
        ("StringNotLike", ["alias/eks-platform-dev-x"], False),
    ],
)
def test_string_not_like_is_evaluated_as_iam_does(operator: str, given: list[str], holds: bool) -> None:
    policy = service_but(
        "kms",
        {
            "Action": "kms:TagResource",
            "Resource": "*",
            "Condition": {operator: {"kms:ResourceAliases": "alias/eks-platform-dev-*"}},
        },
    )
    context = {"kms:ResourceAliases": given} if given else {}
    assert permits(policy, "kms:TagResource", "arn:aws:kms:r:1:key/k", context, negated=True) is not holds


@pytest.mark.parametrize(
    ("drop", "action", "resource"),
    [
        ("ForeignNetworks", "ec2:RunInstances", "subnet/subnet-0f0f0f0f0f0f0f0f0"),
        ("ForeignNetworks", "ec2:RunInstances", "security-group/sg-0f0f0f0f0f0f0f0f0"),
        ("ForeignNetworks", "ec2:CreateNetworkInterface", "subnet/subnet-0f0f0f0f0f0f0f0f0"),
        ("NoVolumeFromSnapshot", "ec2:CreateVolume", "snapshot/snap-0f0f0f0f0f0f0f0f0"),
        # Round 6: a group in another team's VPC (tagged the stack's at creation, then opened and
        # put on that VPC's interfaces), or another team's group onto an interface.
        ("ForeignNetworks", "ec2:CreateSecurityGroup", "vpc/vpc-0f0f0f0f0f0f0f0f0"),
        ("ForeignNetworks", "ec2:ModifyNetworkInterfaceAttribute", "security-group/sg-0f0f0f0f0f0f0f0f0"),
    ],
)
def test_no_role_of_the_stack_launches_into_another_network_or_reads_a_snapshot(
    identity_plans: dict[str, PlanResult], drop: str, action: str, resource: str
) -> None:
    """Review 19, round 5: the boundary allowed RunInstances, CreateFleet and CreateNetworkInterface
    on any subnet and group of the region, and CreateVolume from any snapshot, so a pod role the
    deploy role writes could run an instance in another team's subnet with its group, or read its
    snapshot's data. The stack's own launches stay allowed (Karpenter's subnets and groups carry
    the stack's or the cluster's tag)."""
    plan = identity_plans["dev"]
    boundary = json.loads(boundary_of(plan).get("policy"))
    arn = f"arn:aws:ec2:eu-west-1:{ACCOUNT_ID}:{resource}"
    assert not permits(boundary, action, arn, {}, negated=True)
    if drop == "ForeignNetworks":
        own = {"aws:ResourceTag/kubernetes.io/cluster/eks-platform-dev": ["owned"]}
        assert permits(boundary, action, arn, own, negated=True)
        assert permits(boundary, action, arn, {"aws:ResourceTag/platform:stack": ["dev"]}, negated=True)

    def without(policy: dict[str, Any]) -> dict[str, Any]:
        policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != drop]
        return policy

    messages = _rule(evaluate(_boundary_with(plan, without)), "deploy-role-least-privilege")
    assert any(f"(the boundary) {action} on {arn}" in m for m in messages), messages


def test_the_group_karpenter_launches_with_carries_the_stacks_tags(plan: PlanResult) -> None:
    """ForeignNetworks lets the stack's roles launch only with groups that carry the stack's tag or
    the cluster's; EKS creates the cluster security group Karpenter selects, so the program tags it
    itself rather than rely on EKS's own tags (not verified at the pinned EKS version)."""
    tags = {r.get("key"): r for r in plan.of_type("aws:ec2/tag:Tag")}
    discovery = tags["karpenter.sh/discovery"]
    assert tags["platform:stack"].get("value") == plan.stack
    assert tags["platform:project"].get("value") == plan.project
    assert tags["platform:stack"].get("resourceId") == discovery.get("resourceId")
